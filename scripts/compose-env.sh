#!/usr/bin/env bash
# Write .env for docker-compose.yml: a random password for each NATS user (one per process
# kind, the harness's front door, the monitor, the admin), readable by you only. An existing
# .env is kept, so the users' passwords stay those the NATS nodes started with.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -e .env ]]; then
  echo ".env exists; kept (delete it to make new passwords)"
  exit 0
fi
umask 077
roles=(inventory payment points shipping fraud orders tracker front monitor admin)
{
  echo "# NATS users' passwords for docker-compose.yml (scripts/compose-env.sh); keep private."
  for role in "${roles[@]}"; do
    # Letters and digits, a letter first: nats-server reads the variable as a config value,
    # and one starting with a digit or `-` can parse as a number, a size or a date.
    raw=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
    secret="p${raw:0:31}"
    echo "SAGA_NATS_PASSWORD_${role^^}=${secret}"
  done
} > .env
echo "wrote .env (owner-only): ${#roles[@]} NATS passwords"
