#!/usr/bin/env bash
# Regenerate tests/fixtures/llamafactory_predict/ with LLaMA-Factory 0.9.5 itself (CPU, offline):
#   1. LoRA SFT of kit/tiny_qwen (q_proj,v_proj) with `llamafactory-cli train` on LLaMA-Factory's own
#      identity / alpaca_en_demo / alpaca_zh_demo files (20 samples each, seed 42);
#   2. `llamafactory-cli train` with do_predict + predict_with_generate (greedy, 32 new tokens) on a
#      predict set built from the kit's own demo files (kit/data/demo, 6 samples of each), twice, to
#      check that the greedy predictions are deterministic;
#   3. copy the small outputs (adapter, the two YAMLs with placeholders, jsonl, results) into the folder.
#
#   bash scripts/llamafactory_predict_reference.sh [LF_DIR] [LF_DATA_DIR]
#     LF_DIR       where the LLaMA-Factory venv is (built by ../shared/tools/llamafactory_venv.sh if
#                  missing; default ~/.cache/kit-reference/llamafactory)
#     LF_DATA_DIR  LLaMA-Factory's data/ folder (dataset_info.json, identity.json, alpaca_*_demo.json);
#                  default /work/shared/reference/llamafactory/data
# The training data is a reference input and is not copied into the repo.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LF_DIR=${1:-$HOME/.cache/kit-reference/llamafactory}
LF_DATA=$(cd "${2:-/work/shared/reference/llamafactory/data}" && pwd)
VENV_SCRIPT=${LF_VENV_SCRIPT:-$REPO/../shared/tools/llamafactory_venv.sh}
[ -x "$LF_DIR/venv/bin/llamafactory-cli" ] || bash "$VENV_SCRIPT" "$LF_DIR"
export PATH="$LF_DIR/venv/bin:$PATH"
# LF's predict metrics (train/sft/metric.py) need jieba, nltk and rouge_chinese
python -c "import jieba, nltk, rouge_chinese" 2>/dev/null || pip install -q jieba nltk rouge_chinese
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DISABLE_VERSION_CHECK=1
export CUDA_VISIBLE_DEVICES="" WANDB_DISABLED=true TOKENIZERS_PARALLELISM=false
OUT=$REPO/tests/fixtures/llamafactory_predict
WORK=$(mktemp -d /tmp/lf_predict_ref.XXXXXX)
mkdir -p "$OUT"

# --- the two configs, committed with placeholders; the run substitutes real paths ---
cat > "$OUT/train_lora.yaml" <<'YAML'
# LoRA SFT run that produced adapter/ (LLaMA-Factory 0.9.5, CPU, fp32).
# Placeholders, substituted by scripts/llamafactory_predict_reference.sh:
#   @MODEL@    = kit/tiny_qwen   @LF_DATA@ = LLaMA-Factory's data/ folder (not in the repo)
#   @OUT@      = a scratch output folder
### model
model_name_or_path: @MODEL@
trust_remote_code: true
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_alpha: 16
lora_dropout: 0.0
lora_target: q_proj,v_proj
### dataset
dataset: identity,alpaca_en_demo,alpaca_zh_demo
dataset_dir: @LF_DATA@
template: qwen
cutoff_len: 256
max_samples: 20
overwrite_cache: true
preprocessing_num_workers: 1
dataloader_num_workers: 0
### output
output_dir: @OUT@
logging_steps: 5
save_strategy: "no"
plot_loss: false
overwrite_output_dir: true
report_to: none
### train
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
learning_rate: 5.0e-4
num_train_epochs: 2.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: false
fp16: false
seed: 42
YAML

cat > "$OUT/predict.yaml" <<'YAML'
# Predict run that produced generated_predictions.jsonl and predict_results.json (LLaMA-Factory 0.9.5, CPU).
# Placeholders, substituted by scripts/llamafactory_predict_reference.sh:
#   @MODEL@   = kit/tiny_qwen   @ADAPTER@ = the output_dir of train_lora.yaml (its two files are in adapter/)
#   @KIT_DATA@ = kit/data/demo (the kit's own demo files, in the repo)   @OUT@ = a scratch output folder
# The predict set = the first 6 examples of each of the kit's identity, alpaca_en_demo, alpaca_zh_demo
# (max_samples caps each dataset, before they are concatenated in that order): 18 examples.
# cutoff_len 64 cuts the multi-turn identity examples; batch 4 exercises left padding.
### model
model_name_or_path: @MODEL@
adapter_name_or_path: @ADAPTER@
trust_remote_code: true
### method
stage: sft
do_train: false
do_predict: true
predict_with_generate: true
finetuning_type: lora
### dataset
eval_dataset: identity,alpaca_en_demo,alpaca_zh_demo
dataset_dir: @KIT_DATA@
template: qwen
cutoff_len: 64
max_samples: 6
overwrite_cache: true
preprocessing_num_workers: 1
dataloader_num_workers: 0
### output
output_dir: @OUT@
overwrite_output_dir: true
report_to: none
### eval / generation
per_device_eval_batch_size: 4
do_sample: false
max_new_tokens: 32
bf16: false
fp16: false
seed: 42
YAML

subst() { sed -e "s#@MODEL@#$REPO/kit/tiny_qwen#" -e "s#@LF_DATA@#$LF_DATA#" -e "s#@KIT_DATA@#$REPO/kit/data/demo#" \
              -e "s#@ADAPTER@#$WORK/train#" -e "s#@OUT@#$2#" "$1"; }

echo "== train ($WORK/train)"
subst "$OUT/train_lora.yaml" "$WORK/train" > "$WORK/train.yaml"
llamafactory-cli train "$WORK/train.yaml" > "$WORK/train.log" 2>&1 || { tail -40 "$WORK/train.log"; exit 1; }
for run in 1 2; do
  echo "== predict run $run ($WORK/predict$run)"
  subst "$OUT/predict.yaml" "$WORK/predict$run" > "$WORK/predict$run.yaml"
  llamafactory-cli train "$WORK/predict$run.yaml" > "$WORK/predict$run.log" 2>&1 || { tail -40 "$WORK/predict$run.log"; exit 1; }
done
if cmp -s "$WORK/predict1/generated_predictions.jsonl" "$WORK/predict2/generated_predictions.jsonl"; then
  echo "greedy predictions identical across the two runs"
else
  echo "WARNING: greedy predictions differ between the two runs:"; diff "$WORK/predict1/generated_predictions.jsonl" "$WORK/predict2/generated_predictions.jsonl" || true
fi

mkdir -p "$OUT/adapter"
cp "$WORK/train/adapter_config.json" "$WORK/train/adapter_model.safetensors" "$OUT/adapter/"
# adapter_config.json records the absolute model path of this machine; make it the repo-relative one
python - "$OUT/adapter/adapter_config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["base_model_name_or_path"] = "kit/tiny_qwen"
open(p, "w").write(json.dumps(c, indent=2, sort_keys=True) + "\n")
PY
cp "$WORK/predict1/generated_predictions.jsonl" "$WORK/predict1/predict_results.json" "$OUT/"
grep -E "train_loss|'loss'|\"loss\"" "$WORK/train.log" | tail -3 || true
cat "$OUT/predict_results.json"
du -sh "$OUT"
echo "work folder: $WORK"
