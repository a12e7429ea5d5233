"""Journal stores: the Protocol and its backends (memory, SQLite; DynamoDB in aws_lambda)."""

from durable_core.stores.base import InvocationEnd, Store
from durable_core.stores.memory import MemoryStore
from durable_core.stores.sqlite import SQLiteStore

__all__ = ["InvocationEnd", "MemoryStore", "SQLiteStore", "Store"]
