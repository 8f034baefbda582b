"""What notebooks 20 and 30 teach, as numbers and pictures computed for the chosen model and data.

    lora_lesson(cfg)                  W + BA for the adapted layers, the trainable count (peft's, exact)
    data_lesson(cfg)                  raw rows, counts, token lengths against cutoff_len, truncation
    schedule_lesson(cfg, examples)    effective batch, optimizer steps, the learning rate of every step
    zero_lesson(cfg, card)            the memory estimate for ZeRO-0/2/3, on one card and on eight
    run_cost(...)                     after training: time, peak memory, tokens/s next to the estimate
    time_on_card(...)                 realistic compute time on a card from FLOPs, with every assumption stated
    own_dataset(folder)               a small alpaca and sharegpt dataset and their dataset_info.json
    identity_check(engine, name)      the share of held-out identity questions answered with the new name
    sampling_lesson / wrong_template  greedy vs sampling; a reply with the wrong template, and the warning
    heldout_scores(engine, name, author)  base vs adapter on held-out questions: the name as a whole word, BLEU/ROUGE
    under_the_hood(cfg)               what notebook 20's peft/transformers cells need: the tiny model, encoded rows, a folder
    serve(model, adapter)             kit api in the background on a free port, stopped on exit (a context manager)
    sweep_plots(rows, sweep)          notebook 40: every run's loss curve on one figure, the final eval loss per setting

Each returns an object that renders as HTML (a table, a picture) in JupyterLab and in the docs, as text
elsewhere, and carries the numbers a notebook publishes and its tests read. The numbers come from the
code paths training itself uses (peft attached to the model built on the meta device, the SFT encoder,
transformers' scheduler functions, kit.estimate); where a table adds rows by a rule (LoRA's r x (d_in +
d_out) for other ranks), tests/test_tutorial.py checks the rule against peft.
"""

from __future__ import annotations

from kit.tutorial.display import CJK_FONTS, Picture, plot_label
from kit.tutorial.lessons.common import linear_shapes, matmul_parameters
from kit.tutorial.lessons.lora_data import LORA_RANKS, LoraLesson, lora_lesson, DataLesson, data_lesson
from kit.tutorial.lessons.cost import ScheduleLesson, LrCheck, processes, schedule_lesson, ZeroTable, ZeroLesson, zero_lesson, flops_per_token, RunCost, run_cost, QUICKSTART_MODEL, QUICKSTART_DATA, CHARS_PER_TOKEN, TEMPLATE_TOKENS, PEAK_TFLOPS, UTILISATION, CardTime, quickstart_tokens, time_on_card, OWN_ALPACA, OWN_SHAREGPT, OWN_REGISTRY, OwnDataset, own_dataset
from kit.tutorial.lessons.chat import HELD_OUT_IDENTITY, held_out_questions, IdentityCheck, identity_check, SamplingLesson, sampling_lesson, WrongTemplate, wrong_template
from kit.tutorial.lessons.evaluate import HELDOUT_FILE, heldout_items, names, HeldoutScores, heldout_scores
from kit.tutorial.lessons.hood import HOOD_FOLDER, Hood, quiet_peft_notice, same_answer, under_the_hood
from kit.tutorial.lessons.serve import ApiServer, openai_missing, serve
from kit.tutorial.lessons.sweep import SweepPlots, setting, sweep_plots

__all__ = ["CJK_FONTS", "Picture", "plot_label", "linear_shapes", "matmul_parameters", "LORA_RANKS", "LoraLesson", "lora_lesson", "DataLesson", "data_lesson", "ScheduleLesson", "LrCheck", "processes", "schedule_lesson", "ZeroTable", "ZeroLesson", "zero_lesson", "flops_per_token", "RunCost", "run_cost", "QUICKSTART_MODEL", "QUICKSTART_DATA", "CHARS_PER_TOKEN", "TEMPLATE_TOKENS", "PEAK_TFLOPS", "UTILISATION", "CardTime", "quickstart_tokens", "time_on_card", "OWN_ALPACA", "OWN_SHAREGPT", "OWN_REGISTRY", "OwnDataset", "own_dataset", "HELD_OUT_IDENTITY", "held_out_questions", "IdentityCheck", "identity_check", "SamplingLesson", "sampling_lesson", "WrongTemplate", "wrong_template", "SweepPlots", "setting", "sweep_plots", "HELDOUT_FILE", "heldout_items", "names", "HeldoutScores", "heldout_scores", "ApiServer", "openai_missing", "serve", "HOOD_FOLDER", "Hood", "quiet_peft_notice", "same_answer", "under_the_hood"]
