"""The ``durable`` command line: run, inspect and signal executions, run a worker.

- :mod:`~durable_core.cli.commands` — the parser, shared plumbing, ``list``/``show`` (``main``).
- :mod:`~durable_core.cli.running` — ``run`` and ``worker``.
- :mod:`~durable_core.cli.signals` — callback, cancel, terminate, retry and fail commands.
- :mod:`~durable_core.cli.render` — how executions and journals are printed.
"""

from durable_core.cli.commands import DEFAULT_STORE, STORE_ENV, command_name, main, open_store

__all__ = ["DEFAULT_STORE", "STORE_ENV", "command_name", "main", "open_store"]
