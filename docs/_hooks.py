"""MkDocs hooks: leave out of the nav the pages that do not exist (yet), and point links to
files outside docs/ (examples, sources) at the repository, since the site cannot serve them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPOSITORY = "https://github.com/webhookkit/webhookkit/blob/main/"
_OUTSIDE = re.compile(
    r"\]\((?:\.\./)+((?:examples|tests|webhookkit|benchmarks|scripts|LICENSE)[^)#\s]*)"
    r"((?:#[^)\s]*)?)\)"
)


def _prune(items: list[Any], docs: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            [(title, target)] = item.items()
            if isinstance(target, list):
                children = _prune(target, docs)
                if children:
                    kept.append({title: children})
            elif "://" in str(target) or (docs / str(target)).exists():
                kept.append(item)
        elif (docs / str(item)).exists():
            kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    config["nav"] = _prune(config["nav"] or [], Path(config["docs_dir"]))
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    return _OUTSIDE.sub(lambda m: f"]({REPOSITORY}{m.group(1)}{m.group(2)})", markdown)
