#!/usr/bin/env bash
# Install the Debian packages given as arguments, only those missing.
set -euo pipefail
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "setup: Debian packages present"; exit 0; }
echo "setup: installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/qtrain-apt.log 2>&1; then
    tail -20 /tmp/qtrain-apt.log >&2
    echo "setup: apt-get install failed for: ${missing[*]}. Fix: install them by hand (as root) and rerun make." >&2
    exit 1
fi
