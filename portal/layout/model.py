"""The layout document, its validation against what the user may see, defaults and merging.

A saved layout names widgets by slug and tiles by id. It is read against the deployment as it is
now: a widget the user may no longer see is left out, one added since is shown at the end (in
the registry's order), and a tile that went away is simply not pinned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import LayoutDefault, PortalConfig, Tile, Width
from ..identity import User
from ..upstreams.errors import N_, Reason
from ..widgets.contract import WidgetContext

MAX_ITEMS = 200  # far more cards and tiles than a page has: a bound, not a limit anyone meets
MAX_BODY_BYTES = 32_768  # the layout and the one it was based on
NOTHING_SAVED = "none"  # the basis of a page drawn from the team's default (no layout saved)
CHANGED_ELSEWHERE = Reason.of(
    N_(
        "Your layout was changed on another device or in another tab since this page was loaded,"
        " so this change was not saved. Reload the page to see that layout, then make your change again."
    )
)


class CardChoice(BaseModel):
    """One card of the layout: where it is (its place in the list) and how it is shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(max_length=64)
    hidden: bool = False
    collapsed: bool = False
    width: Width | None = None  # None: the widget's own


class LayoutDocument(BaseModel):
    """What is saved for a user (and what the page posts): cards in order, pinned tiles, new tab."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cards: tuple[CardChoice, ...] = Field(default=(), max_length=MAX_ITEMS)
    pinned: tuple[str, ...] = Field(default=(), max_length=MAX_ITEMS)  # tile ids, in order
    new_tab: bool = False


class LayoutChange(LayoutDocument):
    """What the page posts: its layout now, and the layout it showed before (`base`: what it was
    drawn from or last saved), so that a change made on a page drawn before another device's can
    be put onto that device's layout (`merge.merge_layouts`). Pages of earlier releases send no base."""

    base: LayoutDocument | None = None

    def document(self) -> LayoutDocument:
        """The layout to save, without its base."""
        return LayoutDocument(cards=self.cards, pinned=self.pinned, new_tab=self.new_tab)


class LayoutRefused(ValueError):
    """A posted layout that cannot be saved, and why in words (nothing was changed)."""

    def __init__(self, reason: Reason, status: int = 400) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.status = status


def parse_change(raw: bytes) -> LayoutChange:
    """The posted JSON as a layout and its base; LayoutRefused when it is not one."""
    if len(raw) > MAX_BODY_BYTES:
        raise LayoutRefused(Reason.of(N_("This layout is too large to be saved.")), 413)
    try:
        return LayoutChange.model_validate_json(raw)
    except ValidationError:
        raise LayoutRefused(Reason.of(N_("This layout could not be read, so it was not saved."))) from None


def check_document(document: LayoutDocument, widgets: Sequence[WidgetContext], config: PortalConfig) -> None:
    """Refuse (LayoutRefused) unknown or repeated widgets and tiles.

    A card or tile the person may not see (now) is kept as placed, and shown only while they
    may: a page drawn before a role was taken away sends the cards it still shows, and refusing
    would refuse every change made on it until it is reloaded."""
    known = {ctx.widget.slug: ctx for ctx in widgets}
    seen: set[str] = set()
    for card in document.cards:
        ctx = known.get(card.slug)
        if ctx is None:
            raise LayoutRefused(Reason.of(N_("There is no widget called “%(slug)s”."), slug=card.slug))
        if card.slug in seen:
            raise LayoutRefused(Reason.of(N_("The widget “%(slug)s” is listed twice."), slug=card.slug))
        seen.add(card.slug)
    pinned: set[str] = set()
    for reference in document.pinned:
        tile = _tile_by_id(config, reference)
        if tile is None:
            raise LayoutRefused(Reason.of(N_("There is no tool called “%(tile)s”."), tile=reference))
        if tile.slug in pinned:
            raise LayoutRefused(Reason.of(N_("The tool “%(tile)s” is pinned twice."), tile=tile.name))
        pinned.add(tile.slug)


def _tile_by_id(config: PortalConfig, slug: str) -> Tile | None:
    return next((t for t in config.tiles if t.slug == slug), None)


def default_rule(config: PortalConfig, user: User) -> LayoutDefault | None:
    """The first rule of `layout.defaults` that applies to the user (None: no rule does)."""
    return next((rule for rule in config.layout.defaults if user.may_see(rule.roles)), None)


def default_document(config: PortalConfig, user: User) -> LayoutDocument:
    """The starting layout of the user's team (their first matching rule), or the plain one."""
    rule = default_rule(config, user)
    if rule is None:
        return LayoutDocument()
    first = list(rule.widgets)
    order = first + [slug for slug in config.widget_slugs if slug not in first]
    cards = tuple(
        CardChoice(
            slug=slug,
            hidden=slug in rule.hidden,
            collapsed=slug in rule.collapsed,
            width=rule.widths.get(slug),
        )
        for slug in order
    )
    pinned = tuple(tile.slug for name in rule.pinned if (tile := config.tile(name)) is not None)
    return LayoutDocument(cards=cards, pinned=pinned, new_tab=rule.new_tab)


@dataclass(frozen=True)
class PlacedCard:
    """A card as the page shows it for this user."""

    ctx: WidgetContext
    hidden: bool
    collapsed: bool
    width: Width

    @property
    def slug(self) -> str:
        return self.ctx.widget.slug

    @property
    def wide(self) -> bool:
        return self.width == "wide"

    @property
    def polls(self) -> bool:
        """A hidden or collapsed card does not poll until it is shown again."""
        return not (self.hidden or self.collapsed)


@dataclass(frozen=True)
class PlacedTile:
    tile: Tile
    pinned: bool
    index: int  # its place in the configuration (where it goes back when unpinned)


Source = Literal["saved", "default", "unavailable"]


def layout_basis(document: LayoutDocument | None) -> str:
    """What a page's layout was drawn from, as the page sends it back with a change: the saved
    document's digest, or NOTHING_SAVED. A change based on another is refused (409), so a page
    left open since the morning cannot put the morning's layout back over a newer one."""
    if document is None:
        return NOTHING_SAVED
    canonical = json.dumps(document.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class PageLayout:
    """The dashboard of one user now: cards in order, tiles pinned first, where they open."""

    cards: tuple[PlacedCard, ...]
    tiles: tuple[PlacedTile, ...]
    new_tab: bool
    source: Source  # their saved layout, their team's default, or the default for want of the database
    basis: str = NOTHING_SAVED  # layout_basis of what it was drawn from


def arrange(
    document: LayoutDocument,
    user: User,
    widgets: Sequence[WidgetContext],
    tiles: Sequence[Tile],
    source: Source,
    basis: str = NOTHING_SAVED,
) -> PageLayout:
    """The document read against what the user may see now (widgets and tiles)."""
    visible = {
        ctx.widget.slug: ctx for ctx in widgets if ctx.settings.enabled and user.may_see(ctx.settings.roles)
    }
    chosen = {card.slug: card for card in document.cards if card.slug in visible}
    order = list(chosen) + [slug for slug in visible if slug not in chosen]  # new widgets at the end
    cards = []
    for slug in order:
        ctx = visible[slug]
        choice = chosen.get(slug) or CardChoice(slug=slug)
        width: Width = choice.width or ("wide" if ctx.widget.wide else "normal")
        cards.append(PlacedCard(ctx, choice.hidden, choice.collapsed, width))
    mine = [PlacedTile(t, False, i) for i, t in enumerate(tiles) if user.may_see(t.roles)]
    by_slug = {p.tile.slug: p for p in mine}
    pinned = [by_slug[s] for s in dict.fromkeys(document.pinned) if s in by_slug]
    rest = [p for p in mine if p.tile.slug not in document.pinned]
    placed_tiles = tuple(PlacedTile(p.tile, True, p.index) for p in pinned) + tuple(rest)
    return PageLayout(tuple(cards), placed_tiles, document.new_tab, source, basis)


def access_key(layout: PageLayout, user: User, named: Iterable[str]) -> str:
    """What the person may see now, as a short key: the cards, the tools and their menu's role
    names (`named`: the grants the configuration labels). A page compares it with its own to learn
    that their roles changed since it was drawn (a card lost, or one more to show)."""
    grants = sorted((user.roles | user.groups) & set(named))
    seen = [sorted(card.slug for card in layout.cards), sorted(t.tile.slug for t in layout.tiles), grants]
    return hashlib.blake2b(json.dumps(seen).encode(), digest_size=6).hexdigest()


def document_of(layout: PageLayout) -> LayoutDocument:
    """The document that draws `layout` as it is: every card it shows, with its width, the pinned tools."""
    return LayoutDocument(
        cards=tuple(
            CardChoice(slug=card.slug, hidden=card.hidden, collapsed=card.collapsed, width=card.width)
            for card in layout.cards
        ),
        pinned=tuple(placed.tile.slug for placed in layout.tiles if placed.pinned),
        new_tab=layout.new_tab,
    )
