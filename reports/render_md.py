"""The document as GitHub-flavoured Markdown; charts are referenced as PNG files beside it."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from reports.document import (
    Block,
    Bullets,
    Code,
    Details,
    Doc,
    Heading,
    Image,
    Inline,
    Link,
    Mono,
    Para,
    Strong,
    Table,
    Text,
)

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def escape(text: str) -> str:
    """Plain text → Markdown that renders as exactly that text, on one line."""
    return _SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _code_span(text: str, in_table: bool) -> str:
    text = re.sub(r"\s+", " ", text)
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    body = f" {text} " if fence != "`" else text
    body = body.replace("|", "\\|") if in_table else body
    return f"{fence}{body}{fence}"


def _inline(part: Inline, in_table: bool) -> str:
    if isinstance(part, Strong):
        return f"**{escape(part.text)}**"
    if isinstance(part, Mono):
        return _code_span(part.text, in_table)
    if isinstance(part, Link):
        return f"[{escape(part.text)}]({part.href})"
    return escape(part)


def text(value: Text, *, in_table: bool = False) -> str:
    parts = (value,) if isinstance(value, str) else value
    return "".join(_inline(p, in_table) for p in parts)


def _table(t: Table) -> list[str]:
    def row(cells: Sequence[Text]) -> str:
        return "| " + " | ".join(text(c, in_table=True) for c in cells) + " |"

    rule = ["---:" if i in t.right else "---" for i in range(len(t.header))]
    return [row(list(t.header)), "| " + " | ".join(rule) + " |", *(row(r) for r in t.rows)]


def _block(b: Block) -> list[str]:
    if isinstance(b, Heading):
        return ["#" * b.level + " " + escape(b.text)]
    if isinstance(b, Para):
        return [text(b.text)]
    if isinstance(b, Bullets):
        return [f"- {text(item)}" for item in b.items]
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Image):
        return [f"![{escape(b.alt)}]({b.file})"]
    if isinstance(b, Code):
        fence = "`" * max(3, max((len(m) + 1 for m in re.findall(r"`{3,}", b.text)), default=3))
        return [fence, b.text.rstrip("\n"), fence]
    if isinstance(b, Details):
        inner = [line for x in b.blocks for line in (*_block(x), "")]
        return [f"<details><summary>{html.escape(b.summary)}</summary>", "", *inner, "</details>"]
    raise TypeError(f"unknown block {b!r}")


def render_markdown(doc: Doc) -> str:
    lines = [line for b in doc.blocks for line in (*_block(b), "")]
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ = ["render_markdown", "escape"]
