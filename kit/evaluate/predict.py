"""Predict on a dataset and score it, writing LLaMA-Factory 0.9.5's two files.

What LLaMA-Factory does with ``do_predict: true`` + ``predict_with_generate: true`` (``train/sft/workflow.py``
and ``trainer.py``), step by step:

- the prediction set (``eval_dataset``, or the ``val_size`` split of ``dataset``) is encoded by the
  unsupervised processor (``kit.data.unsupervised``);
- batches of ``per_device_eval_batch_size`` in dataset order, padded on the left with the pad token;
- ``model.generate`` with its generation defaults (it samples unless ``do_sample: false``), its eos ids
  being the tokenizer's eos and every extra special token (the template's stop words among them);
- the new tokens decoded with special tokens skipped ("predict"), the reference likewise ("label"), the
  prompt with them kept ("prompt"): ``generated_predictions.jsonl``, one JSON object per line in that
  key order;
- BLEU-4 / ROUGE (``kit.evaluate.metric``) with the runtime figures, prefixed ``predict_``, sorted and
  indented as transformers' ``save_metrics`` writes them: ``predict_results.json`` (and merged into
  ``all_results.json``).

``kit predict`` (``kit.evaluate.cli``) runs the same with a trained adapter and no training, through
transformers or vLLM (LLaMA-Factory's ``scripts/vllm_infer.py`` + ``eval_bleu_rouge.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kit.config import Config
from kit.data.unsupervised import PromptExample, build_unsupervised, load_prediction_set
from kit.errors import KitError
from kit.evaluate import metric
from kit.i18n import _

logger = logging.getLogger("kit.evaluate")

PREDICTIONS_FILE = "generated_predictions.jsonl"
RESULTS_FILE = "predict_results.json"
ALL_RESULTS_FILE = "all_results.json"
OUTPUT_FILES = (PREDICTIONS_FILE, RESULTS_FILE, ALL_RESULTS_FILE)


class PredictError(KitError):
    """A person's mistake in asking for predictions (no prediction set, a folder that is not the kit's)."""


@dataclass
class PredictionSet:
    rows: list[PromptExample]
    dropped: list[str] = field(default_factory=list)  # "dataset[index]: why"

    @property
    def cut(self) -> list[str]:
        return [f"{r.dataset}[{r.index}]" for r in self.rows if r.cut]


@dataclass
class PredictReport:
    """What a prediction run did: the records written, the scores, where the files are."""

    records: list[dict[str, str]]
    results: dict[str, float]
    files: list[Path]
    cut: list[str]
    dropped: list[str]
    new_tokens: int
    generate_seconds: float
    backend: str
    compared: tuple[int, int] | None = None  # (examples whose predict differs, examples compared) with compare_with

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.generate_seconds if self.generate_seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [_("scored {count} example(s): bleu-4 {bleu:.4f}, rouge-1 {r1:.4f}, rouge-2 {r2:.4f}, rouge-l {rl:.4f}").format(
            count=len(self.records), bleu=self.results.get("predict_bleu-4", 0.0), r1=self.results.get("predict_rouge-1", 0.0),
            r2=self.results.get("predict_rouge-2", 0.0), rl=self.results.get("predict_rouge-l", 0.0))]
        if self.cut:
            shown = ", ".join(self.cut[:10]) + (" ..." if len(self.cut) > 10 else "")
            lines.append(_("{count} example(s) cut by cutoff_len (prompt or reference shortened): {examples}").format(
                count=len(self.cut), examples=shown))
        else:
            lines.append(_("no example was cut by cutoff_len"))
        if self.dropped:
            lines.append(_("{count} example(s) left out: {examples}").format(
                count=len(self.dropped), examples="; ".join(self.dropped[:3]) + (" ..." if len(self.dropped) > 3 else "")))
        lines.append(_("{backend}: {tokens} new tokens in {seconds:.1f} s ({rate:.1f} tokens/s)").format(
            backend=self.backend, tokens=self.new_tokens, seconds=self.generate_seconds, rate=self.tokens_per_second))
        if self.compared is not None:
            differ, n = self.compared
            lines.append(_("{differ} of {count} prediction(s) differ from the compared file").format(differ=differ, count=n)
                         if differ else _("all {count} prediction(s) equal the compared file").format(count=n))
        lines.append(_("files: {files}").format(files=", ".join(str(p) for p in self.files)))
        return "\n".join(lines)


# ---------------------------------------------------------------- the prediction set

def prediction_set(cfg: Config, tokenizer: Any, template: Any, whole_dataset: bool = False) -> PredictionSet:
    """The examples LLaMA-Factory predicts on: eval_dataset, else the val_size split of dataset (same seed);
    with ``whole_dataset`` (kit predict, as scripts/vllm_infer.py --dataset), all of dataset when there is no split."""
    d = cfg.data
    fills = {k: v for k, v in (("name", d.identity_name), ("author", d.identity_author)) if v is not None}
    if cfg.eval_dataset_names:
        examples, _report = load_prediction_set(cfg.eval_dataset_names, d.dataset_dir, cfg.config_dir, d.max_samples, fills)
    elif d.val_size > 1e-6 and cfg.dataset_names:
        from kit.data.sft import split_indices

        examples, _report = load_prediction_set(cfg.dataset_names, d.dataset_dir, cfg.config_dir, d.max_samples, fills)
        # The kit splits the well-formed examples (as training does) with LLaMA-Factory's split and seed.
        usable = [ex for ex in examples if ex.problem is None]
        _train_idx, eval_idx = split_indices(len(usable), d.val_size, cfg.train.seed)
        examples = [usable[i] for i in eval_idx]
    elif whole_dataset and cfg.dataset_names:
        examples, _report = load_prediction_set(cfg.dataset_names, d.dataset_dir, cfg.config_dir, d.max_samples, fills)
    else:
        raise PredictError(_("no prediction set: set eval_dataset (e.g. identity), or dataset (with val_size in kit train)"))
    rows, dropped = build_unsupervised(examples, tokenizer, template, d.cutoff_len, d.enable_thinking)
    if not rows:
        raise PredictError(_("no example to predict on in {datasets}: {why}; check the files dataset_info.json names for "
                             "them, or predict on other datasets (eval_dataset)").format(
            datasets=", ".join(cfg.eval_dataset_names or cfg.dataset_names), why="; ".join(dropped[:3]) or _("the datasets are empty")))
    return PredictionSet(rows, dropped)


def eos_token_ids(tokenizer: Any, template: Any = None) -> list[int]:
    """LLaMA-Factory's eos ids for prediction: the eos token and every extra special token, then the template's stop words."""
    extra = getattr(tokenizer, "additional_special_tokens_ids", None)
    if not isinstance(extra, list):
        names = [str(t) for t in getattr(tokenizer, "_extra_special_tokens", []) or []]
        extra = tokenizer.convert_tokens_to_ids(names) if names else []
    ids = [tokenizer.eos_token_id] + [i for i in extra if i is not None and i != -1]
    if template is not None:
        ids += template.stop_token_ids(tokenizer)
    return list(dict.fromkeys(i for i in ids if i is not None))


# ---------------------------------------------------------------- generation

def _batches(rows: Sequence[PromptExample], size: int) -> list[list[PromptExample]]:
    return [list(rows[i:i + size]) for i in range(0, len(rows), size)]


def _progress(total: int, what: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit=_("example"), leave=False, dynamic_ncols=True)


def generate_huggingface(model: Any, tokenizer: Any, rows: Sequence[PromptExample], settings: Any, eos_ids: list[int],
                         batch_size: int, device: Any = None, progress: bool = True) -> tuple[list[list[int]], int]:
    """New token ids per example (up to the first eos, eos excluded), batched and left-padded as LLaMA-Factory does;
    and how many generate calls ran (the "steps")."""
    import torch
    from transformers import GenerationConfig

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    sampling = ({} if settings.greedy else
                {"temperature": settings.sampling_temperature, "top_p": settings.top_p, "top_k": settings.top_k})
    # A fresh GenerationConfig: LLaMA-Factory's settings decide, not the model's generation_config.json.
    gen_config = GenerationConfig(do_sample=not settings.greedy, num_beams=1, max_new_tokens=settings.max_new_tokens,
                                  repetition_penalty=settings.repetition_penalty, length_penalty=1.0,
                                  eos_token_id=eos_ids, pad_token_id=pad_id, **sampling)
    device = device if device is not None else next(model.parameters()).device
    was_training, use_cache = model.training, getattr(model.config, "use_cache", True)
    model.eval()
    model.config.use_cache = True  # training turns the KV cache off; generation wants it
    outputs: list[list[int]] = []
    batches = _batches(rows, batch_size)
    bar = _progress(len(rows), _("predict")) if progress else None
    started, new_tokens = time.perf_counter(), 0
    try:
        for batch in batches:
            width = max(len(r.input_ids) for r in batch)
            ids = torch.tensor([[pad_id] * (width - len(r.input_ids)) + r.input_ids for r in batch], device=device)
            mask = torch.tensor([[0] * (width - len(r.input_ids)) + [1] * len(r.input_ids) for r in batch], device=device)
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen_config)
            for seq in out[:, width:].tolist():
                kept: list[int] = []
                for tok in seq:
                    if tok in eos_ids:
                        break
                    kept.append(tok)
                outputs.append(kept)
                new_tokens += len(kept)
            if bar is not None:
                bar.update(len(batch))
                elapsed = time.perf_counter() - started
                bar.set_postfix_str(_("{rate:.1f} tokens/s").format(rate=new_tokens / elapsed if elapsed else 0.0))
    finally:
        if bar is not None:
            bar.close()
        model.config.use_cache = use_cache
        if was_training:
            model.train()
    return outputs, len(batches)


def generate_vllm(backend: Any, rows: Sequence[PromptExample], settings: Any, eos_ids: list[int]) -> list[list[int]]:
    """New token ids per example from the kit's vLLM backend, all prompts in one ``LLM.generate`` call
    (as LLaMA-Factory's scripts/vllm_infer.py does), with the adapter as a LoRA request."""
    from vllm import SamplingParams

    params = SamplingParams(
        temperature=0.0 if settings.greedy else settings.sampling_temperature,
        top_p=1.0 if settings.greedy else settings.top_p, top_k=0 if settings.greedy else settings.top_k,
        repetition_penalty=settings.repetition_penalty, max_tokens=settings.max_new_tokens,
        stop_token_ids=list(eos_ids), skip_special_tokens=True)
    results = backend.llm.generate([{"prompt_token_ids": list(r.input_ids)} for r in rows], params,
                                   lora_request=backend.lora_request, use_tqdm=True)
    outputs = []
    for result in results:
        ids = list(result.outputs[0].token_ids) if result.outputs else []
        outputs.append([t for t in ids if t not in eos_ids])
    return outputs


# ---------------------------------------------------------------- records, scores, files

def records(tokenizer: Any, rows: Sequence[PromptExample], outputs: Sequence[list[int]]) -> list[dict[str, str]]:
    """generated_predictions.jsonl's lines: prompt (special tokens kept), predict and label (skipped), in that order."""
    return [{"prompt": tokenizer.decode(r.input_ids, skip_special_tokens=False),
             "predict": tokenizer.decode(list(out), skip_special_tokens=True),
             "label": tokenizer.decode(r.labels, skip_special_tokens=True)} for r, out in zip(rows, outputs)]


def results(recs: Sequence[dict[str, str]], runtime: float, steps: int, preparation: float | None = None) -> dict[str, float]:
    """predict_results.json: the scores and transformers' runtime figures, named as LLaMA-Factory's file names them."""
    scores = metric.score([r["predict"] for r in recs], [r["label"] for r in recs])
    out = {f"predict_{k}": v for k, v in scores.items()}
    out["predict_runtime"] = round(runtime, 4)
    out["predict_samples_per_second"] = round(len(recs) / runtime, 3) if runtime > 0 else 0.0
    out["predict_steps_per_second"] = round(steps / runtime, 3) if runtime > 0 else 0.0
    if preparation is not None:
        out["predict_model_preparation_time"] = round(preparation, 4)
    return out


def _json_dump(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=4, sort_keys=True), encoding="utf-8")  # as transformers' save_metrics
    os.replace(tmp, path)


def _read_manifest(out: Path) -> Any:
    """The folder's run manifest, or None; one the kit cannot read is refused, never written over (as kit train does)."""
    from kit.run.output import MANIFEST, Manifest

    try:
        return Manifest.read(out)
    except (OSError, ValueError) as exc:
        raise PredictError(_("output_dir: {path} has a {manifest} the kit cannot read ({error}), so it cannot tell its files "
                             "from yours; clear the folder yourself, or choose another output_dir").format(
            path=repr(str(out)), manifest=MANIFEST, error=exc)) from None


def check_output_dir(out: Path) -> None:
    """Refuse a folder whose prediction files are a person's own (not listed in the kit's run manifest)."""
    from kit.run.output import MANIFEST

    if out.exists() and not out.is_dir():
        raise PredictError(_("output_dir: {path} is a file; give a folder for the predictions").format(path=str(out)))
    manifest = _read_manifest(out) if out.is_dir() else None
    ours = manifest.entries if manifest is not None else set()
    clashes = [n for n in (PREDICTIONS_FILE, RESULTS_FILE) if (out / n).exists() and n not in ours]
    if clashes:
        raise PredictError(_("output_dir: {path} already holds {names}, not written by the kit (its {manifest} does not "
                             "list them); move them away or choose another output_dir").format(
            path=str(out), names=", ".join(clashes), manifest=MANIFEST))


def write_outputs(out: Path, recs: Sequence[dict[str, str]], result: dict[str, float], manifest: Any = None) -> list[Path]:
    """Write the two files (and merge the scores into all_results.json), recording them in the run manifest first."""
    from kit.run.output import Manifest

    out.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest = _read_manifest(out) or Manifest(out)
    all_results = out / ALL_RESULTS_FILE
    names = [PREDICTIONS_FILE, RESULTS_FILE] + ([ALL_RESULTS_FILE] if not all_results.exists() or ALL_RESULTS_FILE in manifest.entries else [])
    manifest.add(*names)  # listed before they are written: a run killed while writing still owns them
    path = out / PREDICTIONS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    _json_dump(out / RESULTS_FILE, result)
    if ALL_RESULTS_FILE in names:
        combined: dict[str, Any] = {}
        if all_results.exists():
            try:
                combined = json.loads(all_results.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                combined = {}
        combined.update(result)
        _json_dump(all_results, combined)
    return [out / PREDICTIONS_FILE, out / RESULTS_FILE]


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """A generated_predictions.jsonl's lines (for compare_with), or a PredictError saying why it cannot be read."""
    try:
        return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise PredictError(_("compare_with: cannot read {path}: {error}").format(path=path, error=exc)) from None


def compare(recs: Sequence[dict[str, str]], other: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(examples whose predict differs, examples compared) against another run's predictions."""
    n = min(len(recs), len(other))
    return sum(1 for a, b in zip(recs, other) if a.get("predict") != b.get("predict")), n


# ---------------------------------------------------------------- the two front doors

def after_training(cfg: Config, model: Any, tokenizer: Any, template: Any, manifest: Any = None,
                   is_main: bool = True) -> dict[str, float]:
    """``kit train`` with do_predict: predict with the model just trained; only the main process writes.

    Returns the ``predict_*`` figures (empty on the other processes, which generate nothing).
    """
    if not is_main:
        return {}
    metric.require_metrics()
    data = prediction_set(cfg, tokenizer, template)
    from kit.chat.generation import GenerationSettings

    settings = GenerationSettings.from_config(cfg)
    started = time.perf_counter()
    outputs, steps = generate_huggingface(model, tokenizer, data.rows, settings, eos_token_ids(tokenizer, template),
                                          cfg.train.per_device_eval_batch_size)
    runtime = time.perf_counter() - started
    recs = records(tokenizer, data.rows, outputs)
    result = results(recs, runtime, steps, preparation=0.0)
    files = write_outputs(Path(cfg.train.output_dir), recs, result, manifest)
    report = PredictReport(recs, result, files, data.cut, data.dropped, sum(map(len, outputs)), runtime, "huggingface")
    logger.info("%s", report.summary())
    return result


def predict(cfg: Config, compare_with: Path | None = None, progress: bool = True) -> PredictReport:
    """``kit predict`` (and ``kit train`` with do_train: false): load the model and adapter, predict, score, write."""
    from kit.chat import Engine
    from kit.chat.generation import GenerationSettings

    if not cfg.train.output_dir:
        raise PredictError(_("output_dir: missing; say where generated_predictions.jsonl and predict_results.json go"))
    if not cfg.data.template:
        raise PredictError(_("template: missing; use the template the adapter was trained with, e.g. qwen"))
    out = Path(cfg.train.output_dir)
    check_output_dir(out)
    metric.require_metrics()  # before minutes of generation, not after
    other = read_predictions(compare_with) if compare_with is not None else None
    settings = GenerationSettings.from_config(cfg)
    names = cfg.eval_dataset_names or cfg.dataset_names
    if names:  # a misspelt dataset or a missing dataset_info.json in seconds, not after the model's minutes of loading
        from kit.data.loader import resolve_dataset_dir
        from kit.data.registry import dataset_attr, read_registry

        dataset_dir = resolve_dataset_dir(cfg.data.dataset_dir, cfg.config_dir)
        registry = read_registry(dataset_dir)
        for name in names:
            dataset_attr(name, registry, dataset_dir)
    started = time.perf_counter()
    engine = Engine(config=cfg)
    try:
        preparation = time.perf_counter() - started
        data = prediction_set(cfg, engine.tokenizer, engine.template, whole_dataset=not cfg.train.do_predict)
        eos_ids = eos_token_ids(engine.tokenizer, engine.template)
        batch_size = cfg.train.per_device_eval_batch_size
        logger.info("%s", _("predicting {count} example(s) with {backend}, {mode}, batch {batch}, at most {tokens} new tokens each").format(
            count=len(data.rows), backend=engine.backend_name, mode=_("greedy") if settings.greedy else _("sampling"),
            batch=batch_size, tokens=settings.max_new_tokens))
        started = time.perf_counter()
        if engine.backend_name == "vllm":
            outputs = generate_vllm(engine.backend, data.rows, settings, eos_ids)
            steps = math.ceil(len(data.rows) / batch_size)
        else:
            outputs, steps = generate_huggingface(engine.backend.model, engine.tokenizer, data.rows, settings, eos_ids,
                                                  batch_size, engine.backend.device, progress)
        runtime = time.perf_counter() - started
        recs = records(engine.tokenizer, data.rows, outputs)
    finally:
        engine.close()
    result = results(recs, runtime, steps, preparation)
    files = write_outputs(out, recs, result)
    report = PredictReport(recs, result, files, data.cut, data.dropped, sum(map(len, outputs)), runtime, engine.backend_name)
    if other is not None:
        differ, n = compare(recs, other)
        report.compared = (differ, n)
    return report
