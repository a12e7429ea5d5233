"""Run one Lambda invocation in this process: ``python -m lambda_service.lambda_proc
module:handler`` reads the event (JSON) on stdin and writes the handler's response on stdout.

Used for handlers a test kills mid-invocation. The handler's boto3 client comes from the
environment (``AWS_ENDPOINT_URL_LAMBDA``, region, credentials), as in Lambda.
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    module, _, attr = sys.argv[1].partition(":")
    handler = getattr(importlib.import_module(module), attr)
    event = json.loads(sys.stdin.read())
    json.dump(handler(event, None), sys.stdout)


if __name__ == "__main__":
    main()
