"""The SQL of ``SQLiteStore.search_executions``.

Part of the SQLite store. The query selects exactly the rows
:meth:`~durable_core.stores.search.ExecutionQuery.matches` accepts, newest first, one more
than the page so the caller knows there is a next page. Filters on the record's fields use
``json_extract`` expressions that the indexes of :mod:`~durable_core.stores.sqlite_schema`
cover (function; status; created time), so the first page of a listing reads about a page
of rows, not the table.
"""

from __future__ import annotations

from typing import Any

from durable_core.stores.search import ExecutionQuery
from durable_core.stores.sqlite_rows import _us

FUNCTION = "json_extract(record, '$.function')"
"""The expression the ``executions_function`` index is built on (the query must repeat it
exactly for SQLite to use the index)."""


def search_sql(query: ExecutionQuery) -> tuple[str, list[Any]]:
    """The statement and its parameters for ``query`` (rows: id and record as BLOBs)."""
    where: list[str] = []
    params: list[Any] = []
    if query.function is not None:
        where.append(f"{FUNCTION} = ?")
        params.append(query.function)
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status.value)
    if query.id_contains is not None:
        where.append("instr(id, ?) > 0")
        params.append(query.id_contains)
    for text in query.waiting_contains:
        where.append(
            "instr(lower(coalesce(json_extract(record, '$.waiting_for'), '')), lower(?)) > 0"
        )
        params.append(text)
    if query.error_type is not None:
        where.append("json_extract(record, '$.error.type') = ?")
        params.append(query.error_type)
    if query.parked is not None:
        parked = "(status = 'RUNNING' AND json_extract(record, '$.error') IS NOT NULL)"
        where.append(parked if query.parked else f"NOT {parked}")
    if query.created_after is not None:
        where.append("created_at >= ?")
        params.append(_us(query.created_after))
    if query.created_before is not None:
        where.append("created_at < ?")
        params.append(_us(query.created_before))
    if query.after is not None:
        where.append("(created_at, id) < (?, ?)")
        params += [_us(query.after[0]), query.after[1]]
    sql = "SELECT CAST(id AS BLOB), CAST(record AS BLOB) FROM executions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    params.append(query.limit + 1)
    return sql, params
