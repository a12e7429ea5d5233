"""``ctx.invoke``: start another durable function as a child execution and await its result.

Journal shape: one CHAINED_INVOKE operation (sub-type ``ChainedInvoke``) in the caller's
scope, named after the function (or ``name=``), carrying the child's execution id and the
payload. The child is an ordinary execution of the same store (``parent_execution_id`` set),
run by the normal worker path; when it ends the store wakes the parent.

Invariants:
- The child's id is derived from the parent's id and the operation id, so it is the same on
  every replay, and it is recorded (STARTED) *before* the child is started. A crash between
  the two finds the record and starts the same id again; ``Runtime.start`` is idempotent by
  id, so there is never a second child.
- While the child runs the parent suspends with no wake time (the child's end wakes it).
- The child's end is recorded once: SUCCEEDED with its result text, or FAILED / CANCELLED
  with its error; replay returns the value or raises the same :class:`InvokeError` without
  looking at the child again.
- A cancellation delivered to the parent while it waits is passed on to the child.
- Bad calls (an unknown name, a plain function, an unserializable payload, a malformed
  tenant id) raise before anything is recorded.
- The payload and the result are the text other programs write and read
  (``serde.external``: on Lambda's durable service ``json.dumps`` text, as AWS's SDK sends
  it), or a ``payload_serializer``'s / ``serializer``'s raw text.
- A tenant id is recorded on the operation and passed to the child (``Execution.tenant_id``
  on the self-hosted stores, ``ChainedInvokeOptions.TenantId`` on the service).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from durable_core.errors import (
    ExecutionCancelledError,
    ExecutionNotRunningError,
    ExecutionTerminatedError,
    FunctionNotFoundError,
    InvokeError,
    SuspendExecution,
    ValidationError,
)
from durable_core.function import DurableFunction, unwrap_durable
from durable_core.operations._core import InstantOp
from durable_core.records import (
    MAX_ACTOR_LENGTH,
    MAX_REASON_LENGTH,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    StopKind,
)
from durable_core.replay import check_name
from durable_core.serde import Serializer, check_type, dump_value, external, load_value

if TYPE_CHECKING:
    from durable_core.journal import Journal
    from durable_core.replay import Scope, Slot
    from durable_core.stores.base import JournalStore

T = TypeVar("T")

SUB_TYPE = "ChainedInvoke"
_MAX_ID = 200
_TENANT_ID = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
"""The durable service's ``ChainedInvokeOptions.TenantId``: 1-256 of these characters."""


def check_tenant_id(tenant_id: object, *, what: str) -> str | None:
    """``tenant_id`` if it is ``None`` or a tenant id the durable service accepts.

    Raises:
        ValidationError: anything else, naming the operation (nothing recorded).
    """
    if tenant_id is None or (isinstance(tenant_id, str) and _TENANT_ID.fullmatch(tenant_id)):
        return tenant_id
    raise ValidationError(
        f"{what}: tenant_id must be 1-256 characters of letters, digits and ._:/=+-@ or "
        f"space (the durable execution service's rule), got {tenant_id!r:.80}"
    )


class _Services(Protocol):
    """What ``invoke`` needs from the runtime (``Journal.services``)."""

    store: JournalStore

    def resolve(self, name: str) -> DurableFunction[Any, Any]: ...

    def start(
        self,
        fn: DurableFunction[Any, Any] | Any | str,
        event: Any = None,
        *,
        execution_id: str | None = None,
        parent_execution_id: str | None = None,
        tenant_id: str | None = None,
    ) -> Execution: ...

    def cancel(
        self, execution_id: str, reason: str | None = ..., *, actor: str | None = ...
    ) -> Execution: ...

    def terminate(
        self, execution_id: str, reason: str, *, actor: str | None = ...
    ) -> Execution: ...


def child_execution_id(parent_id: str, op_id: str) -> str:
    """The deterministic id of the execution ``invoke`` starts at operation ``op_id``."""
    prefix = parent_id
    if len(prefix) + 13 > _MAX_ID:  # keep within the 200-character id limit when nesting
        prefix = hashlib.blake2b(parent_id.encode(), digest_size=16).hexdigest()
    return f"{prefix}-{op_id[:12]}"


def _need(services: _Services | None) -> _Services:
    if services is None:
        raise ValidationError(
            "invoke needs a runtime to start the child execution; run the function through "
            "durable_core.Runtime (or the testing kit)"
        )
    return services


def _resolve(services: _Services | None, function: object) -> DurableFunction[Any, Any]:
    if isinstance(function, str):
        return _need(services).resolve(function)  # FunctionNotFoundError: nothing recorded
    target = unwrap_durable(function)
    if not isinstance(target, DurableFunction):
        raise ValidationError(
            f"invoke needs a durable function (decorated with @durable) or its registered "
            f"name, got {type(function).__name__}"
        )
    return target


def invoke_error(op: Operation, function: str) -> InvokeError:
    """Rebuild the InvokeError recorded in ``op``: the child's error message as it is (as
    AWS's SDK raises it), its type and data as attributes."""
    err = op.error or ErrorInfo(type="Unknown", message="")
    verb = "was cancelled" if op.status is OperationStatus.CANCELLED else "failed"
    return InvokeError(
        err.message or f"invoked function {function!r} {verb}",
        function=function,
        error_type=err.type,
        data=err.data,
        execution_id=op.child_execution_id,
    )


class InvokeOp(InstantOp[T]):
    """``ctx.invoke``: start (or replay) a child execution of ``function``; its result.

    Raises:
        FunctionNotFoundError: ``function`` is a name no runtime knows (nothing recorded).
        ValidationError: ``function`` is not a durable function (nothing recorded).
        InvokeError: the child execution failed or was cancelled (the same on replay).
    """

    op_type = OperationType.CHAINED_INVOKE

    def __init__(
        self,
        scope: Scope,
        function: DurableFunction[Any, T] | str,
        payload: Any,
        *,
        name: str | None,
        result_type: Any,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> None:
        journal = scope.journal
        self.services = cast("_Services | None", journal.services)
        try:
            fn = self.fn = _resolve(self.services, function)
        except FunctionNotFoundError as e:  # a worker without it parks the execution
            raise journal.park(e) from None
        super().__init__(
            scope, check_name(name if name is not None else fn.name, "invoke"), SUB_TYPE
        )
        self.type_ = result_type if result_type is not None else fn.result_type
        self.what = f"invoke {self.name!r}"
        self.serializer = serializer
        self.tenant_id = tenant_id
        if serializer is None:
            check_type(self.type_, what=self.what)  # fn's own types were checked when made
        serde, about = external(journal.serde), f"payload of {self.what}"
        # Validated against the child's input type now, so a bad payload records nothing.
        if payload_serializer is not None:
            self.text = dump_value(serde, payload, Any, what=about, serializer=payload_serializer)
            self.event = serde.load(self.text, fn.input_type, what=about)
        else:
            self.event = serde.load(serde.dump(payload, Any, what=about), fn.input_type, what=about)
            self.text = serde.dump(self.event, fn.input_type, what=about)

    def begin(self) -> Slot:
        journal = self.journal
        waiting = journal.get(self.scope.peek_id())
        try:
            return super().begin()
        except ExecutionCancelledError as exc:
            if (
                waiting is not None
                and waiting.child_execution_id
                and not waiting.status.is_terminal
            ):
                _stop_child(
                    _need(self.services), waiting.child_execution_id, exc, journal.execution_id
                )
            raise

    def finished(self, rec: Operation) -> bool:
        return rec.status.is_terminal

    def replay(self, rec: Operation) -> T:
        if rec.status is OperationStatus.SUCCEEDED:
            return self._load(rec.result)
        raise invoke_error(rec, self.fn.name)

    def _load(self, text: str | None) -> T:
        if text is None and self.serializer is not None:
            return None  # type: ignore[return-value]  # the child returned nothing
        serde = external(self.journal.serde)
        return load_value(  # type: ignore[no-any-return]
            serde, text or "null", self.type_, what=self.what, serializer=self.serializer
        )

    def settle(self, slot: Slot) -> T:
        journal = self.journal
        rec = slot.recorded
        if rec is None:
            rec = Operation(
                id=slot.id,
                parent_id=slot.parent_id,
                type=OperationType.CHAINED_INVOKE,
                sub_type=SUB_TYPE,
                name=self.name,
                status=OperationStatus.STARTED,
                payload=self.text,
                started_at=journal.now(),
                child_execution_id=child_execution_id(journal.execution_id, slot.id),
                tenant_id=self.tenant_id,
            )
            journal.checkpoint(rec)  # recorded before the child exists: never two children
        child_id = rec.child_execution_id
        assert child_id is not None
        services = _need(self.services)
        child = services.start(
            self.fn,
            self.event,
            execution_id=child_id,
            parent_execution_id=journal.execution_id,
            tenant_id=rec.tenant_id,
        )
        if not child.status.is_terminal:
            child = services.store.get_execution(child_id)
        if not child.status.is_terminal:
            raise SuspendExecution(f"invoke {self.name!r}: waiting for execution {child_id!r}")
        return self._finish(rec, child)

    def _finish(self, rec: Operation, child: Execution) -> T:
        journal = self.journal
        now = journal.now()
        if child.status is ExecutionStatus.SUCCEEDED:
            text = child.result if child.result is not None else "null"
            value = self._load(text)
            journal.checkpoint(
                rec.evolve(status=OperationStatus.SUCCEEDED, result=text, ended_at=now)
            )
            return value
        raise _failed(journal, rec, child, self.fn.name)


def _failed(journal: Journal, rec: Operation, child: Execution, function: str) -> InvokeError:
    now = journal.now()
    err = child.error or ErrorInfo(type="Unknown", message=f"child ended {child.status.value}")
    if StopKind.of_error(err) is not None:  # that marker means "stopped at this operation"
        err = err.model_copy(update={"type": "durable_core.errors.ExecutionCancelledError"})
    status = (
        OperationStatus.CANCELLED
        if child.status is ExecutionStatus.CANCELLED
        else OperationStatus.FAILED
    )
    done = rec.evolve(status=status, error=err, ended_at=now)
    journal.checkpoint(done)
    return invoke_error(done, function)


def _stop_child(
    services: _Services, child_id: str, exc: ExecutionCancelledError, parent_id: str
) -> None:
    """Pass the parent's cancel (or terminate) on to the child it waits for.

    The reason and actor carry the parent's, cut to the bounds a request accepts (the
    parent's may already be at them). A child that finished, or already holds the most
    requests it records, is left as it is: the parent's stop goes on regardless.
    """
    reason = f"parent {exc.kind}: {exc.reason}"[:MAX_REASON_LENGTH]
    actor = f"parent execution {parent_id}"[:MAX_ACTOR_LENGTH]
    with contextlib.suppress(ExecutionNotRunningError, ValidationError):
        if isinstance(exc, ExecutionTerminatedError):
            services.terminate(child_id, reason, actor=actor)
        else:
            services.cancel(child_id, reason, actor=actor)
