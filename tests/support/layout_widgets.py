"""Plain widgets for testing layouts: no upstream, a fixed body. The layout never names a widget,
so its tests use these beside the registry's (`tests.support.layout_app` serves them)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from portal.identity import User
from portal.storage import Preference, user_preferences
from portal.widgets import WIDGETS
from portal.widgets.contract import Part, Widget, WidgetContext

TEMPLATES = str(Path(__file__).parent / "templates")


class PlainWidget(Widget):
    """A card with nothing to fetch (its body says so)."""

    scope = "shared"
    upstreams = ()
    icon = "inbox"
    template_folder = TEMPLATES
    template_file = "widgets/plain.html"

    @property
    def template(self) -> str:
        return self.template_file

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        return []


def plain_widget(slug: str, *, wide: bool = False) -> Widget:
    """A plain widget called `slug` (its title is the slug, capitalised)."""
    attributes = {"slug": slug, "title": slug.capitalize(), "wide": wide}
    return type(f"{slug.capitalize()}Widget", (PlainWidget,), attributes)()


# Made once: the configuration's model is cached by the widgets it is made for.
ALPHA, BETA, GAMMA, DELTA, EPSILON = (plain_widget(s) for s in ("alpha", "beta", "gamma", "delta", "epsilon"))
# The registry's status card: the only real one the layout tests configure (the simulator of Uptime Kuma).
STATUS = next(w for w in WIDGETS if w.slug == "status")


SORT = Preference("choosy", "sort", Literal["due", "status"], "due")


class ChoosyWidget(PlainWidget):
    """A plain card that shows its user's sort preference (`Widget.choice`)."""

    slug = "choosy"
    title = "Choosy"
    template_file = "widgets/choosy.html"

    def choice(self, ctx: WidgetContext, user: User, args: Mapping[str, str]) -> Hashable:
        return user_preferences(user).get(SORT)


CHOOSY = ChoosyWidget()
