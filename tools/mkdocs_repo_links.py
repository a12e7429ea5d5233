"""MkDocs hook: links from docs/ to other files of the repository, for the built site.

The pages link to files outside ``docs/`` (``../bench/README.md``) so that they read well
on a code host. The site holds only ``docs/``, so such a link would be dead there: this
hook turns a link to an existing repository file into the file's path as code
(``bench/README.md``), and leaves a link to a missing file alone, so that
``mkdocs build --strict`` still fails on it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_LINK = re.compile(r"\[([^\]]+)\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """Rewrite the page's links that leave ``docs/`` for a file that exists."""
    docs = Path(config["docs_dir"]).resolve()
    here = (docs / page.file.src_path).parent

    def replace(match: re.Match[str]) -> str:
        target = (here / match[2]).resolve()
        if docs in target.parents or not target.is_file():
            return match[0]
        shown = target.relative_to(docs.parent).as_posix()
        return f"{match[1]} (`{shown}` in the repository)"

    return _LINK.sub(replace, markdown)
