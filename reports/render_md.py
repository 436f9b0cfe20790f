"""The document as GitHub-flavoured Markdown; charts are referenced as PNG files beside it.

Plain text (much of it from run folders) renders as exactly that text: Markdown and HTML
characters are escaped, ``$`` too (GitHub's math), a line cannot start a list, and a word
GitHub would link by itself (``https://...``, ``www....``, an e-mail address) is code.
"""

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

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&$])")
#: A word GitHub turns into a link by itself: a scheme URL, a ``www.`` host, an e-mail.
_AUTOLINK = re.compile(r"(?i)[a-z][a-z0-9+.-]*://|www\.|@[^\s@]*\.|mailto:|xmpp:")
#: The start of a list item (``- x``, ``+ x``, ``1. x``, ``1) x``).
_LIST_START = re.compile(r"^( {0,3})(?:([-+])|(\d{1,9})([.)])(?= |$))")


def _word(word: str, in_table: bool) -> str:
    """One word escaped; code when GitHub would link it (trailing ``.,:;!?`` left outside)."""
    core = word.rstrip(".,:;!?")
    if not _AUTOLINK.search(core):
        return _SPECIAL.sub(r"\\\1", word)
    return _code_span(core, in_table) + word[len(core) :]


def escape(text: str, *, in_table: bool = False) -> str:
    """Plain text → Markdown that renders as exactly that text, on one line, linking nowhere.

    A word GitHub would link by itself (a URL, an e-mail address) becomes a code span.
    """
    return re.sub(r"\S+", lambda m: _word(m.group(), in_table), re.sub(r"\s+", " ", text))


def _line_start(line: str) -> str:
    """A line that starts no list item: its marker escaped (``\\-``, ``1\\.``)."""

    def escaped(m: re.Match[str]) -> str:
        marker = f"\\{m[2]}" if m[2] else f"{m[3]}\\{m[4]}"
        return m[1] + marker

    return _LIST_START.sub(escaped, line, count=1)


def _code_span(text: str, in_table: bool) -> str:
    text = re.sub(r"\s+", " ", text)
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    body = f" {text} " if fence != "`" else text
    body = body.replace("|", "\\|") if in_table else body
    return f"{fence}{body}{fence}"


def _inline(part: Inline, in_table: bool) -> str:
    if isinstance(part, Strong):
        return f"**{escape(part.text, in_table=in_table)}**"
    if isinstance(part, Mono):
        return _code_span(part.text, in_table)
    if isinstance(part, Link):
        return f"[{escape(part.text, in_table=in_table)}]({part.href})"
    return escape(part, in_table=in_table)


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
        return [_line_start(text(b.text))]
    if isinstance(b, Bullets):
        return [f"- {_line_start(text(item))}" for item in b.items]
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
