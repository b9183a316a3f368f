#!/usr/bin/env bash
# Sets up, lints, type-checks and runs the whole test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
# When it is missing, apt-get installs it while pip sets up .venv (56 s from a fresh clone
# here): both mostly wait on downloads.
chromium_pid=""
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: chromium is missing; run 'sudo apt-get install -y chromium' and retry" >&2
    exit 2
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) &
  chromium_pid=$!
fi
setup_status=0
bash scripts/setup.sh || setup_status=$?
if [ "$setup_status" -ne 0 ]; then
  [ -z "$chromium_pid" ] || wait "$chromium_pid" || true  # never leave apt-get half done
  exit "$setup_status"
fi
if [ -n "$chromium_pid" ] && ! wait "$chromium_pid"; then
  echo "error: 'apt-get install chromium' failed (above); install it and retry" >&2
  exit 1
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# mypy --strict from a cold cache (as on CI) is ~25 CPU-seconds on one core: it runs beside the
# tests, whose workers mostly wait on servers, and its verdict counts like theirs.
mypy_log=$(mktemp)
.venv/bin/mypy --strict shared choreography orchestration harness monitor tests scripts >"$mypy_log" 2>&1 &
mypy_pid=$!
trap 'kill "$mypy_pid" 2>/dev/null || true; rm -f "$mypy_log"' EXIT
status=0
# Three workers (pytest-xdist) on two cores: most tests wait on servers and timers, so one
# pytest process left the cores mostly idle (load 1.5), and two still left room: the same commit
# took 862 s of pytest with two workers and 774 s with three, on a quiet machine.
# --dist loadscope keeps each module on one worker, so a module's servers (its module-scoped
# fixtures) start once rather than once per worker. No test relies on another having run
# first: each passes alone and in any order.
.venv/bin/python -m pytest -n 3 --dist loadscope "$@" || status=$?
mypy_status=0
wait "$mypy_pid" || mypy_status=$?
cat "$mypy_log"
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
if [ "$mypy_status" -ne 0 ]; then
  echo "error: mypy --strict found problems (above)" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
