#!/usr/bin/env bash
# Assemble the Lambda bundle the SAM templates point at (CodeUri: ../.build/):
# durable_core, saga, the examples and lambda_handlers.py, plus requirements.txt for
# `sam build` to install (a recent boto3: the durable execution APIs are new).
# Usage: deploy/build.sh && sam build -t deploy/tour_booking/service.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
out=deploy/.build
rm -rf "$out"
mkdir -p "$out"
cp -R durable_core saga examples "$out"/
cp deploy/lambda_handlers.py "$out"/
find "$out" -name '__pycache__' -type d -prune -exec rm -rf {} +
cat > "$out/requirements.txt" <<'REQ'
pydantic>=2.6
tenacity>=8.2
structlog>=24.1
boto3>=1.42
REQ
echo "deploy/build.sh: bundle ready in $out"
