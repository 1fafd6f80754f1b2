"""A page's change put onto a layout changed elsewhere since (portal/layout/merge.py)."""

from __future__ import annotations

from typing import Any

from portal.layout.merge import merge_layouts
from portal.layout.model import LayoutDocument


def doc(*cards: str | dict[str, Any], pinned: tuple[str, ...] = (), new_tab: bool = False) -> LayoutDocument:
    """A layout: cards by slug, or as {"slug": ..., choices}."""
    return LayoutDocument.model_validate(
        {
            "cards": [{"slug": c} if isinstance(c, str) else c for c in cards],
            "pinned": pinned,
            "new_tab": new_tab,
        }
    )


def slugs(document: LayoutDocument) -> list[str]:
    return [card.slug for card in document.cards]


def choices(document: LayoutDocument, slug: str) -> tuple[bool, bool, str | None]:
    card = next(c for c in document.cards if c.slug == slug)
    return card.hidden, card.collapsed, card.width


BASE = doc("a", "b", "c", "d", pinned=("gitlab",))


def test_a_page_that_changed_nothing_gets_the_layout_saved_since() -> None:
    theirs = doc("d", {"slug": "c", "hidden": True}, "b", "a", pinned=("vault",), new_tab=True)
    assert merge_layouts(BASE, BASE, theirs) == theirs


def test_a_fold_goes_onto_cards_moved_and_hidden_elsewhere() -> None:
    mine = doc("a", {"slug": "b", "collapsed": True}, "c", "d", pinned=("gitlab",))
    theirs = doc("d", "c", {"slug": "b", "hidden": True}, "a", pinned=("gitlab",))
    merged = merge_layouts(BASE, mine, theirs)
    assert slugs(merged) == ["d", "c", "b", "a"]  # their order
    assert choices(merged, "b") == (True, True, None)  # their hiding, this page's fold


def test_when_both_moved_cards_the_order_of_the_change_made_last_wins() -> None:
    mine = doc("b", "a", "c", "d")
    theirs = doc("d", "c", "b", "a", "e")  # and a card this page never showed
    assert slugs(merge_layouts(BASE, mine, theirs)) == ["b", "a", "c", "d", "e"]


def test_when_both_changed_one_card_the_change_made_last_wins_for_what_it_changed() -> None:
    mine = doc("a", {"slug": "b", "width": "wide"}, "c", "d")
    theirs = doc("a", {"slug": "b", "width": "normal", "collapsed": True}, "c", "d")
    assert choices(merge_layouts(BASE, mine, theirs), "b") == (False, True, "wide")


def test_tools_pinned_and_unpinned_on_both_sides_are_all_kept() -> None:
    base = doc("a", pinned=("gitlab", "harbor"))
    mine = doc("a", pinned=("gitlab", "vault"))  # unpinned harbor, pinned vault
    theirs = doc("a", pinned=("grafana", "gitlab", "harbor"))  # pinned grafana first
    assert merge_layouts(base, mine, theirs).pinned == ("grafana", "gitlab", "vault")


def test_pinned_tools_changed_on_one_side_only_are_that_sides() -> None:
    reordered = doc("a", "b", "c", "d", pinned=("vault", "gitlab"))
    assert merge_layouts(BASE, reordered, BASE).pinned == ("vault", "gitlab")
    assert merge_layouts(BASE, BASE, reordered).pinned == ("vault", "gitlab")


def test_new_tab_follows_the_side_that_changed_it() -> None:
    assert merge_layouts(BASE, doc("a", "b", "c", "d", pinned=("gitlab",), new_tab=True), BASE).new_tab
    assert merge_layouts(BASE, BASE, doc("a", new_tab=True)).new_tab
    assert not merge_layouts(doc("a", new_tab=True), doc("a", new_tab=False), doc("a", new_tab=True)).new_tab
