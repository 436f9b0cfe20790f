"""The document as one self-contained HTML file: inline CSS, charts embedded as base64 PNG,
no script and no external resource, so it opens offline and archives as a single file."""

from __future__ import annotations

import base64
from html import escape

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

_CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.r, th.r { text-align: right; }
tr:nth-child(2n) td { background: #fbfcfd; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            background: #f6f8fa; border-radius: 4px; }
code { padding: .1em .3em; }
pre { padding: .8em; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eaeef2; }
summary { cursor: pointer; color: #0969da; }
@media print { details { display: block; } body { max-width: none; } }
"""


def _inline(part: Inline) -> str:
    if isinstance(part, Strong):
        return f"<strong>{escape(part.text)}</strong>"
    if isinstance(part, Mono):
        return f"<code>{escape(part.text)}</code>"
    if isinstance(part, Link):
        return f'<a href="{escape(part.href)}">{escape(part.text)}</a>'
    return escape(part)


def _text(value: Text) -> str:
    parts = (value,) if isinstance(value, str) else value
    return "".join(_inline(p) for p in parts)


def _table(t: Table) -> str:
    def cell(tag: str, i: int, value: Text) -> str:
        cls = ' class="r"' if i in t.right else ""
        return f"<{tag}{cls}>{_text(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(t.header))
    body = "\n".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in t.rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        return f'<h{b.level} id="{escape(b.anchor)}">{escape(b.text)}</h{b.level}>'
    if isinstance(b, Para):
        return f"<p>{_text(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{_text(i)}</li>" for i in b.items) + "\n</ul>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        return f'<figure><img alt="{escape(b.alt)}" src="data:image/png;base64,{data}"></figure>'
    if isinstance(b, Code):
        return f"<pre><code>{escape(b.text)}</code></pre>"
    if isinstance(b, Details):
        inner = "\n".join(_block(x) for x in b.blocks)
        return f"<details><summary>{escape(b.summary)}</summary>\n{inner}\n</details>"
    raise TypeError(f"unknown block {b!r}")


def render_html(doc: Doc) -> str:
    body = "\n".join(_block(b) for b in doc.blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(doc.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


__all__ = ["render_html"]
