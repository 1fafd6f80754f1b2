"""A card's body as the eye reads it and as a screen reader hears it, apart.

A card says its state to screen readers in attributes of its content (`data-announce`, read out
by the card's live region; `data-choice-said`): a test that counts what the card shows counts
without them, and one that checks what is heard reads them.
"""

from __future__ import annotations

import html as markup
import re

_SPOKEN = re.compile(r'\sdata-(?:announce|choice-said)="[^"]*"')
_ANNOUNCE = re.compile(r'\sdata-announce="([^"]*)"')


def shown(html: str) -> str:
    """The card's HTML without what only a screen reader hears."""
    return _SPOKEN.sub("", html)


def announced(html: str) -> str:
    """What the card's live region says of this answer ("" when nothing)."""
    found = _ANNOUNCE.search(html)
    return markup.unescape(found.group(1)) if found else ""
