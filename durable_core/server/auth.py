"""API keys, roles and the checks every request passes: who is calling, and may they.

Keys come from the environment variable ``DURABLE_API_KEYS`` or a keys file, one key a
line as ``actor:role:sha256hex`` (or a JSON list of ``{"actor", "role", "sha256"}``). Only
the SHA-256 of a key is ever held: an API key is a high-entropy random secret (make one
with :func:`new_key`), so a plain hash is enough to store it; a key is looked up by
hashing what the caller sent and comparing it with every stored hash in constant time.

Invariants:
- Roles are ordered ``read < operate < admin``; a route needs one and any higher role
  passes.
- A missing or unknown key is 401 ``unauthorized``, a role too low 403 ``forbidden``; the
  answer never echoes the key.
- No key and no hash is ever logged or put in an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from durable_core.errors import ValidationError

KEYS_ENV = "DURABLE_API_KEYS"
"""The environment variable holding the keys (same format as a keys file)."""


class Role(IntEnum):
    """What a key may do; each role may do everything the lower ones may."""

    READ = 1
    """List and look at executions."""
    OPERATE = 2
    """Start, cancel, terminate, and the saga operator actions."""
    ADMIN = 3
    """Also read the audit log."""

    @classmethod
    def parse(cls, text: str, where: str) -> Role:
        """The role named ``text`` (``read``, ``operate``, ``admin``); ValidationError else."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValidationError(
                f"{where}: role {text!r} is not one of read, operate, admin"
            ) from None


@dataclass(frozen=True)
class ApiKey:
    """One configured key: who holds it, its role, and the SHA-256 of the key (hex)."""

    actor: str
    role: Role
    sha256: str


_HEX = re.compile(r"[0-9a-f]{64}")
_ACTOR = re.compile(r"[A-Za-z0-9_.@+-]{1,100}")


def hash_key(key: str) -> str:
    """The SHA-256 (hex) of ``key``, as a keys file holds it."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits, URL-safe)."""
    return "dsk_" + secrets.token_urlsafe(32)


def parse_keys(text: str, where: str) -> list[ApiKey]:
    """The keys in ``text`` (lines ``actor:role:sha256hex`` or a JSON list); ``where`` names
    the source in errors. Blank lines and lines starting with ``#`` are skipped."""
    stripped = text.strip()
    entries: list[tuple[str, str, str, str]] = []
    if stripped.startswith("["):
        try:
            doc = json.loads(stripped)
        except ValueError as e:
            raise ValidationError(f"{where} is not valid JSON: {e}") from e
        for i, item in enumerate(doc):
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("actor", "role", "sha256")
            ):
                raise ValidationError(
                    f"{where}: entry {i} must be an object with text actor, role and sha256"
                )
            entries.append((item["actor"], item["role"], item["sha256"], f"{where} entry {i}"))
    else:
        for n, raw in enumerate(stripped.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) != 3:
                raise ValidationError(
                    f"{where} line {n}: expected actor:role:sha256hex (3 fields separated "
                    f"by ':'), got {len(parts)} fields"
                )
            entries.append((parts[0], parts[1], parts[2], f"{where} line {n}"))
    keys: list[ApiKey] = []
    for actor, role, digest, at in entries:
        if not _ACTOR.fullmatch(actor.strip()):
            raise ValidationError(f"{at}: actor must be 1-100 of A-Z a-z 0-9 _ . @ + -")
        if not _HEX.fullmatch(digest.strip().lower()):
            raise ValidationError(
                f"{at}: the key must be given as its SHA-256 in hex (64 characters), never "
                "the key itself; make one with `durable serve --new-key`"
            )
        keys.append(ApiKey(actor.strip(), Role.parse(role, at), digest.strip().lower()))
    actors = [k.actor for k in keys]
    if len(set(actors)) != len(actors):
        raise ValidationError(f"{where}: an actor is listed twice; each actor has one key")
    return keys


def load_keys(file: str | None, env: str | None) -> list[ApiKey]:
    """The keys of ``file`` (a path) and of ``env`` (the variable's text), both if given."""
    keys: list[ApiKey] = []
    if env:
        keys += parse_keys(env, f"${KEYS_ENV}")
    if file:
        try:
            text = Path(file).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ValidationError(f"cannot read the keys file {file}: {e}") from e
        keys += parse_keys(text, f"keys file {file}")
    return keys


def find_key(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The key whose hash matches ``presented``, comparing every hash in constant time."""
    digest = hash_key(presented)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(key.sha256, digest):
            found = key
    return found
