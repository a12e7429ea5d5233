"""``StepOptions``: the options of one saga step, as one frozen object.

``s.step``, ``s.branch`` and the ``Saga`` builder's ``.step`` take the same keyword options
(the builder all but ``result_type=``). Each turns them into one ``StepOptions`` right away;
everything after that (the declaration checks of :func:`saga.rules.check_step`, the kind,
the forward policy, the type the result is recorded as, the ``StepConfig``, the undo entry)
reads that object, so the defaults and the rules live here and in :mod:`saga.rules` only.

Invariants:
- The fields, and their defaults, are the keyword options of ``s.step``; the keyword
  signatures of ``s.step``, ``s.branch`` and ``Saga.step`` spell the same names and defaults
  (``tests/saga/test_saga_options.py`` holds them to it).
- Building a ``StepOptions`` checks nothing: a declaration is checked where it always was
  (``s.step`` and ``Saga.step`` at once, ``s.branch`` when ``s.parallel`` runs it), and
  nothing derived from the options is used before it passed the checks.
- What is derived from the options depends on them and on the step's effective kind and
  action only, never on live state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from durable_core import RetryPolicy, StepConfig, StepSemantics
from durable_core.serde import return_type
from saga.compensation import Compensation, Undo
from saga.policy import StepKind, default_compensation_policy, forward_policy


@dataclass(frozen=True, kw_only=True)
class StepOptions:
    """The options of one saga step (see :meth:`saga.SagaContext.step` for each)."""

    compensate: Compensation | None = None
    """The undo, run if the saga rolls back after this step succeeded."""
    kind: StepKind | str | None = None
    """As given: ``None`` lets the saga choose (see :func:`saga.rules.resolve_kind`)."""
    retry: RetryPolicy | None = None
    """The forward policy (``None``: the default for the kind)."""
    compensation_retry: RetryPolicy | None = None
    """The undo's policy (``None``: :func:`saga.policy.default_compensation_policy`)."""
    compensate_uncertain: bool = False
    """Also undo the step if it fails for good (its effect may have happened)."""
    semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    """durable_core's crash semantics for an attempt."""
    result_type: Any = None
    """The type the result is recorded as (``None``: the action's return annotation)."""
    timeout: timedelta | None = None
    """The limit of one attempt of the action (``None``: no limit)."""
    compensation_timeout: timedelta | None = None
    """The limit of one attempt of the compensation (``None``: no limit)."""

    def keywords(self) -> dict[str, Any]:
        """The options as the keywords of ``s.step`` (each field by its name)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def recorded_type(self, action: Callable[..., Any]) -> Any:
        """The type the step's result is recorded (and read back) as."""
        return self.result_type if self.result_type is not None else return_type(action)

    def step_config(self, kind: StepKind, action: Callable[..., Any]) -> StepConfig:
        """The durable_core configuration of the forward step (of effective ``kind``); its
        record carries the kind as its role (``saga.pivot``, see :data:`saga.policy.ROLE`)."""
        return StepConfig(
            retry=forward_policy(kind, self.retry),
            semantics=self.semantics,
            result_type=self.recorded_type(action),
            timeout=self.timeout,
            role=kind.role,
        )

    def undo(self, path: str, key: str, args: tuple[Any, ...]) -> Undo:
        """The step's undo entry before it ran: no result or error yet (the step's outcome
        is added when it settles)."""
        return Undo(
            path,
            key,
            self.compensate,
            self.compensation_retry or default_compensation_policy(),
            args=args,
            timeout=self.compensation_timeout,
        )
