#!/usr/bin/env bash
# Set up unmasked on a fresh machine: the headless browser the web tests drive (Debian/Ubuntu
# packages chromium + chromium-driver, installed with apt-get when missing), then the package
# itself with its test tools (pip install -e ".[dev]"). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

have_browser() {
  { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } && command -v chromedriver >/dev/null
}

if have_browser; then
  echo "install.sh: chromium and chromedriver found"
elif command -v apt-get >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install.sh: need root (or sudo) to apt-get install chromium chromium-driver" >&2; exit 1
  fi
  echo "install.sh: installing chromium chromium-driver with apt-get (for the browser tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
else
  echo "install.sh: apt-get is not available: install Chromium and a matching chromedriver yourself" >&2
  echo "            (the browser tests are skipped, with this reason, until both are on PATH)" >&2
fi

python -m pip install -e ".[dev]"
