"""What the notebooks show: the quick-start config and its overrides, an encoded example, live training.

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
from kit.i18n import N_, _

# The quick start trains Qwen1.5-7B for 3 epochs on 1000 + 91 examples at lr 1e-4. The embedded
# tiny model gets a budget that fits a few minutes on 2 CPU cores and still visibly learns its new
# name (measured by the tiny model's build experiment; see kit/tiny_qwen/README.md).
TINY_SCALING: dict[str, Any] = {
    "max_samples": 100,
    "num_train_epochs": 12.0,
    "learning_rate": 3.0e-3,
    "logging_steps": 10,
    "save_steps": 2000,
    "eval_steps": 100,
    "fp16": False,
}


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


@dataclass
class QuickstartConfig:
    cfg: Config
    overrides: dict[str, Any]  # what differs from the quick-start YAML, in the order applied
    base_yaml: str

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>"
                       for k, v in self.overrides.items())
        yaml_name = f"<code>{html.escape(str(config_mod.QUICKSTART_YAML.name))}</code>"
        # Messages are translated outside the f-strings: gettext's extractor does not look inside them.
        title = _("The quick-start YAML ({file}):").format(file=yaml_name)
        on_top, key, value = html.escape(_("Overrides applied on top:")), html.escape(_("key")), html.escape(_("value"))
        return (f"<p>{title}</p><pre>{html.escape(self.base_yaml)}</pre><p>{on_top}</p>"
                f"<table><tr><th>{key}</th><th>{value}</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        lines = [f"  {k}={v!r}" for k, v in self.overrides.items()]
        return _("quick-start YAML {file} with overrides:").format(file=config_mod.QUICKSTART_YAML.name) + "\n" + "\n".join(lines)

    def output_dir_note(self, given: bool) -> str:
        """Where training writes, and why there: the notebook's ``output_dir`` parameter or the model's name."""
        why = _("(given)") if given else _("(follows the model: kit.tutorial.default_output_dir)")
        return f"output_dir: {self.cfg.train.output_dir} {why}"

    def as_cli(self) -> str:
        """The same run as a command line."""
        import shlex

        return "kit train " + str(config_mod.QUICKSTART_YAML) + " " + " ".join(shlex.quote(f"{k}={v}") for k, v in self.overrides.items())


def quickstart_config(model_name_or_path: str = "kit/tiny-qwen", extra: Sequence[str] = (), **knobs: Any) -> QuickstartConfig:
    """The Ascend quick-start YAML with the model swapped; the tiny model also gets TINY_SCALING.

    ``knobs`` are config keys whose None means "keep the YAML's (or the tiny scaling's) value";
    ``extra`` are further ``key=value`` strings. ``output_dir`` None follows the model
    (``default_output_dir``), as the quick start's saves/Qwen1.5-7B/lora/sft does.
    """
    base_yaml = config_mod.QUICKSTART_YAML.read_text(encoding="utf-8")
    raw = config_mod.read_yaml(config_mod.QUICKSTART_YAML)
    overrides: dict[str, Any] = {"model_name_or_path": model_name_or_path}
    if is_tiny(model_name_or_path):
        overrides.update(TINY_SCALING)
    if knobs.get("output_dir") is None and default_output_dir(model_name_or_path) != raw.get("output_dir"):
        overrides["output_dir"] = default_output_dir(model_name_or_path)
    overrides.update({k: v for k, v in knobs.items() if v is not None})
    for item in extra:
        key, value = config_mod._parse_override(item)
        overrides[key] = value
    # The YAML's deepspeed path is relative to a LLaMA-Factory checkout; the kit resolves it to its own copy.
    cfg = config_mod.from_dict({**raw, **overrides}, source=str(config_mod.QUICKSTART_YAML))
    return QuickstartConfig(cfg, overrides, base_yaml)


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

    ``encoded``: a ``kit.preview.Encoded`` already made (``kit.lessons.data_lesson`` has one), else ``cfg`` is encoded.
    """
    from kit import preview

    encoded = encoded if encoded is not None else preview.encode(cfg)
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

    def summary(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "seconds": round(self.seconds, 1), "steps": self.log[-1]["current_steps"] if self.log else 0,
                "first_loss": self.losses[0] if self.losses else None, "final_loss": self.losses[-1] if self.losses else None,
                "eval_loss": self.metrics.get("eval_loss"), "train_loss": self.metrics.get("train_loss"), "files": self.files}


def _loss_figure(log: list[dict[str, Any]], title: str):
    # A Figure of its own (rendered by IPython's display), not pyplot: the kernel's backend stays as it was.
    from matplotlib.figure import Figure

    from kit.lessons.common import _label
    from kit.train import smooth

    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    train = [(r["current_steps"], r["loss"]) for r in log if "loss" in r]
    evals = [(r["current_steps"], r["eval_loss"]) for r in log if "eval_loss" in r]
    if train:
        steps, values = zip(*train)
        ax.plot(steps, values, color="#1f77b4", alpha=0.35, label=_label(N_("loss")))
        ax.plot(steps, smooth(values), color="#1f77b4", label=_label(N_("loss (smoothed)")))
    if evals:
        steps, values = zip(*evals)
        ax.plot(steps, values, "o-", color="#d62728", label="eval_loss")
    ax.set_xlabel(_label(N_("step")))
    ax.set_ylabel(_label(N_("loss")))
    ax.set_title(title)
    if train or evals:
        ax.legend()
    fig.tight_layout()
    return fig


@contextlib.contextmanager
def _plan_lines(emit: Any) -> Iterator[None]:
    """While inside, the plan's INFO lines (kit.plan's logger) go to ``emit`` as ``[kit] ...``."""
    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emit(f"[kit] {record.getMessage()}")

    plan_logger = logging.getLogger("kit.plan")
    handler, level = Forward(logging.INFO), plan_logger.level
    plan_logger.addHandler(handler)
    if plan_logger.getEffectiveLevel() > logging.INFO:
        plan_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        plan_logger.removeHandler(handler)
        plan_logger.setLevel(level)


def train(cfg: Config, live: bool = True, echo: bool = False) -> TrainReport:
    """Train as ``kit train`` does (torchrun for DeepSpeed), with a progress bar and a loss plot that update.

    Raises KitError with the last lines of output when training fails.
    """
    from kit import launch

    out = Path(cfg.train.output_dir)
    tail: list[str] = []
    state: dict[str, Any] = {"bar": None, "handle": None, "shown": 0, "checkpointing": None}

    def on_line(line: str) -> None:
        if state["checkpointing"] is None:
            message = line.split("] ", 1)[-1].strip()
            if any(message.startswith(p) for p in sum(_checkpointing_prefixes(), [])):
                state["checkpointing"] = message
        tail.append(line)
        del tail[:-40]
        if echo:
            print(line, flush=True)

    def on_tick() -> None:
        if not live:
            return
        log = read_log(out)
        if not log or len(log) == state["shown"]:
            return
        state["shown"] = len(log)
        from IPython.display import display

        from tqdm.auto import tqdm

        from kit.lessons.common import Picture

        if state["bar"] is None:
            state["bar"] = tqdm(total=log[-1]["total_steps"], desc=_("training"), unit=_("step"))
        bar = state["bar"]
        bar.update(log[-1]["current_steps"] - bar.n)
        last_loss = next((r["loss"] for r in reversed(log) if "loss" in r), None)
        if last_loss is not None:
            bar.set_postfix(loss=f"{last_loss:.3f}")
        from kit.lessons.common import _label

        title = _label(N_("{name}: step {step}/{total}")).format(name=out.name, step=log[-1]["current_steps"],
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


# ---------------------------------------------------------------- which data folder

@dataclass
class DataSource:
    """The folder the datasets are read from, why, and what each dataset holds."""

    folder: Path
    why: str
    bundled: bool  # the kit's own demo data, not LLaMA-Factory's or a person's
    counts: dict[str, int]  # examples read per dataset (after max_samples)

    def __repr__(self) -> str:
        per = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return _("datasets from {folder} ({why}): {per}").format(folder=self.folder, why=self.why, per=per)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{v}</td></tr>" for k, v in self.counts.items())
        own = (" " + _("<b>This is the kit's own demo data</b>, not LLaMA-Factory's: set <code>dataset_dir</code> to a "
                       "LLaMA-Factory checkout's <code>data/</code> (or your own folder with a <code>dataset_info.json</code>), or "
                       "run from a folder that has <code>data/dataset_info.json</code>.") if self.bundled else "")
        read_from = _("Datasets read from {folder} ({why}).").format(folder=f"<code>{html.escape(str(self.folder))}</code>",
                                                                     why=html.escape(self.why))
        dataset, read = html.escape(_("dataset")), html.escape(_("examples read"))
        return f"<p>{read_from}{own}</p><table><tr><th>{dataset}</th><th>{read}</th></tr>{rows}</table>"


def data_source(cfg: Config) -> DataSource:
    """Which folder this config's datasets come from (as training resolves it) and how many examples each has."""
    from kit.data.loader import DEMO_DIR, describe_dataset_dir, load_examples, resolve_dataset_dir

    folder = resolve_dataset_dir(cfg.data.dataset_dir, cfg.config_dir)
    examples, report = load_examples(cfg.dataset_names, folder, cfg.data.max_samples)
    counts = {name: c["read"] for name, c in report.per_dataset.items()}
    return DataSource(folder, describe_dataset_dir(cfg.data.dataset_dir, folder), folder == DEMO_DIR, counts)


# ---------------------------------------------------------------- the torchrun command, explained

TORCHRUN_DOCS = "https://docs.pytorch.org/docs/stable/elastic/run.html"


@dataclass
class LaunchPreview:
    """How ``kit train`` will start this run: in process, or torchrun with these flags, and why each."""

    reason: str | None  # why torchrun (None: trains in this process)
    seed_command: str  # the quick start's way of writing it
    kit_command: str | None  # what kit train runs
    flags: list[tuple[str, str, str]]  # (flag, value, where the value comes from)

    def __repr__(self) -> str:
        if self.reason is None:
            return (_("kit train trains in this process (no DeepSpeed, FORCE_TORCHRUN, several devices or nodes); "
                      "the quick start's command would be:") + f"\n  {self.seed_command}")
        lines = [_("kit train launches torchrun ({reason}):").format(reason=self.reason), f"  {self.kit_command}",
                 _("as the quick start writes it:"), f"  {self.seed_command}", ""]
        lines += [f"  {flag:<16} {value:<10} {why}" for flag, value, why in self.flags]
        return "\n".join(lines + [_("torchrun's flags: {url}").format(url=TORCHRUN_DOCS)])

    def _repr_html_(self) -> str:
        if self.reason is None:
            head = "<p>" + _("<code>kit train</code> trains <b>in this process</b> (no DeepSpeed, FORCE_TORCHRUN, several devices "
                             "or nodes). The quick start's command would be:") + "</p>"
            return head + f"<pre>{html.escape(self.seed_command)}</pre>"
        rows = "".join(f"<tr><td><code>{html.escape(f)}</code></td><td><code>{html.escape(v)}</code></td>"
                       f"<td style='text-align:left'>{html.escape(w)}</td></tr>" for f, v, w in self.flags)
        launches = _("<code>kit train</code> launches torchrun ({reason}):").format(reason=html.escape(self.reason))
        head = "".join(f"<th>{html.escape(t)}</th>" for t in (_("flag"), _("value"), _("how kit train chose it")))
        link = html.escape(_("torchrun (Elastic Launch) in the PyTorch docs"))
        docs = _("Every flag: {link}.").format(link=f"<a href='{TORCHRUN_DOCS}'>{link}</a>")
        as_written = html.escape(_("As the quick start writes it:"))
        return (f"<p>{launches}</p><pre>{html.escape(self.kit_command or '')}</pre>"
                f"<p>{as_written}</p><pre>{html.escape(self.seed_command)}</pre>"
                f"<table><tr>{head}</tr>{rows}</table><p>{docs}</p>")


def launch_preview(cfg: Config, env: Any = None, info: Any = None, config_path: str = "qwen1_5_lora_sft_ds.yaml") -> LaunchPreview:
    """The torchrun command ``kit train`` would run for ``cfg`` here, each flag with where its value comes from.

    Uses the launcher's own rules (``kit.launch.plan_launch``); finds the device without opening it.
    """
    import shlex

    from kit import device as device_mod
    from kit import launch
    from kit.envvars import EnvSettings

    env = env or EnvSettings.from_environ()
    info = info or device_mod.detect(cfg.model.device, env, query=False)
    plan = launch.plan_launch(cfg, env, info)
    nproc = plan.nproc_per_node if plan else 1
    port = plan.master_port if plan and plan.master_port else 7007
    seed = (f"torchrun --nproc_per_node {nproc} --nnodes {env.nnodes} --node_rank {env.node_rank} "
            f"--master_addr {plan.master_addr if plan else '127.0.0.1'} --master_port {port} src/train.py {config_path}")
    if plan is None:
        return LaunchPreview(None, seed, None, [])
    argv = launch.torchrun_command(plan, ["--plan", "<plan folder>"])
    shown = ["torchrun"] + argv[3:]  # sys.executable -m torch.distributed.run is torchrun
    if env.nproc_per_node is not None:
        nproc_why = "NPROC_PER_NODE"
    elif info.is_accelerator:
        nproc_why = _("one process per visible {kind} card ({count}; ASCEND_RT_VISIBLE_DEVICES / visible_devices chooses them)").format(
            kind=info.kind, count=info.count)
    else:
        nproc_why = _("one process on a CPU unless NPROC_PER_NODE says otherwise (LLaMA-Factory would count 0 devices here)")
    flags = [("--nproc_per_node", str(plan.nproc_per_node), _("processes on this node: {why}").format(why=nproc_why))]
    if plan.master_port:
        flags += [("--nnodes", str(plan.nnodes), _("machines in the run: NNODES (default 1)")),
                  ("--node_rank", str(plan.node_rank), _("this machine's number, 0 for the first: NODE_RANK (default 0)")),
                  ("--master_addr", plan.master_addr, _("the NODE_RANK 0 machine's address, the same on every node: MASTER_ADDR "
                                                        "(default 127.0.0.1 for one node)")),
                  ("--master_port", str(plan.master_port), _("a free port on that machine, the same on every node: MASTER_PORT"))]
    else:
        flags += [("--standalone", "", _("one node without MASTER_PORT: torchrun picks a free port on this machine and "
                                         "holds it, so two runs cannot collide (instead of --nnodes 1 --node_rank 0 "
                                         "--master_addr 127.0.0.1 --master_port 7007); set MASTER_PORT to use a port of yours"))]
    flags.append(("-m kit.train --plan", "<plan folder>", _("in place of src/train.py {config}: each rank reads the plan kit "
                                                            "train built once (the checked config and the encoded data)").format(
                                                                config=config_path)))
    return LaunchPreview(plan.reason, seed, " ".join(shlex.quote(a) for a in shown), flags)


# ---------------------------------------------------------------- will it fit? (before loading a model)

def card_memory(card: str | None = None, device: str = "auto") -> tuple[str, int, str]:
    """(name, bytes, kind) of the memory a step will run in: the card named, else this machine's.

    An NPU is read from ``npu-smi info`` (the first visible card's HBM) where npu-smi is there, so
    the kernel opens no context on a card its training processes need.
    """
    from kit.device_memory import detect_device, lookup_device, system_ram

    if card:
        return lookup_device(card)
    if device == "cpu":
        return "cpu (system RAM)", system_ram(), "cpu"
    if device in ("auto", "npu", None):
        import os

        from kit.doctor.probes import gather_npu_smi
        from kit.envvars import EnvSettings

        facts = gather_npu_smi(dict(os.environ))
        chips = [c for c in facts.chips if c.memory_total_mb]
        visible = EnvSettings.from_environ().ascend_rt_visible_devices
        first = int(visible.split(",")[0]) if visible and visible.split(",")[0].strip().isdigit() else None
        chip = next((c for c in chips if c.npu_id == first), chips[0] if chips else None)
        if chip is not None:
            return f"Ascend {chip.name} (npu-smi, card {chip.npu_id})", chip.memory_total_mb << 20, "npu"
    return detect_device()


def require_fit(result: Any, what: str) -> Any:
    """Return the estimate; raise KitError, before anything is loaded, when it says the step does not fit."""
    if result.verdict == "does not fit":
        headline = result.headline() if callable(getattr(result, "headline", None)) else result._headline()
        raise KitError(_("{what} would not fit: {headline}. Nothing was loaded. Free the card (close other engines in this "
                         "kernel, stop other processes on it: npu-smi info), choose a card with more memory (visible_devices), "
                         "or lower the settings named in the table above").format(what=what, headline=headline))
    return result


def check_training_memory(cfg: Config, card: str | None = None) -> Any:
    """``kit estimate`` for this training config on this card, refused (KitError) when it cannot fit."""
    from kit.estimate import estimate_for_config

    name, memory, kind = card_memory(card, cfg.model.device)
    preview = launch_preview(cfg)
    nproc = 1 if preview.reason is None else int(preview.flags[0][1])
    # "cpu" by its kind: the estimate reads the CPU's overheads then, not an accelerator's (a name it does not know)
    result = estimate_for_config(cfg, device="cpu" if kind == "cpu" else name, device_memory_gib=memory / (1 << 30), nproc=nproc)
    return require_fit(result, _("training {model}").format(model=cfg.model.model_name_or_path))


def check_memory(step: str, model_name_or_path: str, adapter_name_or_path: str | None = None, *, device: str = "auto",
                 card: str | None = None, merge_adapter: bool = False, **settings: Any) -> Any:
    """The peak memory of a notebook step that loads a model (chat, vllm, export), refused when it cannot fit.

    Called before the model is loaded, from config.json alone; ``settings`` are chat config keys
    (cutoff_len, vllm_maxlen, vllm_gpu_util, export_size, ...).
    """
    from kit.chat.engine import chat_config
    from kit.estimate_steps import adapter_parameters, step_estimate_for_config

    cfg = chat_config(model_name_or_path, adapter_name_or_path, device=device, merge_adapter=merge_adapter, **settings)
    params = adapter_parameters(adapter_name_or_path) if adapter_name_or_path else 0
    if step == "export":
        result = step_estimate_for_config(cfg, "export", adapter_params=params)
    else:
        name, memory, kind = card_memory(card, device)
        result = step_estimate_for_config(cfg, step, device="cpu" if kind == "cpu" else name, device_memory_gib=memory / (1 << 30),
                                          adapter_params=params)
    return require_fit(result, _("{step} with {model}").format(step=step, model=model_name_or_path))


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
