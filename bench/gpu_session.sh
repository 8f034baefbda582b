#!/usr/bin/env bash
# There, on a lent GPU machine, from the repository root, as one prepared command (issue "Performance,
# second round"): LoRA SFT through the kit's own launcher on the Qwen2-0.5B and Qwen1.5-7B shapes with random
# weights, ZeRO-0, lora_target q_proj,v_proj (the quick start's), gradient checkpointing on and off; tokens/s,
# MFU and peak memory as JSON under $OUT. Each size has its own time limit, so a hang in one still leaves the
# other's figures. Prepare the wheels here first (bench/gpu_wheels.sh), then with the device tool:
#
#   carry [".whl"], timeout_s 590, command: bash bench/gpu_session.sh
#
# STEPS_SMALL / STEPS_7B (default 60 / 30; logged every 10 steps, the steady rate needs 20 or more) and
# LIMIT_SMALL / LIMIT_7B (seconds, default 200 / 360) can be overridden. SIZES (default "0.5b 7b"; "tiny"
# runs the same on a CPU in a minute, how this script was tested) picks the shapes.
set -uo pipefail
OUT=${OUT:-/tmp/kit-gpu-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/kit-site .whl/*.whl \
    || { echo "gpu_session: the carried wheels did not install" >&2; exit 1; }
  export PYTHONPATH=/tmp/kit-site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
PYBIN=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  "$PYBIN" -c "import sys, torch, transformers, peft, accelerate; print(sys.version.split()[0], 'torch', torch.__version__,
'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
  "$PYBIN" -c "import deepspeed; print('deepspeed', deepspeed.__version__)" 2>&1 | tail -1; } | tee "$OUT/versions.txt"
status=0
for size in ${SIZES:-0.5b 7b}; do
  case $size in
    7b) steps=${STEPS_7B:-30}; limit=${LIMIT_7B:-360} ;;
    *) steps=${STEPS_SMALL:-60}; limit=${LIMIT_SMALL:-200} ;;
  esac
  echo "gpu_session: $size, $steps steps, at most $limit s" >&2
  timeout -k 10 "$limit" "$PYBIN" bench/gpu_train.py --size "$size" --steps "$steps" --deepspeed ds_z0_config.json \
    --targets q_proj,v_proj --gradient_checkpointing on off > "$OUT/gpu_$size.json" 2> "$OUT/gpu_$size.log"
  code=$?
  echo "gpu_session: $size exit $code" >&2
  [ "$code" = 0 ] || { status=$code; tail -20 "$OUT/gpu_$size.log" >&2; }
  cat "$OUT/gpu_$size.json"
done
exit $status
