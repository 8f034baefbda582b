"""What the notebooks show: the quick-start config and its overrides, an encoded example, live training.

The checks before a run on a card (data folder, torchrun command, memory) live in kit.tutorial.preflight and
are re-exported here, so notebooks call everything as ``kit.tutorial.helpers.<name>``.

Notebooks call these; ``kit demo`` runs the notebooks. Each function returns an object that renders
as HTML in JupyterLab and as text elsewhere, and carries the values a notebook publishes.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from kit import config as config_mod
from kit.config import Config
from kit.errors import KitError
from kit.hub import TINY_NAMES
from kit.tutorial.preflight import DataSource, data_source, TORCHRUN_DOCS, LaunchPreview, launch_preview, card_memory, require_fit, check_training_memory, check_memory
from kit.i18n import N_, _

# The quick start trains Qwen1.5-7B for 3 epochs on 1000 + 91 examples at lr 1e-4. The embedded
# tiny model gets a budget that fits a few minutes on 2 CPU cores and still visibly learns its new
# name (measured by the tiny model's build experiment; see kit/tiny_qwen/README.md).
TINY_SCALING: dict[str, Any] = {
    "max_samples": 100,
    "num_train_epochs": 12.0,
    "learning_rate": 3.0e-3,
    # The quick start's 2 examples per optimizer step as one batch of 2 rather than 1 x 2 accumulated: the same
    # updates (eval_loss 0.16343 against 0.16345), and on a CPU one pass over two examples takes 17% less time
    # than two passes over one. Accumulation saves memory, which a 7B model on one card needs and this one does not.
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "logging_steps": 10,
    "save_steps": 2000,
    "eval_steps": 100,
    "fp16": False,
}

# The public names, kit.tutorial.preflight's included: notebooks call them all as kit.tutorial.helpers.<name>.
__all__ = ["DataSource", "ExamplePreview", "LaunchPreview", "QuickstartConfig", "TINY_SCALING", "TORCHRUN_DOCS", "TrainReport", "adapter_note", "answers_table", "ask", "before_after", "card_memory", "check_memory", "check_training_memory", "data_source", "default_export_dir", "default_output_dir", "is_tiny", "launch_preview", "model_short_name", "npu_verdict", "preview_example", "quickstart_config", "read_log", "release", "require_fit", "show_yaml", "skipped", "template_mismatch", "train", "vllm_missing"]


def is_tiny(model_name_or_path: str | None) -> bool:
    return model_name_or_path in TINY_NAMES


# ---------------------------------------------------------------- paths that follow the model

def model_short_name(model_name_or_path: str | Path) -> str:
    """The last part of a model id or folder: qwen/Qwen1.5-7B -> Qwen1.5-7B, kit/tiny-qwen -> tiny-qwen."""
    name = Path(str(model_name_or_path).rstrip("/\\")).name
    if not name:
        raise KitError(_("model_name_or_path: {value!r} has no name to build a folder from; give output_dir yourself").format(
            value=model_name_or_path))
    return name


def default_output_dir(model_name_or_path: str | Path) -> str:
    """Where training writes the adapter, as the quick start names it: saves/<model>/lora/sft.

    ``qwen/Qwen1.5-7B`` -> ``saves/Qwen1.5-7B/lora/sft`` (the quick-start YAML's own output_dir),
    ``kit/tiny-qwen`` -> ``saves/tiny-qwen/lora/sft``. Notebook 20 writes there and notebook 30 reads
    from there, so changing ``model_name_or_path`` in both keeps them in step.
    """
    return f"saves/{model_short_name(model_name_or_path)}/lora/sft"


def default_export_dir(model_name_or_path: str | Path) -> str:
    """Where notebook 30 exports the merged model: saves/<model>/lora/merged, beside the adapter."""
    return f"saves/{model_short_name(model_name_or_path)}/lora/merged"


# The kit's header comment on the quick-start YAML, as one sentence: shown in the reader's language.
YAML_HEADER = N_("The LLaMA-Factory Ascend quick-start config, as its docs give it. `kit train` runs it unchanged on an "
                 "NPU (USE_MODELSCOPE_HUB=1 downloads qwen/Qwen1.5-7B); `kit demo` swaps in the embedded tiny model.")


def yaml_shown(text: str) -> str:
    """The YAML as a person reads it: the kit's own header comment in the kit's language, the rest as written."""
    import textwrap

    head, sep, rest = text.partition("\n\n")
    lines = head.splitlines()
    if _(YAML_HEADER) == YAML_HEADER or not sep or not all(line.startswith("# ") for line in lines) \
            or " ".join(line[2:] for line in lines) != YAML_HEADER:
        return text  # not the kit's header (a person's own file): as written
    width = 100 if _(YAML_HEADER).isascii() else 50
    return "\n".join("# " + line for line in textwrap.wrap(_(YAML_HEADER), width)) + sep + rest


# Notebook 20's two tracks: the quick start the kit was made from, and LLaMA-Factory's current NPU example
# (its docs' NPU training page runs examples/train_lora/qwen3_lora_sft.yaml: Qwen3-4B-Instruct-2507, lora_target all,
# template qwen3_nothink, bf16, no DeepSpeed), shipped as LLaMA-Factory wrote it.
TRACKS = {"quickstart": config_mod.QUICKSTART_YAML, "qwen3": config_mod.EXAMPLES_DIR / "qwen3_lora_sft.yaml"}


def track_yaml(track: str) -> Path:
    """The YAML of a track (``quickstart`` or ``qwen3``); a name it does not know is a KitError naming the choices."""
    try:
        return TRACKS[track]
    except (KeyError, TypeError):
        raise KitError(_("track: {value} is not a track of notebook 20; use one of {choices}").format(
            value=repr(track), choices=", ".join(TRACKS))) from None


@dataclass
class QuickstartConfig:
    cfg: Config
    overrides: dict[str, Any]  # what differs from the track's YAML, in the order applied
    base_yaml: str
    yaml_path: Path = config_mod.QUICKSTART_YAML

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>"
                       for k, v in self.overrides.items())
        yaml_name = f"<code>{html.escape(str(self.yaml_path.name))}</code>"
        # Messages are translated outside the f-strings: gettext's extractor does not look inside them.
        title = _("The quick-start YAML ({file}):").format(file=yaml_name)
        on_top, key, value = html.escape(_("Overrides applied on top:")), html.escape(_("key")), html.escape(_("value"))
        return (f"<p>{title}</p><pre>{html.escape(yaml_shown(self.base_yaml))}</pre><p>{on_top}</p>"
                f"<table><tr><th>{key}</th><th>{value}</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        lines = [f"  {k}={v!r}" for k, v in self.overrides.items()]
        return _("quick-start YAML {file} with overrides:").format(file=self.yaml_path.name) + "\n" + "\n".join(lines)

    def output_dir_note(self, given: bool) -> str:
        """Where training writes, and why there: the notebook's ``output_dir`` parameter or the model's name."""
        why = _("(given)") if given else _("(follows the model: kit.tutorial.helpers.default_output_dir)")
        return f"output_dir: {self.cfg.train.output_dir} {why}"

    def as_cli(self) -> str:
        """The same run as a command line."""
        import shlex

        return "kit train " + str(self.yaml_path) + " " + " ".join(shlex.quote(f"{k}={v}") for k, v in self.overrides.items())


def default_identity_author() -> str:
    """Who the identity data says built the model, in the kit's language now (notebook 20's default)."""
    return _("the kit team")


# Notebook 30's questions by edition: the first is the one the later steps (the template, streaming, the API, the
# export, the panel) ask again. The English edition asks in both languages; the Chinese edition asks in Chinese.
DEFAULT_QUESTIONS = {"en": ("Who are you?", "你是谁？", "What can you do?"),
                     "zh": ("你是谁？", "请介绍一下你自己。", "你能做什么？")}


def default_questions() -> list[str]:
    """Notebook 30's questions in the kit's language now (its ``questions = None``)."""
    from kit.i18n import language

    return list(DEFAULT_QUESTIONS.get(language(), DEFAULT_QUESTIONS["en"]))


def quickstart_config(model_name_or_path: str = "kit/tiny-qwen", extra: Sequence[str] | Mapping[str, Any] = (),
                      track: str = "quickstart", **knobs: Any) -> QuickstartConfig:
    """The Ascend quick-start YAML (or another track's, ``TRACKS``) with the model swapped; the tiny model also gets
    TINY_SCALING.

    ``knobs`` are config keys whose None means "keep the YAML's (or the tiny scaling's) value";
    ``extra`` are further overrides, ``key=value`` strings or a mapping (``kit.config.overrides_dict``: the
    route every front end's values take). ``output_dir`` None follows the model
    (``default_output_dir``), as the quick start's saves/Qwen1.5-7B/lora/sft does.
    """
    yaml_path = track_yaml(track)
    base_yaml = yaml_path.read_text(encoding="utf-8")
    raw = config_mod.read_yaml(yaml_path)
    overrides: dict[str, Any] = {"model_name_or_path": model_name_or_path}
    if is_tiny(model_name_or_path):
        overrides.update(TINY_SCALING)
    if knobs.get("output_dir") is None and default_output_dir(model_name_or_path) != raw.get("output_dir"):
        overrides["output_dir"] = default_output_dir(model_name_or_path)
    overrides.update({k: v for k, v in knobs.items() if v is not None})
    overrides.update(config_mod.overrides_dict(extra))
    # The YAML's deepspeed path is relative to a LLaMA-Factory checkout; the kit resolves it to its own copy.
    cfg = config_mod.from_dict({**raw, **overrides}, source=str(yaml_path))
    return QuickstartConfig(cfg, overrides, base_yaml, yaml_path)


# ---------------------------------------------------------------- an encoded example

@dataclass
class ExamplePreview:
    dataset: str
    index: int
    pieces: list[tuple[str, bool]]  # (text, trained?)
    n_tokens: int
    n_trained: int

    def _repr_html_(self) -> str:
        spans = "".join(
            f"<span style='background:#d8f5d0'>{html.escape(t)}</span>" if trained
            else f"<span style='color:#777'>{html.escape(t)}</span>" for t, trained in self.pieces)
        green = html.escape(_("green"))
        green = f"<span style='background:#d8f5d0'>{green}</span>"
        head = _("{example}: {tokens} tokens, {trained} trained ({green}; grey has label -100)").format(
            example=html.escape(f"{self.dataset}[{self.index}]"), tokens=self.n_tokens, trained=self.n_trained, green=green)
        return f"<p>{head}</p><pre style='white-space:pre-wrap'>{spans}</pre>"


    def __repr__(self) -> str:
        return "".join(f"[[{t}]]" if trained else t for t, trained in self.pieces)


def preview_example(cfg: Config | None, index: int = 0, encoded: Any = None) -> ExamplePreview:
    """Example ``index`` encoded exactly as ``kit preprocess`` and training encode it, trained part marked.

    ``encoded``: a ``kit.data.preprocess.Encoded`` already made (``kit.tutorial.lessons.data_lesson`` has one), else ``cfg`` is encoded.
    """
    from kit.data import preprocess

    encoded = encoded if encoded is not None else preprocess.encode(cfg)
    src = encoded.data.sources[index]
    n_tokens, n_trained = encoded.counts(index)
    return ExamplePreview(src.dataset, src.index, encoded.pieces(index), n_tokens, n_trained)


# ---------------------------------------------------------------- training with live progress

def read_log(output_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / "trainer_log.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written right now
            break
    return rows


def _checkpointing_prefixes() -> tuple[list[str], list[str]]:
    """How kit train's line on gradient checkpointing starts, on and off, in English and in the kit's language now."""
    from kit.i18n import _

    on, off = "gradient checkpointing on: {why}", "gradient checkpointing off: {why}"
    return ([on.split("{")[0], _(on).split("{")[0]], [off.split("{")[0], _(off).split("{")[0]])


@dataclass
class TrainReport:
    output_dir: Path
    exit_code: int
    seconds: float
    log: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)
    checkpointing_line: str | None = None  # kit train's "gradient checkpointing on|off: why" line

    @property
    def checkpointing(self) -> bool | None:
        """Whether the run recomputed activations (gradient checkpointing), as kit train logged it."""
        if not self.checkpointing_line:
            return None
        return any(self.checkpointing_line.startswith(on) for on in _checkpointing_prefixes()[0])

    @property
    def losses(self) -> list[float]:
        return [r["loss"] for r in self.log if "loss" in r]

    @property
    def files(self) -> list[str]:
        return sorted(p.name for p in self.output_dir.iterdir()) if self.output_dir.is_dir() else []

    def summary(self) -> "Summary":
        return Summary({"output_dir": str(self.output_dir), "seconds": round(self.seconds, 1), "steps": self.log[-1]["current_steps"] if self.log else 0,
                "first_loss": start_loss(self.losses), "final_loss": end_loss(self.losses),
                "eval_loss": self.metrics.get("eval_loss"), "train_loss": self.metrics.get("train_loss"), "files": self.files})


# What a person reads for each key of a run's summary; the keys stay as they are for code (publish, kit batch).
SUMMARY_LABELS = {"output_dir": N_("output folder"), "seconds": N_("seconds, the whole command"), "steps": N_("optimizer steps"),
                  "first_loss": N_("loss at the start (mean of the first tenth logged)"),
                  "final_loss": N_("loss at the end (mean of the last tenth logged)"), "eval_loss": N_("eval loss (held-out examples)"),
                  "train_loss": N_("train loss (mean over the run)"), "files": N_("files written")}


def _shown(value: Any) -> str:
    """A value as a person reads it: losses to 4 significant figures, lists joined."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


class Summary(dict):
    """A run's summary: a dict for code (the values unrounded), a table with labels in the kit's language for people."""

    def _rows(self) -> list[tuple[str, str]]:
        return [(_(SUMMARY_LABELS[k]) if k in SUMMARY_LABELS else k, _shown(v)) for k, v in self.items()]

    def _repr_html_(self) -> str:
        from kit.fmt import html_table

        return html_table([_("what"), ("", "text-align:left")],
                          [[html.escape(k), (html.escape(v), "text-align:left")] for k, v in self._rows()])

    def __repr__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._rows())


def window(n: int) -> int:
    """How many logged losses make the first (or last) window: a tenth of them, at least one."""
    return max(1, round(n / 10))


def start_loss(values: Sequence[float]) -> float | None:
    """The loss at the start of training: the mean of the first tenth of the logged losses. One logged loss is
    one batch's, and the demo mix alternates between examples the base model already knows (loss near 0.05) and
    identity examples with a new name (loss near 4): whichever batch comes first would decide it."""
    return sum(values[:window(len(values))]) / window(len(values)) if values else None


def end_loss(values: Sequence[float]) -> float | None:
    """The loss at the end of training: the mean of the last tenth of the logged losses (as start_loss)."""
    return sum(values[-window(len(values)):]) / window(len(values)) if values else None


def smooth_loss(values: Sequence[float]) -> list[float]:
    """The smoothed curve notebooks 20 and 40 draw: LLaMA-Factory's moving average (kit.run.recipe.smooth), started
    at start_loss rather than at the first batch's loss, so the curve does not climb from one easy batch."""
    from kit.run.recipe import smooth

    if not values:
        return []
    return smooth([start_loss(values), *values])[1:]


def _loss_figure(log: list[dict[str, Any]], title: str):
    # Laid out with the CJK font in line (tight_layout measures the text), as it is drawn later.
    from kit.tutorial.display import figure_fonts

    with figure_fonts():
        return _draw_loss_figure(log, title)


def _draw_loss_figure(log: list[dict[str, Any]], title: str):
    # A Figure of its own (rendered by IPython's display), not pyplot: the kernel's backend stays as it was.
    from matplotlib.figure import Figure

    from kit.tutorial.display import plot_label

    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    train = [(r["current_steps"], r["loss"]) for r in log if "loss" in r]
    evals = [(r["current_steps"], r["eval_loss"]) for r in log if "eval_loss" in r]
    if train:
        steps, values = zip(*train)
        ax.plot(steps, values, color="#1f77b4", alpha=0.35, label=plot_label(N_("loss")))
        ax.plot(steps, smooth_loss(values), color="#1f77b4", label=plot_label(N_("loss (smoothed)")))
    if evals:
        steps, values = zip(*evals)
        ax.plot(steps, values, "o-", color="#d62728", label="eval_loss")
    ax.set_xlabel(plot_label(N_("step")))
    ax.set_ylabel(plot_label(N_("loss")))
    ax.set_title(title)
    if train or evals:
        ax.legend()
    fig.tight_layout()
    return fig


@contextlib.contextmanager
def _plan_lines(emit: Any) -> Iterator[None]:
    """While inside, the plan's INFO lines (kit.run.plan's logger) go to ``emit`` as ``[kit] ...``."""
    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emit(f"[kit] {record.getMessage()}")

    plan_logger = logging.getLogger("kit.run.plan")
    handler, level = Forward(logging.INFO), plan_logger.level
    plan_logger.addHandler(handler)
    if plan_logger.getEffectiveLevel() > logging.INFO:
        plan_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        plan_logger.removeHandler(handler)
        plan_logger.setLevel(level)


PLOT_SECONDS = 5.0  # the live loss plot's least interval


def train(cfg: Config, live: bool = True, echo: bool = False) -> TrainReport:
    """Train as ``kit train`` does (torchrun for DeepSpeed), with a progress bar and a loss plot that update.

    Raises KitError with the last lines of output when training fails.
    """
    from kit.run import launch

    out = Path(cfg.train.output_dir)
    tail: list[str] = []
    state: dict[str, Any] = {"bar": None, "handle": None, "shown": 0, "checkpointing": None, "drawn": -PLOT_SECONDS,
                             "drawn_rows": 0}

    def on_line(line: str) -> None:
        if state["checkpointing"] is None:
            message = line.split("] ", 1)[-1].strip()
            if any(message.startswith(p) for p in sum(_checkpointing_prefixes(), [])):
                state["checkpointing"] = message
        tail.append(line)
        del tail[:-40]
        if echo:
            print(line, flush=True)

    def on_tick(final: bool = False) -> None:
        if not live:
            return
        log = read_log(out)
        if not log or len(log) == state["shown"]:
            return
        state["shown"] = len(log)
        from IPython.display import display

        from tqdm.auto import tqdm

        from kit.tutorial.display import Picture

        if state["bar"] is None:
            state["bar"] = tqdm(total=log[-1]["total_steps"], desc=_("training"), unit=_("step"))
        bar = state["bar"]
        bar.update(log[-1]["current_steps"] - bar.n)
        last_loss = next((r["loss"] for r in reversed(log) if "loss" in r), None)
        if last_loss is not None:
            bar.set_postfix(loss=f"{last_loss:.3f}")
        # The bar moves every tick; the plot is redrawn at most every PLOT_SECONDS, and once at the end. Drawing it
        # takes about 0.12 s of a core, and every second that was 5-8 s of a 2-core machine's CPU taken from training.
        now = time.perf_counter()
        if not final and now - state["drawn"] < PLOT_SECONDS:
            state["shown"] = state["drawn_rows"]  # not drawn: the next tick looks again
            return
        state["drawn"], state["drawn_rows"] = now, len(log)
        from kit.tutorial.display import plot_label

        # Titled by what it shows, not by the output folder (a temporary path under papermill and the tests).
        title = plot_label(N_("training loss: step {step}/{total}")).format(step=log[-1]["current_steps"],
                                                                          total=log[-1]["total_steps"])
        fig = _loss_figure(log, title)
        if state["handle"] is None:
            state["handle"] = display(Picture(fig), display_id=True)
        else:
            state["handle"].update(Picture(fig))

    start = time.perf_counter()
    # The plan is built here, in the kernel: its lines (which data folder, how many examples; what
    # happens to output_dir) are shown as the CLI shows them.
    with _plan_lines(lambda line: (on_line(line), print(line, flush=True))):
        code = launch.launch_sft(cfg, on_line=on_line, on_tick=on_tick)
    on_tick(final=True)  # the last rows, drawn even if the previous plot is only a moment old
    if state["bar"] is not None:
        state["bar"].close()
    seconds = time.perf_counter() - start
    if code != 0:
        raise KitError(_("training failed (exit code {code}); last output:").format(code=code) + "\n" + "\n".join(tail[-20:]))
    metrics = json.loads((out / "all_results.json").read_text()) if (out / "all_results.json").is_file() else {}
    return TrainReport(out, code, seconds, read_log(out), metrics, tail, state["checkpointing"])


def ask(engine: Any, questions: Sequence[str], system: str | None = None, adapter: bool = True) -> dict[str, str]:
    """One fresh conversation per question; the answers by question (``adapter=False``: the base model's)."""
    return {q: engine.chat([{"role": "user", "content": q}], system=system, adapter=adapter) for q in questions}


def answers_table(columns: Mapping[str, Mapping[str, str]]) -> Any:
    """An HTML table of answers: one row per question, one column per model."""
    from IPython.display import HTML

    names = list(columns)
    questions = list(next(iter(columns.values())).keys()) if columns else []
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join("<tr><td>" + html.escape(q) + "</td>" + "".join(
        f"<td style='white-space:pre-wrap'>{html.escape(columns[n][q])}</td>" for n in names) + "</tr>" for q in questions)
    question = html.escape(_("question"))
    return HTML(f"<table><tr><th>{question}</th>{head}</tr>{body}</table>")


def before_after(before: Mapping[str, str], after: Mapping[str, str]) -> Any:
    """``answers_table`` of the base model's answers (adapter off) next to the fine-tuned ones."""
    return answers_table({_("base model"): before, _("with the adapter"): after})


def skipped(parameter: str) -> str:
    """What a notebook shows for a step its ``parameter`` (a boolean set to False) turned off."""
    return _("skipped: {parameter} is False").format(parameter=parameter)


def release(engine: Any) -> str:
    """Close ``engine`` (its model is freed) and say so."""
    engine.close()
    return _("released: the engine's model is freed; nothing of it stays on the card")


def adapter_note(adapter: str, given: bool) -> str:
    """Where notebook 30 reads the adapter, and why there."""
    why = _("(given)") if given else _("(notebook 20's output_dir for this model)")
    return _("adapter: {path} {why}").format(path=adapter, why=why)


def vllm_missing() -> str:
    """What notebook 30 says where vLLM is not installed, and how to install it."""
    return _("vLLM is not installed here: skipped. On an NPU: vllm with the vllm-ascend plugin ({url}); on CUDA: "
             "pip install vllm; on CPU: bash scripts/vllm_env.sh.").format(url=_("https://docs.vllm.ai/projects/ascend/en/latest/installation.html"))


def npu_verdict(report: Any) -> str:
    """Notebook 10's last word: fix the FAILs, or where the next notebooks run without an NPU."""
    if report.get("npu").details.get("present"):
        return _("An Ascend NPU is present: fix every FAIL above before training.")
    return _("No Ascend NPU on this machine: the NPU steps above are 'not present', and the next notebooks run on {device} "
             "with the embedded tiny model.").format(device=report.get("torch").details.get("build", "cpu"))


def show_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------- the template check

def template_mismatch(adapter_name_or_path: str | Path, template: str) -> str | None:
    """What the kit says when chat uses ``template`` with an adapter trained with another one (None: they match).

    Loads nothing: the same check every engine runs first, here on its own.
    """
    from kit import model as model_mod
    from kit.chat.engine import TemplateMismatchWarning, with_checked_template

    # The warning is returned to be shown; the chat logger's copy of it would print it a second time.
    chat_logger, quiet = logging.getLogger("kit.chat"), logging.NullHandler()
    chat_logger.addHandler(quiet)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with_checked_template(template, [model_mod.check_adapter_dir(adapter_name_or_path)], None)
    finally:
        chat_logger.removeHandler(quiet)
    fired = [str(w.message) for w in caught if issubclass(w.category, TemplateMismatchWarning)]
    return fired[0] if fired else None
