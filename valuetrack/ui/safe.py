"""Registry text on pages: shown as typed, never interpreted (docs/decisions.md D22).

Streamlit renders Markdown (GitHub flavour plus its own ``:color[...]``, ``:material/icon:`` and
``$LaTeX$``) in titles, captions, alerts, labels and ``st.markdown``. A display name
``[Click me](https://evil.example/phish)`` would be a live link, an owner ``![p](https://evil.example/p.png)``
an image the browser fetches, and a bare ``https://…`` or ``www.…`` becomes a link by itself.

- ``md(text)``: for every Markdown context. Escapes each character Markdown or Streamlit give a
  meaning (so links, images, emphasis, directives and LaTeX are literal text), breaks autolinks of
  URLs and e-mail addresses with a zero-width space, and turns line breaks and control characters
  into spaces so a name cannot start a heading or a list.
- ``one_line(text)``: for contexts that do not render Markdown (table cells, select options, chart
  labels): one line, control characters removed, ``<``/``>`` replaced so chart labels cannot carry
  Plotly's ``<a href>`` tags.

Every piece of registry text a page shows (names, display names, owners, teams, labels, reasons,
audit actors, error messages that quote them) goes through one of the two.
"""

from __future__ import annotations

import re
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~:$|])")  # links, images, emphasis, code, HTML, directives, LaTeX, tables
# GitHub-flavoured autolinks are found in the parsed text, after escapes are undone, so they are
# broken with an invisible zero-width space (U+200B) after "https:", "www" and "@"
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=@)", re.I)
ZWSP = "\u200b"
_LINE_START = re.compile(r"^(\s*)(?:([#>+\-=])|(\d+)([.)]))")  # headings, quotes, lists
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def md(text: Any) -> str:
    """``text`` as a literal in Streamlit Markdown (None → "")."""
    if text is None:
        return ""
    out = _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", str(text)))
    out = _AUTOLINK.sub(ZWSP, out)
    return _LINE_START.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"), out)


def one_line(text: Any) -> str:
    """``text`` as one line of plain text (None → "")."""
    if text is None:
        return ""
    return _CONTROL.sub(" ", str(text)).replace("<", "‹").replace(">", "›")
