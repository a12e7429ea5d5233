"""``ctx.parallel`` and ``ctx.map``: concurrent branches, each in its own child scope.

This module validates a call (a bad call raises at once and records nothing) and builds the
branch list; :mod:`durable_core.operations._batch_run` runs it and
:mod:`durable_core.operations._batch_types` holds the policy and result types.

Invariants:
- Branch ``i`` always gets the same operation id and name for the same call, whatever the
  timing, so replay is identical whatever finished first.
- Validation happens before the batch's position is allocated: a non-callable branch,
  ``max_concurrency`` < 1, a policy that cannot be met, bad names, a nesting that is not a
  :class:`Nesting`, a serializer without ``serialize``/``deserialize`` or an unordered
  collection raise :class:`~durable_core.errors.ValidationError` and record nothing.
- No branches (or no items) is a batch like any other: it is recorded, and completes at
  once with an empty result (ALL_COMPLETED), as in AWS's SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.errors import ValidationError
from durable_core.operations._batch_run import MAX_THREADS, BatchRun, BranchSpec
from durable_core.operations._batch_types import (
    BatchError,
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
    Nesting,
)
from durable_core.operations._batch_view import BranchCancelled
from durable_core.replay import check_name
from durable_core.serde import Serializer, check_serializer, check_type, return_type

if TYPE_CHECKING:
    from durable_core.replay import Scope

__all__ = [
    "MAX_THREADS",
    "BatchError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "BranchCancelled",
    "CompletionPolicy",
    "CompletionReason",
    "Nesting",
    "map_op",
    "parallel_op",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - conventional name for an item type


def _concurrency(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{what}: max_concurrency must be an integer >= 1, got {value!r}")
    return value


def _nesting(value: object, what: str) -> Nesting:
    if not isinstance(value, Nesting):
        raise ValidationError(
            f"{what}: nesting must be Nesting.NESTED or Nesting.FLAT, got {value!r}"
        )
    return value


def _run(
    scope: Scope,
    make_context: Callable[[Scope], Any],
    name: str,
    *,
    what: str,
    kind: str,
    specs: list[BranchSpec],
    max_concurrency: int | None,
    completion: CompletionPolicy | None,
    nesting: Nesting,
    serializer: Serializer | None,
    item_serializer: Serializer | None,
) -> BatchRun:
    return BatchRun(
        scope,
        name,
        make_context,
        sub_type=kind,
        branch_sub_type="ParallelBranch" if kind == "Parallel" else "MapIteration",
        specs=specs,
        policy=_policy(completion, len(specs), what),
        max_concurrency=_concurrency(max_concurrency, what),
        nesting=_nesting(nesting, what),
        serializer=check_serializer(serializer, what=what),
        item_serializer=check_serializer(item_serializer, what=f"{what} item_serializer"),
    )


def _policy(value: object, total: int, what: str) -> CompletionPolicy:
    if value is None:
        return CompletionPolicy.all_successful()
    if not isinstance(value, CompletionPolicy):
        raise ValidationError(
            f"{what}: completion must be a CompletionPolicy (e.g. "
            f"CompletionPolicy.at_least(2)), got {type(value).__name__}"
        )
    value.check_feasible(total, what)
    return value


def _as_list(values: object, what: str, kind: str) -> list[Any]:
    if isinstance(values, set | frozenset):
        raise ValidationError(
            f"{what}: {kind} must be ordered (a list or tuple); a set has no stable order, so "
            "branch i would not be the same item on replay. Sort it first."
        )
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError(
            f"{what}: {kind} must be a list or tuple, got {type(values).__name__}"
        )
    return list(values)


def _names(given: Sequence[str] | None, default: list[str], what: str) -> list[str]:
    if given is None:
        return default
    names = _as_list(given, what, "branch_names")
    if len(names) != len(default):
        raise ValidationError(
            f"{what}: {len(names)} branch name(s) for {len(default)} branch(es); give one each"
        )
    return [check_name(n, f"{what} branch") for n in names]


def parallel_op(
    scope: Scope,
    make_context: Callable[[Scope], Any],
    name: str,
    branches: Sequence[Callable[[Any], T]],
    *,
    max_concurrency: int | None,
    completion: CompletionPolicy | None,
    branch_names: Sequence[str] | None,
    nesting: Nesting = Nesting.NESTED,
    serializer: Serializer | None = None,
    item_serializer: Serializer | None = None,
) -> BatchRun:
    """Validate ``branches``; the batch that runs (or replays) them concurrently.

    Raises:
        ValidationError: bad arguments (nothing recorded).
        ExecutionCancelledError: the execution was cancelled inside a branch (recorded).
    """
    what = f"parallel {name!r}"
    fns = _as_list(branches, what, "branches")
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise ValidationError(
                f"{what}: branch {i} must be a callable taking a DurableContext, got "
                f"{type(fn).__name__}"
            )
    names = _names(branch_names, [f"parallel-branch-{i}" for i in range(len(fns))], what)
    specs = [BranchSpec(n, fn, return_type(fn)) for n, fn in zip(names, fns, strict=True)]
    for spec, fn in zip(specs, fns, strict=True):
        check_type(spec.result_type, what=f"{what} branch {spec.name!r}", fn=fn)
    return _run(
        scope,
        make_context,
        name,
        what=what,
        kind="Parallel",
        specs=specs,
        max_concurrency=max_concurrency,
        completion=completion,
        nesting=nesting,
        serializer=serializer,
        item_serializer=item_serializer,
    )


def map_op(
    scope: Scope,
    make_context: Callable[[Scope], Any],
    name: str,
    items: Sequence[I],
    fn: Callable[[Any, I, int], T],
    *,
    max_concurrency: int | None,
    completion: CompletionPolicy | None,
    item_name: Callable[[I, int], str] | None,
    nesting: Nesting = Nesting.NESTED,
    serializer: Serializer | None = None,
    item_serializer: Serializer | None = None,
) -> BatchRun:
    """Validate; the batch that applies ``fn(ctx, item, index)`` to every item concurrently.

    Raises:
        ValidationError: bad arguments (nothing recorded).
        ExecutionCancelledError: the execution was cancelled inside an item (recorded).
    """
    what = f"map {name!r}"
    if not callable(fn):
        raise ValidationError(
            f"{what}: the function must be a callable (ctx, item, index), got {type(fn).__name__}"
        )
    if item_name is not None and not callable(item_name):
        raise ValidationError(f"{what}: item_name must be a callable (item, index) -> str")
    values = _as_list(items, what, "items")
    type_ = return_type(fn)
    check_type(type_, what=what, fn=fn)
    specs: list[BranchSpec] = []
    for i, item in enumerate(values):
        label = item_name(item, i) if item_name is not None else f"map-item-{i}"
        check_name(label, f"{what} item")

        def body(ctx: Any, item: I = item, i: int = i) -> T:
            return fn(ctx, item, i)

        specs.append(BranchSpec(label, body, type_))
    return _run(
        scope,
        make_context,
        name,
        what=what,
        kind="Map",
        specs=specs,
        max_concurrency=max_concurrency,
        completion=completion,
        nesting=nesting,
        serializer=serializer,
        item_serializer=item_serializer,
    )
