"""The step options are spelled once: StepOptions; the keyword signatures (sync and async)
agree with it."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from saga import AsyncSagaContext, Saga, SagaContext
from saga.options import StepOptions


def _keywords(fn: Callable[..., Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


_FIELDS = {f.name: f.default for f in dataclasses.fields(StepOptions)}


@pytest.mark.parametrize(
    ("fn", "missing"),
    [
        (SagaContext.step, set()),
        (SagaContext.branch, set()),
        (AsyncSagaContext.step, set()),
        (AsyncSagaContext.branch, set()),
        (Saga.step, {"result_type"}),
    ],
    ids=["s.step", "s.branch", "async s.step", "async s.branch", "Saga.step"],
)
def test_each_step_signature_takes_the_step_options_with_their_defaults(
    fn: Callable[..., Any], missing: set[str]
) -> None:
    assert _keywords(fn) == {k: v for k, v in _FIELDS.items() if k not in missing}


def test_the_options_become_the_keywords_of_s_step_unchanged() -> None:
    options = StepOptions(compensate=print, compensate_uncertain=True)

    assert options.keywords() == {**_FIELDS, "compensate": print, "compensate_uncertain": True}
    assert StepOptions(**options.keywords()) == options
