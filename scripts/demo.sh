#!/usr/bin/env bash
# Sets up and runs the demo on the embedded servers. Extra args go to `saga-compare demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/saga-compare demo "$@"
