#!/usr/bin/env bash
# Install what the Lambda durable-service tests need (tests/lambda_service, pytest -m aws):
# AWS's emulator `dex-local-runner` from aws-durable-execution-sdk-python-testing (it also
# brings a boto3/botocore with the durable execution APIs) and cfn-lint for the SAM
# templates, into the project venv. Idempotent: when both are present this only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
need=()
"$PY" - <<'PY' || need+=("aws-durable-execution-sdk-python-testing>=1.4,<2")
import importlib.metadata as m, sys
v = tuple(int(x) for x in m.version("aws-durable-execution-sdk-python-testing").split(".")[:2])
sys.exit(0 if (1, 4) <= v < (2, 0) else 1)
PY
"$PY" -c "import cfnlint" 2>/dev/null || need+=("cfn-lint>=1.40")
if [ "${#need[@]}" -gt 0 ]; then
  "$PY" -m pip install --quiet "${need[@]}"
fi
"$PY" - <<'PY'
import botocore.session
client = botocore.session.get_session().create_client("lambda", region_name="us-east-1")
missing = [api for api in ("checkpoint_durable_execution", "get_durable_execution_state",
                           "send_durable_execution_callback_success") if not hasattr(client, api)]
if missing:
    raise SystemExit(f"install-aws-emulator.sh: botocore lacks {missing}; upgrade boto3")
PY
bin="$("$PY" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "dex-local-runner"))')"
[ -x "$bin" ] || { echo "install-aws-emulator.sh: $bin not found after install" >&2; exit 1; }
echo "install-aws-emulator.sh: dex-local-runner ready ($bin)"
