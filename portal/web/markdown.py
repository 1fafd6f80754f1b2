"""Upstream Markdown as safe HTML: markdown-it-py renders it, nh3 keeps only a small subset.

Some tools render a text field as Markdown in their own page (Uptime Kuma's incident content and
maintenance descriptions, Taiga's blocked notes): the portal shows the same emphasis, links,
lists and code rather than raw asterisks. Everything else is text: raw HTML is escaped by the
parser (`html=False`), images become their alternative text, headings become bold paragraphs
(the card's own headings keep the page's outline), and the sanitiser drops whatever tag,
attribute or URL scheme is not on its lists. Links get `rel="noopener noreferrer"` and no
`target`: a card body is the same HTML for every user, whatever each chose for tiles.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape

from ..caching.memo import Memo

BLOCK_TAGS = {"p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr"}
INLINE_TAGS = {"strong", "em", "s", "code", "a", "br"}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
# Upstream text is short; a longer one is cut (at a line) before parsing, so the work stays bounded.
MAX_SOURCE = 4000


def _heading_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return "<p><strong>"


def _heading_close(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return "</strong></p>\n"


def _image(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """An image is shown as its alternative text: no request leaves for an upstream's picture."""
    return str(escape(renderer.renderInlineAsText(tokens[idx].children or [], options, env)))


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable("strikethrough")
    parser.add_render_rule("heading_open", _heading_open)
    parser.add_render_rule("heading_close", _heading_close)
    parser.add_render_rule("image", _image)
    return parser


_PARSER = _parser()


def _cleaner(tags: set[str]) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=tags,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        url_relative="deny",  # a link relative to the upstream would point into the portal
        link_rel="noopener noreferrer",
    )


_BLOCK = _cleaner(BLOCK_TAGS)
_INLINE = _cleaner(INLINE_TAGS)
# A card body is rendered once per version, but the same incident text comes back in every one.
_rendered: Memo[tuple[str, bool], Markup] = Memo(256)
# markdown-it-py compiles its rule lists on first use, and mdurl fills its escape tables as it
# goes: a worker's threads rendering at once met them half-built (a card's 500 after a refresh).
# One render at a time; each text is rendered once and then kept.
_rendering = threading.Lock()


# A short code span is drawn as one block (inline-block: "change-" and "1432" never split), and a
# line may break after such a block even before a ")": "(change-1432" then ")" alone on the next
# line. The punctuation that touches a short one is kept on its line with it (nowrap); a long
# code is left free to wrap.
_TOUCHED_CODE = re.compile(r"([(\[«“]?)<code>([^<]{1,24})</code>([)\]»”.,;:!?]*)")


def _keep_code_whole(html: str) -> str:
    def glue(found: re.Match[str]) -> str:
        before, code, after = found.groups()
        if not before and not after:
            return found.group(0)
        return f'<span class="md-keep">{before}<code>{code}</code>{after}</span>'

    return _TOUCHED_CODE.sub(glue, html) if "<code>" in html else html


def _bounded(text: str) -> str:
    if len(text) <= MAX_SOURCE:
        return text
    cut = text.rfind("\n", 0, MAX_SOURCE)
    return text[: cut if cut > MAX_SOURCE // 2 else MAX_SOURCE].rstrip() + " …"


def render_markdown(text: Any, inline: bool = False) -> Markup:
    """`text` (Markdown from an upstream) as sanitised HTML; `inline` keeps it to one paragraph's
    worth of markup (emphasis, links, code) for a line of a card."""
    if not text:
        return Markup("")
    source = _bounded(str(text))
    key = (source, inline)
    found = _rendered.get(key)
    if found is None:
        with _rendering:
            rendered = _PARSER.renderInline(source) if inline else _PARSER.render(source)
        html = _keep_code_whole(_INLINE.clean(rendered) if inline else _BLOCK.clean(rendered))
        found = Markup(html.strip())  # sanitised by nh3 just above (the glue is ours)
        _rendered.put(key, found)
    return found
