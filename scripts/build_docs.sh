#!/usr/bin/env bash
# Build the documentation site (English and Chinese) into docs/_build/html.
#
#   bash scripts/build_docs.sh [EXECUTED_DIR] [--lang en,zh] [--out DIR]
#
# EXECUTED_DIR: notebooks that already ran, as EXECUTED_DIR/en/NAME.ipynb and EXECUTED_DIR/zh/NAME.ipynb
# (e.g. the run folder of `kit demo`); $KIT_DOCS_EXECUTED works too. Without it, the notebooks under
# notebooks/ are executed first with papermill (CPU, embedded tiny model: minutes). The docs build itself
# never executes a notebook, and fails on any Sphinx warning (broken links included).
# Needs the docs extra: pip install -e ".[docs,notebooks]"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$PY" docs/build.py "$@"
