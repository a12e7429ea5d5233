"""``DurableContext``: what a sync durable function receives. One thin method per operation.

Each method builds its operation through :class:`~durable_core._context_base.ContextBase`
(a bad call raises at once and records nothing) and runs it with the sync driver
(:func:`~durable_core.operations._core.run_sync`), which replays the stored outcome or
executes and records it. :class:`~durable_core.async_context.AsyncDurableContext` is the
same surface, awaited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload
from uuid import UUID

from durable_core._context_base import ContextBase
from durable_core.operations._core import run_sync
from durable_core.operations.batch import Nesting
from durable_core.operations.callback import Callback, CallbackOp
from durable_core.operations.step import StepContext
from durable_core.operations.wait import MAX_WAIT
from durable_core.retry import StepConfig
from durable_core.serde import Serializer

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from durable_core.function import DurableFunction
    from durable_core.operations.batch import BatchResult, CompletionPolicy

T = TypeVar("T")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - conventional name for an item type


class DurableContext(ContextBase):
    """The handle a durable function uses for every operation that must survive a crash.

    Code between operations must be deterministic: put randomness, the current time and
    I/O inside steps, and return values from steps instead of mutating outer variables.
    """

    # --- operations -----------------------------------------------------------------------

    def step(
        self, name: str, fn: Callable[[StepContext], T], config: StepConfig | None = None
    ) -> T:
        """Run ``fn`` once and checkpoint its result; retry it per ``config.retry``.

        ``fn`` receives a :class:`StepContext` with the attempt number and an idempotency
        key that is stable across retries and replays.

        Raises:
            StepFailedError: the retry policy gave up (the same error on every replay).
        """
        return run_sync(self._step(name, fn, config))

    def wait(self, name: str, duration: timedelta | float) -> None:
        """Suspend durably for ``duration`` (1 second to 1 year)."""
        run_sync(self._wait(name, duration))

    def create_callback(
        self,
        name: str,
        *,
        timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
        result_type: Any = Any,
        privileged: bool = False,
        serializer: Serializer | None = None,
    ) -> Callback[Any]:
        """Create a callback an external system completes with its token.

        Send ``callback.token`` out (from a step), then call ``callback.result()``.

        Args:
            name: the operation's name.
            timeout: how long to wait for a completion (none: without limit).
            heartbeat_timeout: how long a heartbeat keeps it alive.
            result_type: the type the payload is validated as (read as JSON).
            serializer: reads the payload instead: its ``deserialize`` is handed the raw
                text the caller sent (e.g. a pass-through, as AWS's SDK does by default).
            privileged: complete it only through your own API: the generic paths (``durable
                callback``, ``Runtime.send_callback_*``, the DynamoDB-mode webhook) refuse
                it with PrivilegedCallbackError whoever holds the token, and only
                ``Runtime.send_privileged_callback_success`` completes it. For decisions
                that must be validated and attributed (a saga's operator callback). Has no
                effect on Lambda's durable execution service, whose callback API cannot be
                refused (authorise it with IAM).

        Raises:
            ValidationError: a privileged callback with a heartbeat timeout (heartbeats
                come through the generic paths, which refuse it).
        """
        return run_sync(
            self._callback(
                name,
                timeout=timeout,
                heartbeat_timeout=heartbeat_timeout,
                result_type=result_type,
                privileged=privileged,
                serializer=serializer,
            )
        )

    def wait_for_callback(
        self,
        name: str,
        submitter: Callable[[str, StepContext], object],
        *,
        timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
        result_type: Any = Any,
        submit_config: StepConfig | None = None,
        serializer: Serializer | None = None,
    ) -> Any:
        """Create a callback, hand its token to ``submitter`` in a step, wait for the result.

        Runs as a child context named ``name`` (sub-type ``WaitForCallback``) holding the
        callback (named ``name + " create callback id"``) and the submit step (``name + "
        submitter"``), as AWS's SDK names them, so ``name`` may have at most 237 characters.
        The context records the caller's raw text; the value is read from it as
        :meth:`create_callback` reads it (``result_type``, or ``serializer`` handed the raw
        text).

        Raises:
            CallbackFailedError: the caller reported failure (its message is the caller's).
            CallbackTimeoutError: the timeout or heartbeat deadline passed first.
            CallbackSubmitterError: the submitter step failed for good.
        """

        def body(
            child: DurableContext,
            cb_op: CallbackOp,
            submit_name: str,
            submit_for: Callable[[str], Callable[[StepContext], Any]],
            finish: Callable[[Callback[Any]], Any],
        ) -> Any:
            cb = run_sync(cb_op)
            child.step(submit_name, submit_for(cb.token), submit_config)
            return finish(cb)

        return run_sync(
            self._wait_for_callback(
                name,
                submitter,
                timeout=timeout,
                heartbeat_timeout=heartbeat_timeout,
                result_type=result_type,
                body=body,
                serializer=serializer,
            )
        )

    def wait_for_condition(
        self,
        name: str,
        check: Callable[[S, StepContext], S],
        *,
        initial_state: S,
        done: Callable[[S], bool],
        wait: WaitBaseT | None = None,
        timeout: timedelta | float = MAX_WAIT,
        state_type: Any = Any,
        max_attempts: int | None = None,
        serializer: Serializer | None = None,
    ) -> S:
        """Poll ``check`` durably until ``done(state)``; the state is checkpointed per poll.

        Args:
            check: ``check(state, step_ctx) -> new_state``, run as a step per poll.
            initial_state: the state of the first poll.
            done: true when polling should stop.
            wait: a tenacity ``wait_*`` giving the delay after poll n (default 5 s x 1.5,
                up to 5 minutes).
            timeout: the deadline from the first poll; then ConditionTimeoutError.
        """
        return run_sync(
            self._condition(
                name,
                check,
                initial_state=initial_state,
                done=done,
                wait=wait,
                timeout=timeout,
                state_type=state_type,
                max_attempts=max_attempts,
                serializer=serializer,
            )
        )

    def run_in_child_context(
        self,
        name: str,
        fn: Callable[[DurableContext], T],
        *,
        result_type: Any = None,
        serializer: Serializer | None = None,
    ) -> T:
        """Run ``fn`` in a scope with its own id space; its result is checkpointed as one."""
        return run_sync(self._child_context(name, fn, result_type, serializer))  # type: ignore[no-any-return]

    def parallel(
        self,
        branches: Sequence[Callable[[DurableContext], T]],
        *,
        name: str = "parallel",
        max_concurrency: int | None = None,
        completion: CompletionPolicy | None = None,
        branch_names: Sequence[str] | None = None,
        nesting: Nesting = Nesting.NESTED,
        serializer: Serializer | None = None,
        item_serializer: Serializer | None = None,
    ) -> BatchResult[T]:
        """Run ``branches`` concurrently, each ``branch(ctx)`` in its own child scope.

        Branch ``i`` gets ids derived from its index, so replay is the same whatever finished
        first; a finished branch never runs again. A failing branch does not raise here:
        inspect the result or call ``raise_if_failed()``. See docs/composition.md.

        Args:
            branches: callables taking a DurableContext; each value is typed by its
                branch's return annotation.
            name: the batch's operation name.
            max_concurrency: branches in flight at once; a waiting branch keeps its slot
                (default: no limit; at most 32 threads run bodies at once).
            completion: when the batch is done (default ``CompletionPolicy.all_successful()``:
                fail fast on the first failure).
            branch_names: one name per branch (default ``parallel-branch-{i}``).
            nesting: ``Nesting.NESTED`` (each branch records a context of its own) or
                ``Nesting.FLAT`` (branches record nothing of their own).
            serializer: the text form of the whole BatchResult the batch records.
            item_serializer: the text form of each branch's value.

        Returns:
            A BatchResult: per-branch status, value or error, and the completion reason.
            No branches give an empty result (ALL_COMPLETED).

        Raises:
            ValidationError: a non-callable branch, ``max_concurrency`` < 1, bad names, a
                bad nesting or serializer, or a policy that cannot be met (nothing
                recorded).
            ExecutionCancelledError: the execution was cancelled inside a branch.
        """
        return run_sync(
            self._parallel(
                branches,
                name=name,
                max_concurrency=max_concurrency,
                completion=completion,
                branch_names=branch_names,
                nesting=nesting,
                serializer=serializer,
                item_serializer=item_serializer,
            )
        )

    def map(
        self,
        items: Sequence[I],
        fn: Callable[[DurableContext, I, int], T],
        *,
        name: str = "map",
        max_concurrency: int | None = None,
        completion: CompletionPolicy | None = None,
        item_name: Callable[[I, int], str] | None = None,
        nesting: Nesting = Nesting.NESTED,
        serializer: Serializer | None = None,
        item_serializer: Serializer | None = None,
    ) -> BatchResult[T]:
        """Apply ``fn(ctx, item, index)`` to every item concurrently, each in a child scope.

        The same rules and options as :meth:`parallel`; items are named ``map-item-{i}``
        unless ``item_name(item, i)`` says otherwise. ``items`` must be ordered (not a set);
        no items give an empty result. Values are typed by ``fn``'s return annotation.

        Raises:
            ValidationError: a non-callable ``fn``, unordered items, ``max_concurrency`` < 1,
                bad names, a bad nesting or serializer, or a policy that cannot be met
                (nothing recorded).
            ExecutionCancelledError: the execution was cancelled inside an item.
        """
        return run_sync(
            self._map(
                items,
                fn,
                name=name,
                max_concurrency=max_concurrency,
                completion=completion,
                item_name=item_name,
                nesting=nesting,
                serializer=serializer,
                item_serializer=item_serializer,
            )
        )

    @overload
    def invoke(
        self,
        function: DurableFunction[Any, T],
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> T: ...
    @overload
    def invoke(
        self,
        function: str,
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> Any: ...
    def invoke(
        self,
        function: DurableFunction[Any, T] | str,
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> T | Any:
        """Start another durable function as a child execution; await its result.

        The child's id is recorded before it starts, so a crash never starts it twice; the
        caller suspends until the child ends (the store wakes it).

        Args:
            function: a ``@durable`` function or the name of one registered with the runtime.
            payload: the child's input event (validated against its input type).
            name: the operation name (default: the function's name).
            result_type: the type of the result (default: the child's return annotation).
            serializer: reads the result instead: its ``deserialize`` is handed the raw
                text the child's execution recorded.
            payload_serializer: writes the payload instead: its ``serialize`` text is
                recorded and sent as it is (it must be JSON the child reads as its event).
            tenant_id: the tenant to invoke the function for (1-256 characters of
                ``[a-zA-Z0-9._:/=+-@ ]``): on Lambda's durable service sent as
                ``ChainedInvokeOptions.TenantId``; on the self-hosted stores recorded on the
                operation and on the child execution (``Execution.tenant_id``).

        Raises:
            FunctionNotFoundError: a name this runtime does not have (nothing recorded;
                the execution is parked until a worker that has it is asked to retry).
            InvokeError: the child failed or was cancelled (the same on every replay); its
                message is the child's error message, as AWS's SDK raises it.
        """
        return run_sync(
            self._invoke(
                function,
                payload,
                name,
                result_type,
                serializer=serializer,
                payload_serializer=payload_serializer,
                tenant_id=tenant_id,
            )
        )

    # --- replay-safe values ------------------------------------------------------------------

    def now(self, name: str = "now") -> datetime:
        """The current time (UTC), recorded once as the step ``name``: the same on replay.

        Use it instead of ``datetime.now()`` in code between operations. Each call is an
        operation of its own (a position in the journal).
        """
        return run_sync(self._now(name))

    def random(self, name: str = "random") -> float:
        """A random float in [0, 1) from the OS's generator, recorded once as a step."""
        return run_sync(self._random(name))

    def uuid4(self, name: str = "uuid4") -> UUID:
        """A random UUID (version 4), recorded once as a step: the same on replay."""
        return run_sync(self._uuid4(name))
