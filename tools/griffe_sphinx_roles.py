"""Griffe extension: the docstrings' Sphinx roles as links in the API reference.

The docstrings cross-reference with Sphinx roles (``:class:`~durable_core.Runtime```,
``:meth:`run```), which read well in the source and in ``help()``. mkdocstrings renders
Markdown, where such a role would show as literal text; this extension rewrites each one,
in the docstrings as loaded for the site only, into an optional cross-reference: a link
when the target is documented in the reference, plain code when it is not (a relative
``:meth:`run``` or a private module), never a build warning.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj|const):`(~?)([^`<>]+)`")


def _reference(match: re.Match[str]) -> str:
    short, target = match[1] == "~", match[2].strip()
    shown = target.rsplit(".", 1)[-1] if short else target
    return (
        f'<autoref identifier="{html.escape(target)}" optional>'
        f"<code>{html.escape(shown)}</code></autoref>"
    )


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx cross-reference roles in every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring (modules, classes, functions and attributes)."""
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(_reference, obj.docstring.value)
