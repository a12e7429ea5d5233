"""Durable functions shared by the step tests."""

from __future__ import annotations

from typing import Any

from durable_core import DurableContext, StepConfig, durable


def wf_with(config: StepConfig, body: Any) -> Any:
    """A durable function running one step ``call-api`` with ``body`` and ``config``."""

    @durable
    def wf(ctx: DurableContext, event: None) -> Any:
        return ctx.step("call-api", body, config)

    return wf
