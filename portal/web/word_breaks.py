"""Where a long identifier may break: at its natural boundaries, not mid-word."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_BOUNDARY = re.compile(
    r"(?<=[a-z0-9])(?=[A-Z])"  # a CamelCase hump: Node|Memory|High
    r"|(?<=[A-Z])(?=[A-Z][a-z])"  # the end of an acronym: HTTP|Requests
    r"|(?<=[-_/])(?=[^-_/])"  # after a run of separators: taiga-|back-|7d9c, team/|app
    r"|(?<=[A-Za-z0-9])(?=\.[A-Za-z])"  # before a dot between names (not in 1.31): harbor|.example
)


def word_breaks(text: object) -> Markup:
    """`text` escaped, with a <wbr> at each natural boundary of an identifier: on a phone, an
    alert named "KubeDeploymentReplicasMismatch" or a pod "taiga-back-7d9c5b8f6-x2kqp" wraps at
    one of its parts instead of at whichever letter meets the card's edge. A <wbr> is no
    character: the text copied stays the identifier itself. Chromium's accessibility tree reads
    a space at each <wbr>, though: an element named by its text gets an aria-label too."""
    return Markup("<wbr>").join(escape(part) for part in _BOUNDARY.split(str(text)))
