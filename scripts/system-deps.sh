#!/usr/bin/env bash
# Debian packages the test suite and benchmarks use (run as root; idempotent).
set -euo pipefail
PKGS=(postgresql chromium fonts-noto-cjk fonts-noto-color-emoji espeak-ng sox ffmpeg wrk)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
