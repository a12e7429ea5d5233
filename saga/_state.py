"""``SagaState``: what a running saga knows about itself, and its transitions.

One object per saga run (a nested saga has its own), owned by :class:`saga.SagaContext` and
handed to the code that plans and settles its steps (:mod:`saga._plan`,
:mod:`saga.parallel`), so nothing reaches into another object's attributes. It holds no
durable context: it is plain data, rebuilt on every replay from the steps as they are
declared and settled, and it serves a sync or an async runner alike.

Invariants:
- ``names`` holds every name declared in this saga (steps, nested sagas, parallel groups);
  a name is taken only after its declaration passed every check.
- ``pivot`` is set when the pivot step is declared (before it runs); ``pivot_done`` once it
  succeeded. Neither is ever unset.
- ``stack`` holds the undo entries of settled steps, in the order they were settled: only
  recorded values (results, errors, attempt counts), never live state.
- ``failure`` is the last failure of a step, parallel group or nested saga (the error and
  its path), so a rollback can name the failed step.
- A step's path is ``<saga path>/<name>`` (just ``<name>`` at the top level); its
  idempotency key is ``"<execution id>:<path>"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saga._records import PATH_SEPARATOR
from saga.compensation import Undo
from saga.errors import SagaDefinitionError
from saga.options import StepOptions
from saga.policy import StepKind, default_compensation_policy
from saga.rules import check_child, check_step, check_step_name, resolve_kind


@dataclass(eq=False)
class SagaState:
    """The declaration and undo state of one saga run (see the module docstring)."""

    saga: str
    """The saga's name."""
    execution_id: str
    path: str = ""
    """The saga's own path: ``""`` at the top level, the nested saga's path inside another."""
    names: set[str] = field(default_factory=set)
    stack: list[Undo] = field(default_factory=list)
    pivot: str | None = None
    """The name of the pivot step, once it is declared."""
    pivot_done: bool = False
    """True once the pivot step succeeded: the saga can no longer roll back."""
    failure: tuple[BaseException, str] | None = None
    is_async: bool = False
    """The saga runs on the async context (``AsyncSagaContext``): its actions and
    compensations may be ``async def``, and its nested sagas are async."""

    @property
    def nested(self) -> bool:
        """True for a saga run as a step of another (``s.child``)."""
        return bool(self.path)

    def child_path(self, name: str) -> str:
        """The saga path of this saga's step (or group, or nested saga) ``name``."""
        return f"{self.path}{PATH_SEPARATOR}{name}" if self.path else name

    def key(self, path: str) -> str:
        """The idempotency key of the step at ``path``."""
        return f"{self.execution_id}:{path}"

    # --- declarations ----------------------------------------------------------------------

    def check_name(self, name: object) -> None:
        """Refuse a name that is invalid or already taken in this saga."""
        check_step_name(self.saga, name, self.names)

    def claim(self, name: str) -> str:
        """Take a name whose declaration passed its checks; return its path."""
        self.names.add(name)
        return self.child_path(name)

    def declare_step(self, name: str, action: object, options: StepOptions) -> StepKind:
        """Check a sequential step's declaration and take its name; return its kind.

        A pivot is recorded as declared here, before it runs.

        Raises:
            SagaDefinitionError: the declaration is invalid (nothing is taken).
            SerializationError: the step's result type cannot cross the journal.
        """
        self.check_name(name)
        check_step(
            self.saga,
            name,
            action,
            options,
            pivot=self.pivot,
            nested=self.nested,
            is_async=self.is_async,
        )
        kind = resolve_kind(options, pivot=self.pivot)
        self.claim(name)
        if kind is StepKind.PIVOT:
            self.pivot = name
        return kind

    def declare_child(self, name: str, child: object) -> str:
        """Check the nested saga ``child`` and take its name; return its path.

        Raises:
            SagaDefinitionError: not a saga of this saga's kind, a bad name, or the pivot
                is already declared.
        """
        check_child(self.saga, name, child, is_async=self.is_async)
        self.check_name(name)
        if self.pivot is not None:
            raise SagaDefinitionError(
                f"saga {self.saga!r}: the nested saga {name!r} is declared after the pivot "
                f"{self.pivot!r}; a nested saga is compensatable and every step after the "
                "pivot must be retriable. Run it before the pivot, or make its work a "
                "retriable step."
            )
        return self.claim(name)

    # --- outcomes --------------------------------------------------------------------------

    def push(self, undo: Undo) -> None:
        """Register a settled step's undo: a rollback from now on compensates it."""
        self.stack.append(undo)

    def push_child(self, path: str, child: SagaState) -> None:
        """Register a nested saga that completed: compensated as one unit, its own stack."""
        self.push(
            Undo(
                path,
                self.key(path),
                None,
                default_compensation_policy(),
                children=tuple(child.stack),
            )
        )

    def record_failure(self, exc: BaseException, path: str) -> None:
        """Remember the error a step (or group, or nested saga) at ``path`` failed with."""
        self.failure = (exc, path)

    def mark_pivot_done(self) -> None:
        """The pivot succeeded: the saga can no longer roll back."""
        self.pivot_done = True

    def failed_step(self, exc: BaseException) -> str | None:
        """The path of the step that failed with ``exc``, if it was a step's failure."""
        if self.failure is not None and self.failure[0] is exc:
            return self.failure[1]
        return None

    @property
    def undo_paths(self) -> tuple[str, ...]:
        """The paths a rollback would compensate now, in forward order."""
        return tuple(u.step for entry in self.stack for u in reversed(entry.flatten()))
