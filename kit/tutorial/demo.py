"""``kit demo``: the whole quick start on the embedded tiny model, by running the notebooks.

The four notebooks run in order under papermill into a run folder; ``key=value`` overrides become
notebook parameters (or, for any other config key, quick-start overrides of the training notebook).
What each notebook published is read back and summarised: where the adapter, the logs, the loss
plot, the chat transcript and the executed notebooks are.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from kit import config as config_mod
from kit import i18n
from kit.i18n import _
from kit.tutorial.parameters import EXPORT_DIR, OUTPUT_DIR, OVERRIDES, route, run_outputs
from kit.tutorial.values import notebook_dir

ORDER = ("00_environment_check", "10_npu_setup", "20_lora_sft", "30_chat_inference")
TRANSCRIPT = "transcript.md"


@dataclass
class DemoRun:
    run_dir: Path
    output_dir: Path
    notebooks: dict[str, Path] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def transcript(self) -> Path:
        return self.run_dir / TRANSCRIPT


def notebook_parameters(path: Path) -> dict[str, Any]:
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)

    return {name: p for name, p in pm.inspect_notebook(str(path)).items()}


def plan_parameters(overrides: Sequence[str], run_dir: Path, lang: str = "en") -> tuple[dict[str, dict[str, Any]], Path]:
    """Split ``key=value`` overrides into each notebook's parameters and notebook 20's config overrides
    (``kit.tutorial.parameters.route``, as ``kit batch`` does); the run's outputs in its own folder."""
    params: dict[str, dict[str, Any]] = {name: {} for name in ORDER}
    notebooks = notebook_dir() / lang
    known = {name: set(notebook_parameters(notebooks / f"{name}.ipynb")) for name in ORDER}
    given = config_mod.overrides_dict(overrides)
    # Made absolute here: the notebooks run inside the run folder, the person typed paths from here.
    outputs = run_outputs(run_dir)
    output_dir = Path(given.pop(OUTPUT_DIR, outputs[OUTPUT_DIR])).resolve()
    export_dir = Path(given.pop(EXPORT_DIR, outputs[EXPORT_DIR])).resolve()
    params["20_lora_sft"][OUTPUT_DIR] = str(output_dir)
    params["30_chat_inference"]["adapter_name_or_path"] = str(output_dir)
    params["30_chat_inference"][EXPORT_DIR] = str(export_dir)
    # A parameter several notebooks have (device, model_name_or_path, identity_name) goes to each of them;
    # a config key none of them has goes into notebook 20's overrides, as kit batch routes it.
    for name in ORDER:
        params[name].update(route(given, known[name])[0])
    taken = set().union(*known.values())
    _, config_overrides, unknown = route({k: v for k, v in given.items() if k not in taken}, ())
    if unknown:
        config_mod.from_dict({k: given[k] for k in unknown})  # the validator names it and suggests the closest key
    if config_overrides:
        params["20_lora_sft"][OVERRIDES] = config_overrides
    # Fail now, not minutes later inside a notebook: the training config must validate.
    from kit.tutorial.helpers import quickstart_config

    p20 = {k: v for k, v in params["20_lora_sft"].items() if k in known["20_lora_sft"] and k != "overrides"}
    quickstart_config(p20.pop("model_name_or_path", "kit/tiny-qwen"), extra=config_overrides,
                      **{k: v for k, v in p20.items() if k in config_mod.KEYS})
    return params, output_dir


def run_demo(overrides: Sequence[str] = (), run_dir: str | Path | None = None, lang: str = "en",
             log: Callable[[str], None] = print) -> DemoRun:
    from kit.tutorial import values as notebook_io
    from kit.tutorial.values import KitFolder

    run_dir = Path(run_dir or Path("runs") / f"demo-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    # lang=zh among the overrides is the notebooks' parameter: the edition follows it, so prose and output agree.
    lang = str(config_mod.overrides_dict(overrides).get("lang", lang))
    if lang not in i18n.LANGUAGES:
        raise i18n.LanguageError(_("lang: {lang!r} is not a language the kit speaks; use one of {languages}").format(
            lang=lang, languages=", ".join(i18n.LANGUAGES)))
    params, output_dir = plan_parameters(overrides, run_dir, lang)
    run = DemoRun(run_dir, output_dir.resolve())
    notebooks = notebook_dir() / lang
    targets = {name: f"{lang}/{name}.ipynb" for name in ORDER}
    # A run folder a person named may hold their files: the demo replaces only what it wrote there (its
    # kit_files.json), refuses anything else before the first notebook starts, and is alone in it while it runs.
    with KitFolder.open(run_dir, "run_dir", say=log) as folder:
        folder.refuse_foreign([*targets.values(), TRANSCRIPT])
        for i, name in enumerate(ORDER, 1):
            source = notebooks / f"{name}.ipynb"
            target = folder.claim(targets[name])  # papermill writes it: the demo's by name
            shown = ", ".join(f"{k}={v}" for k, v in params[name].items()) or _("defaults")
            log(f"[{i}/{len(ORDER)}] {name} ({shown})")
            start = time.perf_counter()
            # Notebooks run with the run folder as working directory, so relative paths land in it.
            values = notebook_io.execute(source, target, params[name], cwd=run_dir)
            run.seconds[name] = round(time.perf_counter() - start, 1)
            run.notebooks[name] = target
            run.values[name] = values
            log("      " + _("done in {seconds} s:").format(seconds=run.seconds[name]) + " " + _headline(name, values))
        folder.write_files({TRANSCRIPT: _transcript(run)})
    return run


def _headline(name: str, v: dict[str, Any]) -> str:
    if name == "00_environment_check":
        return _("doctor {summary}").format(summary=v.get("doctor_summary"))
    if name == "10_npu_setup":
        return _("NPU present") if v.get("npu_present") else _("no NPU here: the tutorial runs on this machine's CPU/GPU")
    if name == "20_lora_sft":
        first, final = v.get("first_loss"), v.get("final_loss")
        losses = (_("loss {first:.3f} -> {final:.3f}").format(first=first, final=final) if first is not None and final is not None
                  else _("no loss logged (raise the steps or lower logging_steps)"))
        return _("{losses}, eval_loss {eval_loss}, {seconds} s").format(losses=losses, eval_loss=v.get("eval_loss"),
                                                                        seconds=v.get("train_seconds"))
    if name == "30_chat_inference":
        question = (v.get("questions") or [""])[0]
        return _("after training, {question!r} -> {answer!r}").format(question=question, answer=v.get("answers_after", {}).get(question))
    return ""


def _transcript(run: DemoRun) -> str:
    chat = run.values.get("30_chat_inference", {})
    before, after = chat.get("answers_before", {}), chat.get("answers_after", {})
    lines = ["# " + _("Chat before and after LoRA training"), ""]
    user, base, adapted = _("User:"), _("base model"), _("with the adapter")
    for q in chat.get("questions") or list(after):
        lines += [f"**{user}** {q}", "", f"- {base}: {before.get(q, '')}", f"- {adapted}: {after[q]}", ""]
    return "\n".join(lines)


def summary(run: DemoRun) -> str:
    out = run.output_dir
    notebooks = f"{run.run_dir}/{next(iter(run.notebooks.values())).parent.name}/"
    where = [(_("adapter"), f"{out}/adapter_model.safetensors (+ adapter_config.json)"),
             (_("training log"), f"{out}/trainer_log.jsonl, {out}/all_results.json"),
             (_("loss plot"), f"{out}/training_loss.png"),
             (_("chat transcript"), str(run.transcript)),
             (_("merged model"), str(run.values.get("30_chat_inference", {}).get("export_dir"))),
             (_("notebooks"), _("{folder} (executed, with outputs)").format(folder=notebooks))]
    width = max(18, *(_width(what) + 1 for what, _where in where))
    lines = ["", _("The quick start ran end to end. Where everything is:")]
    lines += [f"  {what}{' ' * (width - _width(what))}{path}" for what, path in where]
    lines += ["", _("Chat with it yourself:"),
              f"  kit chat --model_name_or_path kit/tiny-qwen --adapter_name_or_path {out} --template qwen --finetuning_type lora"]
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese character takes two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def demo_main(argv: Sequence[str]) -> int:
    from kit.command_parser import CommandParser

    parser = CommandParser("kit demo", _("The whole quick start on the embedded tiny model."), words_anywhere=True)
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                        help=_("key=value: notebook parameters or quick-start config keys"))
    parser.add_argument("--run_dir", default=None, metavar="DIR", help=_("where executed notebooks go (default runs/demo-TIMESTAMP)"))
    parser.add_argument("--lang", choices=("en", "zh"), default=None,
                        help=_("which edition of the notebooks to run (default: the kit's language, kit --lang or LANG)"))
    parser.add_argument("--json", action="store_true", help=_("print the published values as JSON at the end"))
    args = parser.parse_args(list(argv))
    from kit import device

    print("[kit demo] " + _("device: {device}").format(device=device.detect().summary()))
    run = run_demo(args.overrides, args.run_dir, args.lang or i18n.language())
    print(summary(run))
    if args.json:
        print(json.dumps({"run_dir": str(run.run_dir), "output_dir": str(run.output_dir),
                          "notebooks": {name: str(path) for name, path in run.notebooks.items()},
                          "seconds": run.seconds, "values": run.values}, ensure_ascii=False))
    return 0
