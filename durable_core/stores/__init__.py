"""Journal stores: the Protocol and its backends (memory, SQLite; DynamoDB in aws_lambda)."""

from durable_core.stores.base import InvocationEnd, Store
from durable_core.stores.memory import MemoryStore

__all__ = ["InvocationEnd", "MemoryStore", "Store"]
