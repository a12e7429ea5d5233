"""Journal stores: the Protocol and its backends (memory and SQLite here; DynamoDB in
``durable_core.stores.dynamodb``, imported on its own so boto3 stays unloaded)."""

from durable_core.stores.base import InvocationEnd, JournalStore, SchedulingStore, Store
from durable_core.stores.memory import MemoryStore
from durable_core.stores.sqlite import SQLiteStore

__all__ = [
    "InvocationEnd",
    "JournalStore",
    "MemoryStore",
    "SQLiteStore",
    "SchedulingStore",
    "Store",
]
