#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh machine: system libraries, then the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname)" = Linux ]; then
  # OpenBLAS for MLX on Linux (its bundled reference BLAS is ~25x slower); see scripts/env.sh.
  # Chromium + driver for the UI test (Playwright drives Debian's browser; none is downloaded).
  # PostgreSQL + Redis for the two-host deployment on one machine (lume-v6 services, its tests).
  # FluidSynth renders the development set's music (lume-v6 devset; on a Mac: brew install fluid-synth).
  need=()
  for pkg in libopenblas0-pthread chromium chromium-driver postgresql redis-server libfluidsynth3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
  fi
fi

[ -x .venv/bin/python ] || python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # The CPU build of torch first: a bare requirement would pull a multi-GB CUDA build.
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
