"""Store URLs: one text names a store for the CLI, the worker and the server.

- ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (as
  SQLAlchemy writes them), or a plain file path: the SQLite store in that file.
- ``dynamodb://TABLE?region=eu-west-1`` (optionally ``&endpoint=http://127.0.0.1:8000``
  for DynamoDB Local): the DynamoDB store on that table; credentials come from boto3's
  usual configuration, never from the URL.

Anything else is a :class:`~durable_core.errors.ValidationError` that names the URL (with a
password-like part masked) and shows the accepted forms. Nothing is opened or created for a
URL that does not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlsplit

from durable_core.errors import StoreError, ValidationError

if TYPE_CHECKING:
    from durable_core.stores.base import Store

FORMS = (
    "sqlite:///relative/path.sqlite3, sqlite:////absolute/path.sqlite3, a plain file path, "
    "or dynamodb://TABLE?region=REGION[&endpoint=URL]"
)
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_DYNAMO_KEYS = frozenset({"region", "endpoint"})


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: ``kind`` and where (``path`` for SQLite; ``table``, ``region``,
    ``endpoint`` for DynamoDB)."""

    kind: Literal["sqlite", "dynamodb"]
    path: Path | None = None
    table: str | None = None
    region: str | None = None
    endpoint: str | None = None

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return str(self.path)
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


def open_store_url(url: str, *, create: bool, read_only: bool = False) -> Store:
    """Open the store ``url`` names. With ``create=False`` a SQLite file must exist.

    With ``read_only`` a SQLite file is opened for reading only (no write lock, works on a
    read-only mount; see :class:`~durable_core.stores.sqlite.SQLiteStore`); DynamoDB reads
    take no lock either way.

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
    from durable_core.stores.dynamodb import DynamoDBStore

    assert where.table is not None
    return DynamoDBStore(where.table, region_name=where.region, endpoint_url=where.endpoint)


def _shown(url: object) -> str:
    """The URL for an error message, any ``user:password@`` part masked, cut to 200."""
    text = url if isinstance(url, str) else repr(url)
    return repr(re.sub(r"//[^/@]*@", "//***@", text)[:200])
