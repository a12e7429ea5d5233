"""``DurableContext``: what a durable function receives. One thin method per operation.

Each method validates its arguments (a bad call raises at once and records nothing),
then hands over to the module in :mod:`durable_core.operations` that replays the stored
outcome or executes and records it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

import tenacity

from durable_core.errors import ValidationError
from durable_core.logging import ReplayAwareLogger
from durable_core.operations.callback import Callback, create_callback
from durable_core.operations.child import run_child
from durable_core.operations.condition import run_condition
from durable_core.operations.step import StepContext, run_step
from durable_core.operations.wait import MAX_WAIT, check_duration, run_wait
from durable_core.replay import MAX_NAME_LENGTH, Journal, Scope, check_name
from durable_core.retry import StepConfig

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from durable_core.function import DurableFunction
    from durable_core.operations.batch import BatchResult, CompletionPolicy

T = TypeVar("T")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - conventional name for an item type

_DEFAULT_STEP = StepConfig()
_SUBMIT = "-submit"
"""Suffix of the submit step's name in ``wait_for_callback``."""


class DurableContext:
    """The handle a durable function uses for every operation that must survive a crash.

    Code between operations must be deterministic: put randomness, the current time and
    I/O inside steps, and return values from steps instead of mutating outer variables.
    """

    def __init__(self, journal: Journal, scope: Scope) -> None:
        self._journal = journal
        self._scope = scope
        self.logger = ReplayAwareLogger.for_execution(journal.execution_id, self._is_replaying)
        """A structlog logger bound to the execution; silent while replaying."""

    def _is_replaying(self) -> bool:
        return self._scope.replaying

    def _child(self, scope: Scope) -> DurableContext:
        return DurableContext(scope.journal, scope)

    @property
    def execution_id(self) -> str:
        """The id of the running execution."""
        return self._journal.execution_id

    @property
    def is_replaying(self) -> bool:
        """True while the code is re-running operations whose results are recorded."""
        return self._scope.replaying

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
        check_name(name, "step")
        _check_callable(fn, f"step {name!r}")
        return run_step(self._scope, self.logger, name, fn, config or _DEFAULT_STEP)

    def wait(self, name: str, duration: timedelta | float) -> None:
        """Suspend durably for ``duration`` (1 second to 1 year)."""
        check_name(name, "wait")
        run_wait(self._scope, name, check_duration(duration, f"wait {name!r}"))

    def create_callback(
        self,
        name: str,
        *,
        timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
        result_type: Any = Any,
        privileged: bool = False,
    ) -> Callback[Any]:
        """Create a callback an external system completes with its token.

        Send ``callback.token`` out (from a step), then call ``callback.result()``.

        Args:
            name: the operation's name.
            timeout: how long to wait for a completion (none: without limit).
            heartbeat_timeout: how long a heartbeat keeps it alive.
            result_type: the type the payload is validated as.
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
        check_name(name, "callback")
        if not isinstance(privileged, bool):
            raise ValidationError(f"callback {name!r}: privileged must be a bool")
        if privileged and heartbeat_timeout is not None:
            raise ValidationError(
                f"callback {name!r}: a privileged callback cannot have a heartbeat timeout; "
                "heartbeats come through the generic callback paths, which refuse it"
            )
        return create_callback(
            self._scope,
            name,
            timeout=_opt_duration(timeout, f"callback {name!r} timeout"),
            heartbeat_timeout=_opt_duration(heartbeat_timeout, f"callback {name!r} heartbeat"),
            result_type=result_type,
            privileged=privileged,
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
    ) -> Any:
        """Create a callback, hand its token to ``submitter`` in a step, wait for the result.

        Runs as a child context named ``name`` holding the callback and the submit step
        (named ``name + "-submit"``, so ``name`` may have at most 249 characters).
        """
        check_name(name, "callback")
        if len(name) > MAX_NAME_LENGTH - len(_SUBMIT):
            raise ValidationError(
                f"callback name {name[:40]!r}... must be at most "
                f"{MAX_NAME_LENGTH - len(_SUBMIT)} characters for wait_for_callback (its submit "
                f"step is named {_SUBMIT!r} after it, at most {MAX_NAME_LENGTH} characters)"
            )
        _check_callable(submitter, f"wait_for_callback {name!r} submitter")
        t = _opt_duration(timeout, f"callback {name!r} timeout")
        hb = _opt_duration(heartbeat_timeout, f"callback {name!r} heartbeat")

        def body(child: DurableContext) -> Any:
            cb = create_callback(
                child._scope, name, timeout=t, heartbeat_timeout=hb, result_type=result_type
            )
            token = cb.token
            child.step(f"{name}{_SUBMIT}", lambda sc: submitter(token, sc) and None, submit_config)
            return cb.result()

        return run_child(self, name, body, sub_type="WaitForCallback", result_type=result_type)

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
        check_name(name, "condition")
        _check_callable(check, f"condition {name!r} check")
        _check_callable(done, f"condition {name!r} done")
        return run_condition(
            self._scope,
            self.logger,
            name,
            check,
            initial_state=initial_state,
            done=done,
            wait=wait or tenacity.wait_exponential(multiplier=5, exp_base=1.5, max=300),
            timeout=check_duration(timeout, f"condition {name!r} timeout"),
            state_type=state_type,
        )

    def run_in_child_context(
        self, name: str, fn: Callable[[DurableContext], T], *, result_type: Any = None
    ) -> T:
        """Run ``fn`` in a scope with its own id space; its result is checkpointed as one."""
        check_name(name, "child context")
        _check_callable(fn, f"child context {name!r}")
        return run_child(self, name, fn, result_type=result_type)

    def parallel(
        self,
        branches: Sequence[Callable[[DurableContext], T]],
        *,
        name: str = "parallel",
        max_concurrency: int | None = None,
        completion: CompletionPolicy | None = None,
        branch_names: Sequence[str] | None = None,
    ) -> BatchResult[T]:
        """Run ``branches`` concurrently, each ``branch(ctx)`` in its own child scope.

        Branch ``i`` gets ids derived from its index, so replay is the same whatever finished
        first; a finished branch never runs again. A failing branch does not raise here:
        inspect the result or call ``raise_if_failed()``. See docs/composition.md.

        Args:
            branches: callables taking a DurableContext; each value is typed by its
                branch's return annotation.
            name: the batch's operation name.
            max_concurrency: branches running at once (default: all, at most 32).
            completion: when the batch is done (default ``CompletionPolicy.all_successful()``:
                fail fast on the first failure).
            branch_names: one name per branch (default ``parallel-branch-{i}``).

        Returns:
            A BatchResult: per-branch status, value or error, and the completion reason.

        Raises:
            ValidationError: no branches, a non-callable branch, ``max_concurrency`` < 1,
                bad names or a policy that cannot be met (nothing recorded).
            ExecutionCancelledError: the execution was cancelled inside a branch.
        """
        from durable_core.operations.batch import run_parallel

        check_name(name, "parallel")
        return run_parallel(
            self,
            name,
            branches,
            max_concurrency=max_concurrency,
            completion=completion,
            branch_names=branch_names,
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
    ) -> BatchResult[T]:
        """Apply ``fn(ctx, item, index)`` to every item concurrently, each in a child scope.

        The same rules as :meth:`parallel`; items are named ``map-item-{i}`` unless
        ``item_name(item, i)`` says otherwise. ``items`` must be ordered (not a set); no
        items give an empty result. Values are typed by ``fn``'s return annotation.

        Raises:
            ValidationError: a non-callable ``fn``, unordered items, ``max_concurrency`` < 1,
                bad names or a policy that cannot be met (nothing recorded).
            ExecutionCancelledError: the execution was cancelled inside an item.
        """
        from durable_core.operations.batch import run_map

        check_name(name, "map")
        return run_map(
            self,
            name,
            items,
            fn,
            max_concurrency=max_concurrency,
            completion=completion,
            item_name=item_name,
        )

    @overload
    def invoke(
        self,
        function: DurableFunction[Any, T],
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
    ) -> T: ...
    @overload
    def invoke(
        self,
        function: str,
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
    ) -> Any: ...
    def invoke(
        self,
        function: DurableFunction[Any, T] | str,
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
    ) -> T | Any:
        """Start another durable function as a child execution; await its result.

        The child's id is recorded before it starts, so a crash never starts it twice; the
        caller suspends until the child ends (the store wakes it).

        Args:
            function: a ``@durable`` function or the name of one registered with the runtime.
            payload: the child's input event (validated against its input type).
            name: the operation name (default: the function's name).
            result_type: the type of the result (default: the child's return annotation).

        Raises:
            FunctionNotFoundError: a name this runtime does not have (nothing recorded;
                the execution is parked until a worker that has it is asked to retry).
            InvokeError: the child failed or was cancelled (the same on every replay).
        """
        from durable_core.operations.invoke import run_invoke

        return run_invoke(self, function, payload, name=name, result_type=result_type)


def _check_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise ValidationError(f"{what}: expected a callable, got {type(fn).__name__}")


def _opt_duration(value: timedelta | float | None, what: str) -> timedelta | None:
    if value is None:
        return None
    return check_duration(value, what)
