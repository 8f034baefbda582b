"""Before a run on a card: which data folder is read, the torchrun command explained, will each step fit.

Notebooks reach these through kit.tutorial.helpers (which re-exports them).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.config import Config
from kit.errors import KitError
from kit.i18n import _


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

    Uses the launcher's own rules (``kit.run.launch.plan_launch``); finds the device without opening it.
    """
    import shlex

    from kit import device as device_mod
    from kit.run import launch
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
    from kit.estimate.devices import detect_device, lookup_device, system_ram

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
    from kit.estimate.steps import adapter_parameters, step_estimate_for_config

    cfg = chat_config(model_name_or_path, adapter_name_or_path, device=device, merge_adapter=merge_adapter, **settings)
    params = adapter_parameters(adapter_name_or_path) if adapter_name_or_path else 0
    if step == "export":
        result = step_estimate_for_config(cfg, "export", adapter_params=params)
    else:
        name, memory, kind = card_memory(card, device)
        result = step_estimate_for_config(cfg, step, device="cpu" if kind == "cpu" else name, device_memory_gib=memory / (1 << 30),
                                          adapter_params=params)
    return require_fit(result, _("{step} with {model}").format(step=step, model=model_name_or_path))
