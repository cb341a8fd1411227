#!/usr/bin/env bash
# Local Kafka and PostgreSQL for Sous: a thin wrapper over `sous infra` (sous/infra/),
# kept so `bash deploy/local/infra.sh up|down [--purge]|status|env|stop X|start X` still works.
# See deploy/local/README.md. Progress goes to stderr; `up` prints only the env lines.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${SOUS_PYTHON:-$root/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
  make -C "$root" --no-print-directory sync >&2   # a fresh clone: install the workspace first
fi
exec "$python" -m sous.infra "$@"
