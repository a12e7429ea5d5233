"""A batch's result: the text its decision records, and the :class:`BatchResult` read back.

Invariants:
- The value ``parallel`` / ``map`` returns is always the one read back from the recorded
  text (as AWS's SDK round-trips it), so the first run and every replay return the same.
- Without a ``serializer`` the text is AWS's BatchResult form
  (:mod:`~durable_core.operations._batch_text`); a branch value in it is read back by the
  branch's type (or handed as decoded when an ``item_serializer`` owns its form). With a
  ``serializer`` the text is what it makes of the whole :class:`BatchResult`, and what it
  reads back must be one.
- Replay checks the record against the code: a branch index past the branches the code
  has, or a NESTED branch recorded under another name, is a NonDeterminismError.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from durable_core.errors import CorruptRecordError, PayloadTooLargeError, SerializationError
from durable_core.operations._batch_text import Entry, Recorded, dumps, loads, summary
from durable_core.operations._batch_types import BatchItem, BatchItemStatus, BatchResult, Nesting
from durable_core.records import ErrorInfo, Operation, OperationStatus
from durable_core.replay import operation_id
from durable_core.serde import DEFAULT_MAX_BYTES, Serializer, dump_value, load_value

if TYPE_CHECKING:
    from durable_core.operations._batch_run import BatchRun


class BatchOutcome:
    """How ``run``'s result is recorded and read back."""

    def __init__(self, run: BatchRun, serializer: Serializer | None) -> None:
        self.run = run
        self.serializer = serializer
        self.what = f"batch {run.name!r}"
        self.decided: Recorded | None = None
        """What :meth:`text` recorded as AWS's form (kept to skip re-reading it)."""

    # --- recording ------------------------------------------------------------------------

    def text(self, reason: Any) -> str:
        """The text the decision records (call under the journal's lock)."""
        run = self.run
        entries = [e for i in range(len(run.specs)) if (e := self._entry(i)) is not None]
        serde = run.root.serde
        recorded = Recorded(reason, entries, len(entries), frozenset())
        if self.serializer is not None:
            result = self._result(recorded)
            return dump_value(serde, result, None, what=self.what, serializer=self.serializer)
        text = dumps(entries, reason, self.what)
        limit = getattr(serde, "max_bytes", DEFAULT_MAX_BYTES)
        if len(text.encode()) <= limit:
            self.decided = recorded
            return text
        if run.nesting is Nesting.FLAT:
            raise PayloadTooLargeError(
                f"{self.what}: its result is {len(text.encode())} bytes, over the limit of "
                f"{limit}, and a FLAT batch has no branch records to read it back from. Use "
                "Nesting.NESTED, or return smaller values (a reference to stored data).",
                operation=self.what,
            )
        return summary(entries, reason, run.sub_type)

    def _entry(self, i: int) -> Entry | None:
        run = self.run
        status = run.status[i]
        if status is BatchItemStatus.SUCCEEDED:
            return Entry(i, status, value=self._plain(i, run.texts[i] or "null"))
        if status is BatchItemStatus.FAILED:
            error = run.errors[i] or ErrorInfo(type="Error", message="")
            return Entry(i, status, error=error.model_copy(update={"traceback": None}))
        if run.started[i]:
            return Entry(i, BatchItemStatus.STARTED)
        return None  # never started: not listed, as AWS's SDK lists it

    # --- reading back ---------------------------------------------------------------------

    def replay(self, rec: Operation) -> BatchResult[Any]:
        """The result a finished batch's record gives (its branches' code never runs)."""
        run = self.run
        if rec.status is not OperationStatus.SUCCEEDED:
            raise CorruptRecordError(
                f"{self.what} of execution {run.journal.execution_id!r} is recorded "
                f"{rec.status.value} without a cancellation; the journal was altered"
            )
        run._check_count(rec)
        assert run.slot is not None
        if run.nesting is Nesting.NESTED:
            for i, spec in enumerate(run.specs):
                branch = run.root.get(operation_id(run.slot.id, i + 1))
                if branch is not None and branch.name != spec.name:
                    raise run.diverged(
                        f"{run.slot.position}.{i + 1}",
                        expected=f"branch {branch.name!r}",
                        found=f"branch {spec.name!r}",
                    )
        return self.read(rec.result or "")

    def recorded_now(self, text: str) -> BatchResult[Any]:
        """The result :meth:`text` just recorded as ``text``: built from what was encoded
        when that is the same as reading it back (JSON values by their branch texts), else
        read back from the text."""
        decided = self.decided
        if decided is not None and self.run.item_serializer is None:
            return self._result(decided)
        return self.read(text)

    def read(self, text: str) -> BatchResult[Any]:
        """The :class:`BatchResult` recorded as ``text``."""
        if self.serializer is not None:
            value = load_value(
                self.run.root.serde, text, None, what=self.what, serializer=self.serializer
            )
            if not isinstance(value, BatchResult):
                raise SerializationError(
                    f"{self.what}: its serializer read back a {type(value).__name__}, not the "
                    "BatchResult it was given",
                    operation=self.what,
                )
            return value
        try:
            recorded = loads(text)
        except ValueError as exc:
            raise CorruptRecordError(
                f"{self.what} of execution {self.run.journal.execution_id!r}: {exc}"
            ) from exc
        return self._result(recorded)

    def _result(self, recorded: Recorded) -> BatchResult[Any]:
        run = self.run
        n = len(run.specs)
        entries = recorded.entries
        if entries is None:
            started = min(recorded.started_total, n)
            entries = [self._from_branch(i, recorded.left_started) for i in range(started)]
        by_index = {e.index: e for e in entries}
        if recorded.started_total > n or (by_index and max(by_index) >= n):
            assert run.slot is not None
            raise run.diverged(
                run.slot.position,
                expected=f"{run.sub_type} {run.name!r} with more than {n} branch(es)",
                found=f"{run.sub_type} {run.name!r} with {n} branch(es)",
            )
        items: list[BatchItem[Any]] = []
        for i, spec in enumerate(run.specs):
            e = by_index.get(i)
            if e is None:
                items.append(BatchItem(index=i, name=spec.name, status=BatchItemStatus.NOT_STARTED))
                continue
            value = self._value(i, e.value) if e.status is BatchItemStatus.SUCCEEDED else None
            items.append(
                BatchItem(index=i, name=spec.name, status=e.status, value=value, error=e.error)
            )
        return BatchResult(name=run.name, items=items, completion_reason=recorded.reason)

    def _value(self, i: int, plain: Any) -> Any:
        run = self.run
        if run.item_serializer is not None:
            return plain  # the item serializer's value, as the record decodes it
        text = run.texts[i]  # this invocation's (or its journal's): the same JSON as ``plain``
        text = json.dumps(plain) if text is None else text
        return run.root.serde.load(text, run.specs[i].result_type, what=run.branch_what(i))

    def _plain(self, i: int, text: str) -> Any:
        """Branch ``i``'s recorded text as the batch's record holds it (see the module)."""
        run = self.run
        if run.item_serializer is None:
            return json.loads(text)
        return load_value(
            run.root.serde, text, None, what=run.branch_what(i), serializer=run.item_serializer
        )

    def _from_branch(self, i: int, left_started: frozenset[int]) -> Entry:
        """Branch ``i`` of a summarized result, from its own record."""
        run = self.run
        if i in left_started:
            return Entry(i, BatchItemStatus.STARTED)
        assert run.slot is not None
        rec = run.root.get(operation_id(run.slot.id, i + 1))
        if rec is not None and rec.status is OperationStatus.SUCCEEDED:
            return Entry(i, BatchItemStatus.SUCCEEDED, value=self._plain(i, rec.result or "null"))
        if rec is not None and rec.status is OperationStatus.FAILED and rec.error is not None:
            error = rec.error.model_copy(update={"traceback": None})
            return Entry(i, BatchItemStatus.FAILED, error=error)
        raise CorruptRecordError(
            f"{self.what} of execution {run.journal.execution_id!r} records branch "
            f"{run.specs[i].name!r} as finished, but its own record is "
            f"{rec.status.value if rec is not None else 'missing'}; the journal was altered"
        )
