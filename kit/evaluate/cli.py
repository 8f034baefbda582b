"""``kit predict``: a trained adapter and a dataset, predicted and scored without training.

LLaMA-Factory's ``scripts/vllm_infer.py`` + ``scripts/eval_bleu_rouge.py`` in one command, with its keys
(``--model_name_or_path``, ``--adapter_name_or_path``, ``--template``, ``--eval_dataset`` or ``--dataset``,
``--dataset_dir``, ``--cutoff_len``, ``--max_samples``, ``--per_device_eval_batch_size``, ``--max_new_tokens``,
``--do_sample`` / ``--temperature`` / ``--top_p``, ``--output_dir``, ``--infer_backend huggingface|vllm``),
a YAML file or both; it writes the same two files as ``do_predict`` does in training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kit.i18n import N_, _

if TYPE_CHECKING:
    from kit.config import Config

DESCRIPTION = N_("""Predict on a dataset with a trained adapter and score the predictions (BLEU-4, ROUGE-1/2/L) as
LLaMA-Factory does, without training. Takes LLaMA-Factory's keys, from a YAML file or as --key value:
model_name_or_path, adapter_name_or_path, template, eval_dataset (or dataset: all of it), dataset_dir,
cutoff_len, max_samples, per_device_eval_batch_size, max_new_tokens, do_sample, temperature, top_p,
output_dir, infer_backend (huggingface or vllm). Writes generated_predictions.jsonl and predict_results.json
into output_dir. LLaMA-Factory samples unless do_sample is false; give --do_sample false for repeatable scores.

  kit predict --model_name_or_path kit/tiny-qwen --adapter_name_or_path saves/tiny/lora/sft \\
      --template qwen --eval_dataset identity --do_sample false --output_dir saves/tiny/predict""")


def predict_main(argv: Sequence[str]) -> int:
    """Entry point of ``kit predict`` (kit.cli routes here)."""
    from kit import config as config_mod
    from kit.config.command_line import ConfigCommandParser

    parser = ConfigCommandParser("kit predict", _(DESCRIPTION), config_required=False, overrides_metavar="--key value")
    parser.add_argument("--compare_with", metavar="FILE.jsonl",
                        help=_("another run's generated_predictions.jsonl (e.g. the other backend's): say how many predictions differ"))
    ns = parser.parse_args(list(argv))
    cfg = config_mod.load(ns.config, ns.overrides)
    config_mod.require(cfg, "chat")
    return run(cfg, Path(ns.compare_with) if ns.compare_with else None)


def run(cfg: "Config", compare_with: Path | None = None) -> int:
    """Predict as the config says and print what was done (also ``kit train`` with do_train: false)."""
    from kit.evaluate import predict

    report = predict.predict(cfg, compare_with)
    print(report.summary())
    print(json.dumps({k: v for k, v in sorted(report.results.items())}))
    return 0
