"""The HTTP API (and the console) of a durable-saga store: ``durable serve``.

Needs the ``server`` extra (``pip install durable-saga[server]``: FastAPI and uvicorn).
:func:`create_app` builds the ASGI app on any store, for tests and for embedding in your
own server; docs/server.md describes the API, the keys and roles, and the errors.
"""

from __future__ import annotations

from durable_core.server.app import create_app
from durable_core.server.auth import ApiKey, Role, hash_key, load_keys, new_key

__all__ = ["ApiKey", "Role", "create_app", "hash_key", "load_keys", "new_key"]
