"""A batch branch's closable view of the journal, and the signal that stops a given-up branch.

Invariants:
- A :class:`BranchJournal` shares every bit of state with the journal it wraps (records,
  lease, lock, cancellation flag): it is a view, not a copy.
- Once its gate (or an enclosing branch's gate) is closed, the view refuses the entry
  points every operation goes through — reading a record, writing, completing a callback,
  taking the execution's cancellation — by raising :class:`BranchCancelled`. Gates are
  closed only under the journal's lock, and writes are checked under it, so a write either
  happens before the batch's decision or not at all.
"""

from __future__ import annotations

from typing import Any

from durable_core.journal import Journal
from durable_core.records import CallbackOutcome, Operation, StopKind


class BranchCancelled(BaseException):
    """Signal: the batch this branch belongs to was decided without it; the branch stops.

    Raised by the branch's next operation or checkpoint write after the decision. Derived
    from ``BaseException`` so user code does not swallow it. User code must not catch it.
    """


class Gate:
    """Open while a branch (and every enclosing branch) may still write."""

    __slots__ = ("closed", "parent")

    def __init__(self, parent: Gate | None) -> None:
        self.closed = False
        self.parent = parent

    def is_closed(self) -> bool:
        """True once this gate or an enclosing one was closed."""
        gate: Gate | None = self
        while gate is not None:
            if gate.closed:
                return True
            gate = gate.parent
        return False

    def check(self) -> None:
        """Raise BranchCancelled if the branch may no longer write."""
        if self.is_closed():
            raise BranchCancelled("the batch was decided without this branch; it stops here")


class BranchJournal(Journal):
    """A branch's view of the shared journal: the same state, but closable.

    Every attribute read or write goes to the shared journal (``__getattr__`` /
    ``__setattr__``), so ids, records, the lease and the cancellation flag stay one. Only
    the entry points an operation goes through first are guarded: reading a record
    (``get``, the start of every operation), writing (``checkpoint``, ``complete_callback``)
    and taking the execution's cancellation (``pending_stop``).
    """

    _base: Journal
    _gate: Gate

    def __init__(self, base: Journal, gate: Gate) -> None:  # shares base's state instead
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_gate", gate)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._base, name, value)

    def get(self, op_id: str) -> Operation | None:
        self._gate.check()
        return self._base.get(op_id)

    def checkpoint(self, *ops: Operation) -> None:
        with self._base.lock:
            self._gate.check()
            self._base.checkpoint(*ops)

    def complete_callback(self, op: Operation, outcome: CallbackOutcome) -> Operation:
        with self._base.lock:
            self._gate.check()
            return self._base.complete_callback(op, outcome)

    def pending_stop(self) -> tuple[StopKind, str] | None:
        self._gate.check()
        return self._base.pending_stop()
