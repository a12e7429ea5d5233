"""The SQL of ``SQLiteStore.search_executions``.

Part of the SQLite store. The query selects exactly the rows
:meth:`~durable_core.stores.search.ExecutionQuery.matches` accepts, newest first, one more
than the page so the caller knows there is a next page. Rows are read newest first along
the listing indexes of :mod:`~durable_core.stores.sqlite_schema` (created time; status and
created time), so a first page whose filter matches often reads about a page of rows; a
rare match scans (about 10 ms on 100,000 rows, see bench/bench_server.py). Filters on the
record's fields read it with ``json_extract`` guarded by ``json_valid``: a damaged record
matches no filter (and is skipped, logged, by the store) instead of failing the query.
"""

from __future__ import annotations

from typing import Any

from durable_core.stores.search import ExecutionQuery
from durable_core.stores.sqlite_rows import _us


def _field(path: str) -> str:
    """The record's field at ``path``, or NULL if the record is not valid JSON."""
    return f"CASE WHEN json_valid(record) THEN json_extract(record, '{path}') END"


def search_sql(query: ExecutionQuery) -> tuple[str, list[Any]]:
    """The statement and its parameters for ``query`` (rows: id and record as BLOBs)."""
    where: list[str] = []
    params: list[Any] = []
    if query.function is not None:
        where.append(f"{_field('$.function')} = ?")
        params.append(query.function)
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status.value)
    if query.id_contains is not None:
        where.append("instr(id, ?) > 0")
        params.append(query.id_contains)
    for text in query.waiting_contains:
        where.append(f"instr(lower(coalesce({_field('$.waiting_for')}, '')), lower(?)) > 0")
        params.append(text)
    for text in query.waiting_excludes:
        where.append(f"instr(lower(coalesce({_field('$.waiting_for')}, '')), lower(?)) = 0")
        params.append(text)
    if query.role is not None:
        where.append(f"{_field('$.role')} = ?")
        params.append(query.role)
    if query.error_type is not None:
        where.append(f"{_field('$.error.type')} = ?")
        params.append(query.error_type)
    if query.parked is not None:
        parked = f"(status = 'RUNNING' AND {_field('$.error')} IS NOT NULL)"
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
