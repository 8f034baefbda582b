#!/usr/bin/env bash
# Set up everything on a fresh machine (only Python needed) and run the main job or the tests.
#
#   bash dev.sh demo [key=value ...]   the whole quick start on the embedded tiny model (CPU, minutes)
#   bash dev.sh test [pytest args]     the test suite
#   bash dev.sh setup                  only create .venv and install the kit (what the tests need)
#
# KIT_VENV (default .venv), KIT_TORCH (default torch==2.13.0) and KIT_TORCH_INDEX (default PyTorch's CPU
# index; empty: only the index pip is configured with) can be overridden.
#
# What torch this installs: the CPU build from PyTorch's CPU index (about 200 MB). Only when that index cannot
# be reached (a machine that sees nothing but a mirror or a wheel folder) does it fall back to `pip install
# torch==2.13.0` from the configured index: there, whatever that index holds (on plain PyPI for x86_64 Linux,
# the CUDA build of several GB).
set -euo pipefail
cd "$(dirname "$0")"

VENV=${KIT_VENV:-.venv}
TORCH=${KIT_TORCH:-torch==2.13.0}
TORCH_INDEX=${KIT_TORCH_INDEX-https://download.pytorch.org/whl/cpu}
PY=${PYTHON:-python3}

install_torch() {
  # Pinned and first, so the kit's "torch>=2.1" is already met and pip fetches no other torch.
  if [ -n "$TORCH_INDEX" ] \
     && "$VENV/bin/python" -m pip install -q --no-compile --timeout 10 --retries 0 "$TORCH" --index-url "$TORCH_INDEX"; then
    return
  fi
  [ -n "$TORCH_INDEX" ] && echo "dev.sh: no $TORCH from $TORCH_INDEX (unreachable, or no wheel there); installing it from pip's configured index" \
    "(on PyPI for x86_64 Linux that is the CUDA build)" >&2
  "$VENV/bin/python" -m pip install -q --no-compile "$TORCH"
}

# pip byte-compiles every module it installs in one process, one file after another; the installs here skip that
# (--no-compile) and this compiles the same files, and the kit's own (installed editable), on every core at
# once. Not skipped altogether: where PYTHONDONTWRITEBYTECODE=1 is set (many container images) no .pyc would
# ever be written, and every import would compile from source again. Files that do not compile are passed
# over, as pip passes over them with a warning.
compile_all() {
  local site
  site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  # A library's warnings at compile time (modelscope has SyntaxWarnings) ask nothing of the person; pip hides them too
  PYTHONWARNINGS=ignore::SyntaxWarning,ignore::DeprecationWarning "$VENV/bin/python" -m compileall -qq -j 0 "$site" kit || true
}

# What each command installs: the demo, the kit with the notebooks, DeepSpeed and ModelScope; the tests (and
# setup), the dev extra on top (pytest, the docs' Sphinx, the API clients) and DeepSpeed's CPU op compiled.
install() {
  local level=$1  # demo or dev
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.kit-installed"
  # Reinstall only when the dependencies changed or a command needs more than was installed.
  local want have=""
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -c1-16)
  [ -f "$stamp" ] && have=$(cat "$stamp")
  if [ "$have" = "$want dev" ] || { [ "$level" = demo ] && [ "$have" = "$want demo" ]; }; then
    return
  fi
  if [ "${have%% *}" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    install_torch
  fi
  local extras="deepspeed,notebooks,modelscope"
  [ "$level" = dev ] && extras="$extras,dev"
  # modelscope: the quick start's hub (USE_MODELSCOPE_HUB=1), so `kit doctor` finds it after `dev.sh demo`.
  # -qq, not -q: recent pip (26.3 here) shows a local project's build-backend warnings at WARNING level, so -q
  # lets through setuptools' "Package would be ignored" (the data folders under kit/) and "Editable
  # installation" notices, about 250 lines that ask nothing of the person. -qq keeps errors: a failed build
  # still prints its whole output, and a dependency conflict its ERROR line.
  "$VENV/bin/python" -m pip install -qq --no-compile -e ".[$extras]"
  compile_all
  if [ "$level" = dev ]; then
    # DeepSpeed compiles a C++ op (shared-memory all-reduce) the first time several training processes share a
    # CPU: about 40 s of g++, so do it now, not inside a test. The demo trains in one process, which does not
    # load the op (kit.device.skip_cpu_shared_memory_op), so `dev.sh demo` skips this.
    "$VENV/bin/python" -c "from kit.run.launch import prebuild_deepspeed_ops as b; b() or print('DeepSpeed op not prebuilt; the first run of several processes will compile it')"
  fi
  echo "$want $level" > "$stamp"
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) install dev ;;
  demo) install demo; exec "$VENV/bin/kit" demo "$@" ;;
  test) install dev; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash dev.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
