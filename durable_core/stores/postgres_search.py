"""The SQL of ``PostgresStore.search_executions``.

Part of the PostgreSQL store. The query selects exactly the rows
:meth:`~durable_core.stores.search.ExecutionQuery.matches` accepts, newest first, one more
than the page so the caller knows there is a next page. Filters read the columns the store
copies from each record when it writes it (function, role, error type, waiting text), never
the JSON, so a damaged record cannot fail the query. Text matching is exact and
case-sensitive except ``waiting_*``, which folds ASCII letters only (``translate``, not the
locale-dependent ``lower``), as :func:`~durable_core.stores.search.fold` does.
"""

from __future__ import annotations

from typing import Any

from durable_core.stores.search import ExecutionQuery
from durable_core.stores.sqlite_rows import _us

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _fold(sql: str) -> str:
    return f"translate({sql}, '{_UPPER}', '{_LOWER}')"


def search_sql(query: ExecutionQuery) -> tuple[str, list[Any]]:
    """The statement and its parameters for ``query`` (rows: id and record text)."""
    where: list[str] = []
    params: list[Any] = []
    if query.function is not None:
        where.append("function = %s")
        params.append(query.function)
    if query.status is not None:
        where.append("status = %s")
        params.append(query.status.value)
    if query.id_contains is not None:
        where.append("strpos(id, %s) > 0")
        params.append(query.id_contains)
    waiting = _fold("coalesce(waiting_for, '')")
    for text in query.waiting_contains:
        where.append(f"strpos({waiting}, {_fold('%s')}) > 0")
        params.append(text)
    for text in query.waiting_excludes:
        where.append(f"strpos({waiting}, {_fold('%s')}) = 0")
        params.append(text)
    if query.role is not None:
        where.append("role = %s")
        params.append(query.role)
    if query.error_type is not None:
        where.append("error_type = %s")
        params.append(query.error_type)
    if query.parked is not None:
        parked = "(status = 'RUNNING' AND error_type IS NOT NULL)"
        where.append(parked if query.parked else f"NOT {parked}")
    if query.created_after is not None:
        where.append("created_at >= %s")
        params.append(_us(query.created_after))
    if query.created_before is not None:
        where.append("created_at < %s")
        params.append(_us(query.created_before))
    if query.after is not None:
        where.append("(created_at, id) < (%s, %s)")
        params += [_us(query.after[0]), query.after[1]]
    sql = "SELECT id, record::text FROM durable_executions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, id DESC LIMIT %s"
    params.append(query.limit + 1)
    return sql, params
