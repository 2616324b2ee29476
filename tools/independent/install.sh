#!/usr/bin/env bash
# Installs the pinned independent FHIR R4 validators next to this script:
#   node_modules/  FHIR.js and the official R4 JSON schema (npm ci: exact versions and
#                  integrity hashes from package-lock.json; no install scripts run)
#   .venv/         Google's FHIR R4 parser (pip, exact versions with sha256 hashes)
# Needs node + npm and a Python 3.8-3.11 (PYTHON, default python3). Safe to re-run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

npm ci --prefix "$here" --ignore-scripts --no-audit --no-fund

if [ ! -x "$here/.venv/bin/python" ]; then
  "$python" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes -r "$here/requirements.txt"
