"""``durable serve``: the HTTP API and console on a store (needs the ``server`` extra).

Invariants:
- Binds 127.0.0.1 unless ``--host`` says otherwise.
- Refuses to start without an API key (``$DURABLE_API_KEYS`` or ``--keys-file``): exit 2.
- uvicorn's access log is off (a callback's path holds its token); nothing logs a key.
- A store URL that does not parse, or a store that cannot be opened, is exit 2 with the
  error, before anything listens.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from durable_core.errors import ValidationError


def add_serve_command(sub: Any) -> None:
    """Add ``serve`` to the ``durable`` parser's subcommands."""
    p = sub.add_parser("serve", help="serve the HTTP API and the console on a store")
    p.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        help="store URL: sqlite:///path, a path, or dynamodb://TABLE?region=...",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument(
        "--keys-file",
        help="API keys, one a line as actor:role:sha256hex (or a JSON list); "
        "also read from $DURABLE_API_KEYS",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=1024 * 1024,
        help="largest request body accepted (default 1 MiB; 413 above it)",
    )
    p.add_argument(
        "--new-key",
        metavar="ACTOR:ROLE",
        help="print a new random key and its keys-file line for ACTOR:ROLE, then exit",
    )
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from durable_core.server.auth import KEYS_ENV, Role, hash_key, load_keys, new_key

    if args.new_key:
        actor, _, role = args.new_key.partition(":")
        Role.parse(role, "--new-key")
        key = new_key()
        print(f"key (give it to {actor}; it is not stored anywhere): {key}")
        print(f"keys-file line: {actor}:{role}:{hash_key(key)}")
        return 0
    from durable_core.stores.urls import open_store_url, parse_store_url

    parse_store_url(args.store)  # a URL that does not parse is refused before anything else
    if not 0 < args.port < 65536:
        raise ValidationError(f"--port must be between 1 and 65535, got {args.port}")
    if args.max_body_bytes < 1024:
        raise ValidationError(f"--max-body-bytes must be at least 1024, got {args.max_body_bytes}")
    keys = load_keys(args.keys_file, os.environ.get(KEYS_ENV))
    if not keys:
        raise ValidationError(
            f"no API keys: set ${KEYS_ENV} or pass --keys-file (lines actor:role:sha256hex). "
            "Make a key with `durable serve --new-key ana:admin`."
        )
    try:
        import uvicorn

        from durable_core.server import create_app
    except ImportError as e:
        raise ValidationError(
            f"durable serve needs the server extra: pip install 'durable-saga[server]' ({e})"
        ) from e
    store = open_store_url(args.store, create=True)
    try:
        app = create_app(store, keys=keys, max_body_bytes=args.max_body_bytes)
        print(
            f"serving {args.store} on http://{args.host}:{args.port} "
            f"(API /api/v1, console /console/; {len(keys)} key(s))",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    finally:
        store.close()
    return 0
