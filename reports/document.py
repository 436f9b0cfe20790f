"""The report as data: a list of blocks that the Markdown and HTML renderers both walk.

Text from run folders (reasons, evidence, finding summaries) is plain ``str`` here and each
renderer escapes it for its own format; emphasis, code and links are explicit spans, so no
value from a run folder can inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Mono:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str


Inline = str | Strong | Mono | Link
Text = str | tuple[Inline, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Para:
    text: Text


@dataclass(frozen=True)
class Bullets:
    items: list[Text]


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Text]]
    right: set[int] = field(default_factory=set)  # column indexes aligned right (numbers)


@dataclass(frozen=True)
class Image:
    file: str  # written beside the Markdown; the HTML embeds ``png``
    alt: str
    png: bytes


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Details:
    summary: str
    blocks: list[Block]


Block = Heading | Para | Bullets | Table | Image | Code | Details


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


@dataclass
class Doc:
    """Blocks in order, with GitHub-compatible unique anchors for headings."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    _anchors: dict[str, int] = field(default_factory=dict)

    def heading(self, level: int, text: str) -> str:
        base = slug(text)
        n = self._anchors.get(base, 0)
        self._anchors[base] = n + 1
        anchor = base if n == 0 else f"{base}-{n}"
        self.blocks.append(Heading(level, text, anchor))
        return anchor

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def images(self) -> list[Image]:
        found: list[Image] = []

        def walk(blocks: list[Block]) -> None:
            for b in blocks:
                if isinstance(b, Image):
                    found.append(b)
                elif isinstance(b, Details):
                    walk(b.blocks)

        walk(self.blocks)
        return found


__all__ = [
    "Strong",
    "Mono",
    "Link",
    "Inline",
    "Text",
    "Heading",
    "Para",
    "Bullets",
    "Table",
    "Image",
    "Code",
    "Details",
    "Block",
    "Doc",
    "slug",
]
