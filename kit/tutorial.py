"""What the notebooks show: the quick-start config and its overrides, an encoded example, live training.

Notebooks call these; ``kit demo`` runs the notebooks. Each function returns an object that renders
as HTML in JupyterLab and as text elsewhere, and carries the values a notebook publishes.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from kit import config as config_mod
from kit.config import Config
from kit.errors import KitError
from kit.hub import TINY_NAMES

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


@dataclass
class QuickstartConfig:
    cfg: Config
    overrides: dict[str, Any]  # what differs from the quick-start YAML, in the order applied
    base_yaml: str

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>"
                       for k, v in self.overrides.items())
        return (f"<p>The quick-start YAML (<code>{html.escape(str(config_mod.QUICKSTART_YAML.name))}</code>):</p>"
                f"<pre>{html.escape(self.base_yaml)}</pre><p>Overrides applied on top:</p>"
                f"<table><tr><th>key</th><th>value</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        lines = [f"  {k}={v!r}" for k, v in self.overrides.items()]
        return f"quick-start YAML {config_mod.QUICKSTART_YAML.name} with overrides:\n" + "\n".join(lines)

    def as_cli(self) -> str:
        """The same run as a command line."""
        return "kit train " + str(config_mod.QUICKSTART_YAML) + " " + " ".join(f"{k}={v}" for k, v in self.overrides.items())


def quickstart_config(model_name_or_path: str = "kit/tiny-qwen", extra: Sequence[str] = (), **knobs: Any) -> QuickstartConfig:
    """The Ascend quick-start YAML with the model swapped; the tiny model also gets TINY_SCALING.

    ``knobs`` are config keys whose None means "keep the YAML's (or the tiny scaling's) value";
    ``extra`` are further ``key=value`` strings.
    """
    base_yaml = config_mod.QUICKSTART_YAML.read_text(encoding="utf-8")
    raw = config_mod.read_yaml(config_mod.QUICKSTART_YAML)
    overrides: dict[str, Any] = {"model_name_or_path": model_name_or_path}
    if is_tiny(model_name_or_path):
        overrides.update(TINY_SCALING)
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
        return (f"<p>{self.dataset}[{self.index}]: {self.n_tokens} tokens, {self.n_trained} trained "
                f"(<span style='background:#d8f5d0'>green</span>; grey has label -100)</p>"
                f"<pre style='white-space:pre-wrap'>{spans}</pre>")

    def __repr__(self) -> str:
        return "".join(f"[[{t}]]" if trained else t for t, trained in self.pieces)


def preview_example(cfg: Config, index: int = 0) -> ExamplePreview:
    """Example ``index`` encoded exactly as ``kit preprocess`` and training encode it, trained part marked."""
    from kit import preview

    encoded = preview.encode(cfg)
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


@dataclass
class TrainReport:
    output_dir: Path
    exit_code: int
    seconds: float
    log: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)

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

    from kit.train import smooth

    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    train = [(r["current_steps"], r["loss"]) for r in log if "loss" in r]
    evals = [(r["current_steps"], r["eval_loss"]) for r in log if "eval_loss" in r]
    if train:
        steps, values = zip(*train)
        ax.plot(steps, values, color="#1f77b4", alpha=0.35, label="loss")
        ax.plot(steps, smooth(values), color="#1f77b4", label="loss (smoothed)")
    if evals:
        steps, values = zip(*evals)
        ax.plot(steps, values, "o-", color="#d62728", label="eval_loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if train or evals:
        ax.legend()
    fig.tight_layout()
    return fig


def train(cfg: Config, live: bool = True, echo: bool = False) -> TrainReport:
    """Train as ``kit train`` does (torchrun for DeepSpeed), with a progress bar and a loss plot that update.

    Raises KitError with the last lines of output when training fails.
    """
    from kit import launch

    out = Path(cfg.train.output_dir)
    tail: list[str] = []
    state: dict[str, Any] = {"bar": None, "handle": None, "shown": 0}

    def on_line(line: str) -> None:
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

        if state["bar"] is None:
            state["bar"] = tqdm(total=log[-1]["total_steps"], desc="training", unit="step")
        bar = state["bar"]
        bar.update(log[-1]["current_steps"] - bar.n)
        last_loss = next((r["loss"] for r in reversed(log) if "loss" in r), None)
        if last_loss is not None:
            bar.set_postfix(loss=f"{last_loss:.3f}")
        fig = _loss_figure(log, f"{out.name}: step {log[-1]['current_steps']}/{log[-1]['total_steps']}")
        if state["handle"] is None:
            state["handle"] = display(fig, display_id=True)
        else:
            state["handle"].update(fig)

    start = time.perf_counter()
    code = launch.launch_sft(cfg, on_line=on_line, on_tick=on_tick)
    if state["bar"] is not None:
        state["bar"].close()
    seconds = time.perf_counter() - start
    if code != 0:
        raise KitError(f"training failed (exit code {code}); last output:\n" + "\n".join(tail[-20:]))
    metrics = json.loads((out / "all_results.json").read_text()) if (out / "all_results.json").is_file() else {}
    return TrainReport(out, code, seconds, read_log(out), metrics, tail)


def ask(engine: Any, questions: Sequence[str], system: str | None = None) -> dict[str, str]:
    """One fresh conversation per question; the answers by question."""
    return {q: engine.chat([{"role": "user", "content": q}], system=system) for q in questions}


def answers_table(columns: Mapping[str, Mapping[str, str]]) -> Any:
    """An HTML table of answers: one row per question, one column per model."""
    from IPython.display import HTML

    names = list(columns)
    questions = list(next(iter(columns.values())).keys()) if columns else []
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join("<tr><td>" + html.escape(q) + "</td>" + "".join(
        f"<td style='white-space:pre-wrap'>{html.escape(columns[n][q])}</td>" for n in names) + "</tr>" for q in questions)
    return HTML(f"<table><tr><th>question</th>{head}</tr>{body}</table>")


def show_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
