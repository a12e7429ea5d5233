"""The documentation site (mkdocs.yml) covers every page and every public module.

``.ci/run`` builds the site with ``mkdocs build --strict``; these checks fail sooner, and
say which page or module is missing, when a page is added without a place in the nav.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PUBLIC_MODULES = (
    "durable_core",
    "durable_core.testing",
    "durable_core.stores",
    "durable_core.runtime",
    "durable_core.aws_lambda",
    "durable_core.cli",
    "durable_core.server",
    "saga",
    "saga.operator",
)


def _nav_files(entries: Any) -> set[str]:
    found: set[str] = set()
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            found |= _nav_files(value) if isinstance(value, list) else {value}
    return found


def test_every_page_in_docs_has_a_place_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = _nav_files(config["nav"])
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - listed == set(), "add these pages to the nav of mkdocs.yml"
    assert listed - pages == set(), "the nav of mkdocs.yml names pages that do not exist"


def test_every_public_module_has_a_reference_page() -> None:
    directives = {
        m[1]
        for page in (DOCS / "reference").glob("*.md")
        for m in re.finditer(r"^::: ([\w.]+)$", page.read_text(), re.MULTILINE)
    }
    assert set(PUBLIC_MODULES) - directives == set()
