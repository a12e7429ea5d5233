"""A structlog logger that is silent while the code around it is being replayed.

A durable function runs from the top on every invocation; without this, a line logged
before a 7-day wait would appear once per resume. Lines are bound to the execution id,
the current operation and attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog


class ReplayAwareLogger:
    """Proxy for a structlog bound logger that drops lines while ``is_replaying()``."""

    __slots__ = ("_is_replaying", "_logger")

    def __init__(self, logger: Any, is_replaying: Callable[[], bool]) -> None:
        self._logger = logger
        self._is_replaying = is_replaying

    @classmethod
    def for_execution(
        cls, execution_id: str, is_replaying: Callable[[], bool]
    ) -> ReplayAwareLogger:
        """A logger bound to ``execution_id``."""
        return cls(structlog.get_logger("durable").bind(execution_id=execution_id), is_replaying)

    def bind(self, **values: Any) -> ReplayAwareLogger:
        """A logger with more bound values, still replay-aware."""
        return ReplayAwareLogger(self._logger.bind(**values), self._is_replaying)

    def _emit(self, level: str, event: str, values: dict[str, Any]) -> None:
        if not self._is_replaying():
            getattr(self._logger, level)(event, **values)

    def debug(self, event: str, **values: Any) -> None:
        """Log at debug level unless replaying."""
        self._emit("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        """Log at info level unless replaying."""
        self._emit("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        """Log at warning level unless replaying."""
        self._emit("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        """Log at error level unless replaying."""
        self._emit("error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        """Log an error with the current exception unless replaying."""
        self._emit("exception", event, values)
