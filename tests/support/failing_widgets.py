"""Cards with a bug of their own, for the tests that prove it stays in the card: one whose view
cannot be built (its code raises on its data), one whose template cannot be drawn."""

from __future__ import annotations

from portal.identity import User
from portal.widgets.contract import WidgetContext, WidgetView

from .layout_widgets import PlainWidget


class BuggyViewWidget(PlainWidget):
    """Its view's decoration raises, as code tripping on data nobody foresaw would."""

    slug = "buggy"
    title = "Buggy"

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        raise RuntimeError("a bug in the Buggy card, on purpose")


class BuggyTemplateWidget(PlainWidget):
    """Its template reads what its view does not have (the strict renderer raises)."""

    slug = "smudged"
    title = "Smudged"
    template_file = "widgets/smudged.html"


BUGGY, SMUDGED = BuggyViewWidget(), BuggyTemplateWidget()
