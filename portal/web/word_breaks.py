"""Where a long identifier may break: between the words of a CamelCase name, not mid-word."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def word_breaks(text: object) -> Markup:
    """`text` escaped, with a <wbr> before each inner capital: on a phone, an alert named
    "KubeDeploymentReplicasMismatch" wraps at one of its words instead of at whichever letter
    meets the card's edge."""
    return Markup("<wbr>").join(escape(part) for part in _WORD_START.split(str(text)))
