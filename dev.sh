#!/usr/bin/env bash
# Set up everything on a fresh machine (only Python needed) and run the main job or the tests.
#
#   bash dev.sh demo [key=value ...]   the whole quick start on the embedded tiny model (CPU, minutes)
#   bash dev.sh test [pytest args]     the test suite
#   bash dev.sh setup                  only create .venv and install the kit
#
# KIT_VENV (default .venv) and KIT_TORCH (default torch==2.13.0, the CPU build) can be overridden.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${KIT_VENV:-.venv}
TORCH=${KIT_TORCH:-torch==2.13.0}
PY=${PYTHON:-python3}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.kit-installed"
  # Reinstall only when the dependencies changed.
  local want
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # Pin torch first: an unpinned torch would pull a multi-GB CUDA build on a CPU machine.
    "$VENV/bin/python" -m pip install -q "$TORCH"
    "$VENV/bin/python" -m pip install -q -e ".[deepspeed,notebooks,dev]"
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/kit" demo "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash dev.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
