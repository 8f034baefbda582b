#!/usr/bin/env bash
# Install what tests/test_browser.py needs: Debian's Chromium, and in the kit's venv JupyterLab and
# the Python package playwright, which drives that system Chromium (no `playwright install`, no
# browser download: the wheel carries its own driver and works offline).
#
#   bash scripts/install_browser.sh            # venv: $KIT_VENV or .venv (created by dev.sh setup if missing)
#
# Idempotent: a second run installs nothing new. Needs root or sudo for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${KIT_VENV:-.venv}
CHROMIUM=${KIT_CHROMIUM:-chromium}

if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # fonts-noto-cjk: the Chinese notebooks render as boxes in screenshots without a CJK font
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  CHROMIUM=chromium
fi

if [ ! -x "$VENV/bin/python" ]; then
  bash dev.sh setup
fi
# jupyterlab is in the kit's `notebooks` extra too; listed here so this script alone is enough.
"$VENV/bin/python" -m pip install -q "playwright>=1.50" "jupyterlab>=4" "jupyterlab_widgets>=3" "ipywidgets>=8"

# Smoke check: Playwright starts the system Chromium headless (the flags this container needs).
KIT_CHROMIUM_PATH=$(command -v "$CHROMIUM") "$VENV/bin/python" - <<'EOF'
import os
from playwright.sync_api import sync_playwright

with sync_playwright() as pw:
    browser = pw.chromium.launch(
        executable_path=os.environ["KIT_CHROMIUM_PATH"], headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])
    print(f"browser test tools ready: Chromium {browser.version} at {os.environ['KIT_CHROMIUM_PATH']}, "
          f"driven by Playwright (Python)")
    browser.close()
EOF
