#!/usr/bin/env bash
# Here, where PyPI is reachable: the wheels bench/gpu_session.sh installs on a GPU machine that has Python
# 3.12 with CUDA torch, transformers, peft and accelerate but neither DeepSpeed nor a network. Writes .whl/
# (ignored by git) for the device call to carry:
#
#   bash bench/gpu_wheels.sh            # about a minute; then carry .whl and run bench/gpu_session.sh there
#
# DeepSpeed is built here as a pure-Python wheel with no ops compiled (DS_BUILD_OPS=0): ZeRO-0 and ZeRO-2
# with the Trainer's AdamW need none, and one compiled against this machine's CPU torch would not load
# against the CUDA torch there. Its dependencies the GPU image lacks (hjson, pydantic and pydantic's own)
# are fetched as binary wheels for that Python. KIT_GPU_PYTHON (default 3.12) names it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PYV=${KIT_GPU_PYTHON:-3.12}
DS=$("$PY" -c "from importlib.metadata import version; print(version('deepspeed'))")
rm -rf .whl && mkdir .whl
DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation "deepspeed==$DS" -w .whl
platforms=()
for n in 2_28 2_27 2_17; do platforms+=(--platform "manylinux_${n}_x86_64"); done
"$PY" -m pip download -q --only-binary=:all: --python-version "$PYV" --implementation cp "${platforms[@]}" \
  --platform manylinux2014_x86_64 -d .whl hjson pydantic
ls -1 .whl
