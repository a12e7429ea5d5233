"""Store URLs: one text names a store for the CLI, the worker and the server.

- ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (as
  SQLAlchemy writes them), or a plain file path: the SQLite store in that file.
- ``dynamodb://TABLE?region=eu-west-1`` (optionally ``&endpoint=http://127.0.0.1:8000``
  for DynamoDB Local): the DynamoDB store on that table; credentials come from boto3's
  usual configuration, never from the URL.
- ``postgresql://USER@HOST[:PORT]/DATABASE`` (or ``postgres://``), optionally with
  ``?sslmode=...&application_name=...&connect_timeout=SECONDS&pool_size=N``: the PostgreSQL
  store in that database (``durable-saga[postgres]``). A password never goes in the URL
  (it would show in process lists and shell history): libpq reads it from ``PGPASSWORD``
  or ``~/.pgpass``.

Anything else is a :class:`~durable_core.errors.ValidationError` that names the URL (with a
password-like part masked) and shows the accepted forms. Nothing is opened or created for a
URL that does not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, quote, urlsplit

from durable_core.errors import StoreError, ValidationError

if TYPE_CHECKING:
    from durable_core.stores.base import Store

FORMS = (
    "sqlite:///relative/path.sqlite3, sqlite:////absolute/path.sqlite3, a plain file path, "
    "dynamodb://TABLE?region=REGION[&endpoint=URL], "
    "or postgresql://USER@HOST[:PORT]/DATABASE[?sslmode=...&pool_size=N]"
)
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_DYNAMO_KEYS = frozenset({"region", "endpoint"})
_PG_KEYS = frozenset({"sslmode", "application_name", "connect_timeout", "pool_size"})
_PG_NAME = re.compile(r"[A-Za-z0-9_.$-]{1,63}")
_PG_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]+")
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: ``kind`` and where (``path`` for SQLite; ``table``, ``region``,
    ``endpoint`` for DynamoDB; ``dsn`` and ``pool_size`` for PostgreSQL)."""

    kind: Literal["sqlite", "dynamodb", "postgres"]
    path: Path | None = None
    table: str | None = None
    region: str | None = None
    endpoint: str | None = None
    dsn: str | None = None
    """The libpq connection URL (``postgresql://...``, without ``pool_size``)."""
    pool_size: int | None = None

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return str(self.path)
        if self.kind == "postgres":
            return str(self.dsn)
        query = f"?region={self.region}" if self.region else ""
        if self.endpoint:
            query += f"{'&' if query else '?'}endpoint={self.endpoint}"
        return f"dynamodb://{self.table}{query}"


def parse_store_url(url: str) -> StoreURL:
    """Parse ``url`` (module docstring); nothing is opened.

    Raises:
        ValidationError: naming the URL and the accepted forms.
    """
    if not isinstance(url, str) or not url.strip() or "\x00" in url:
        raise ValidationError(f"store URL {_shown(url)} is empty or not text; use {FORMS}")
    if "://" not in url:
        return StoreURL(kind="sqlite", path=Path(url))
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        rest = url.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise ValidationError(
                f"store URL {_shown(url)}: a SQLite URL needs a file after 'sqlite:///'; "
                f"use {FORMS}"
            )
        return StoreURL(kind="sqlite", path=Path(rest[1:]))
    if scheme == "dynamodb":
        return _dynamodb(url)
    if scheme in ("postgresql", "postgres"):
        return _postgres(url)
    raise ValidationError(f"store URL {_shown(url)}: unknown kind {scheme!r}; use {FORMS}")


def _dynamodb(url: str) -> StoreURL:
    parts = urlsplit(url)
    table = parts.netloc
    if "@" in table or not _TABLE.fullmatch(table):
        raise ValidationError(
            f"store URL {_shown(url)}: the DynamoDB table name must be 3-255 of letters, "
            "digits and _ . - (credentials never go in the URL)"
        )
    if parts.path not in ("", "/") or parts.fragment:
        raise ValidationError(f"store URL {_shown(url)}: nothing may follow the table name")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as e:
        raise ValidationError(f"store URL {_shown(url)}: the query does not parse ({e})") from e
    unknown = set(query) - _DYNAMO_KEYS
    repeated = [k for k, v in query.items() if len(v) > 1]
    if unknown or repeated:
        raise ValidationError(
            f"store URL {_shown(url)}: only region= and endpoint= are allowed, once each"
        )
    region = query.get("region", [None])[0]
    endpoint = query.get("endpoint", [None])[0]
    if region is not None and not _REGION.fullmatch(region):
        raise ValidationError(f"store URL {_shown(url)}: {region!r} is not an AWS region")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ValidationError(f"store URL {_shown(url)}: endpoint= must be an http(s) URL")
    return StoreURL(kind="dynamodb", table=table, region=region, endpoint=endpoint)


def _postgres(url: str) -> StoreURL:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise ValidationError(
            f"store URL {_shown(url)}: the port must be a number from 1 to 65535"
        ) from None
    if parts.password is not None:
        raise ValidationError(
            f"store URL {_shown(url)}: a password never goes in the URL (process lists and "
            "shell history show it); set PGPASSWORD or use ~/.pgpass"
        )
    user, host = parts.username, parts.hostname
    if not user or not _PG_NAME.fullmatch(user):
        raise ValidationError(
            f"store URL {_shown(url)}: name the PostgreSQL user before '@' "
            "(postgresql://USER@HOST/DATABASE)"
        )
    if not host or not _PG_HOST.fullmatch(host):
        raise ValidationError(f"store URL {_shown(url)}: the host name does not parse")
    database = parts.path[1:] if parts.path.startswith("/") else ""
    if not _PG_NAME.fullmatch(database) or parts.fragment:
        raise ValidationError(
            f"store URL {_shown(url)}: name the database after the host "
            "(postgresql://USER@HOST[:PORT]/DATABASE), 1-63 of letters, digits and _ . $ -"
        )
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as e:
        raise ValidationError(f"store URL {_shown(url)}: the query does not parse ({e})") from e
    unknown = set(query) - _PG_KEYS
    if unknown or any(len(v) > 1 for v in query.values()):
        raise ValidationError(
            f"store URL {_shown(url)}: only {', '.join(sorted(_PG_KEYS))} are allowed, once "
            f"each (got {', '.join(sorted(unknown)) or 'a repeated one'})"
        )
    options = {k: v[0] for k, v in query.items()}
    if "sslmode" in options and options["sslmode"] not in _SSLMODES:
        raise ValidationError(
            f"store URL {_shown(url)}: sslmode must be one of {', '.join(sorted(_SSLMODES))}"
        )
    for key in ("connect_timeout", "pool_size"):
        if key in options and not (options[key].isdigit() and 0 < int(options[key]) <= 1000):
            raise ValidationError(
                f"store URL {_shown(url)}: {key}= must be a whole number from 1 to 1000"
            )
    pool_size = options.pop("pool_size", None)
    rest = "&".join(f"{k}={quote(v)}" for k, v in options.items())
    netloc = f"{quote(user)}@{parts.netloc.rsplit('@', 1)[1]}"
    dsn = f"postgresql://{netloc}/{database}" + (f"?{rest}" if rest else "")
    return StoreURL(
        kind="postgres", dsn=dsn, pool_size=None if pool_size is None else int(pool_size)
    )


def open_store_url(url: str, *, create: bool, read_only: bool = False) -> Store:
    """Open the store ``url`` names. With ``create=False`` a SQLite file must exist.

    With ``read_only`` a SQLite file is opened for reading only (no write lock, works on a
    read-only mount; see :class:`~durable_core.stores.sqlite.SQLiteStore`); DynamoDB reads
    take no lock either way. A PostgreSQL database must exist; with ``create=False`` it must
    already hold a durable-saga schema (none is created).

    Raises:
        ValidationError: the URL does not parse (nothing opened).
        StoreError: ``create=False`` and there is no store there.
    """
    where = parse_store_url(url)
    if where.kind == "sqlite":
        assert where.path is not None
        if not create and not where.path.exists():
            raise StoreError(
                f"no store at {str(where.path)!r}. Start an execution first (`durable run "
                "...`), or point --store at an existing store."
            )
        from durable_core.stores.sqlite import SQLiteStore  # creates the folder owner-only

        return SQLiteStore(where.path, read_only=read_only)
    if where.kind == "postgres":
        assert where.dsn is not None
        try:
            from durable_core.stores.postgres import PostgresStore
        except ImportError as e:
            raise StoreError(f"{where.dsn}: {e}") from e
        size = {} if where.pool_size is None else {"pool_size": where.pool_size}
        return PostgresStore(where.dsn, create=create, **size)
    from durable_core.stores.dynamodb import DynamoDBStore

    assert where.table is not None
    return DynamoDBStore(where.table, region_name=where.region, endpoint_url=where.endpoint)


def _shown(url: object) -> str:
    """The URL for an error message, any ``user:password@`` part masked, cut to 200."""
    text = url if isinstance(url, str) else repr(url)
    return repr(re.sub(r"//[^/@]*@", "//***@", text)[:200])
