"""Putting one page's change onto a layout that was changed elsewhere since that page was drawn.

A page left open on a laptop since the morning, while the layout was rearranged on a desktop at
noon: when a card is folded on the laptop, the laptop's page sends its layout as it was drawn
(`base`) and as it is now (`mine`). What the laptop changed (the difference between the two) is
put onto the layout saved meanwhile (`theirs`), so that neither device's change is lost.

Where both changed the same thing, the change being saved now wins: the person made it last,
and on the page in front of them.
"""

from __future__ import annotations

from .model import CardChoice, LayoutDocument

CARD_CHOICES = ("hidden", "collapsed", "width")


def merge_layouts(base: LayoutDocument, mine: LayoutDocument, theirs: LayoutDocument) -> LayoutDocument:
    """`theirs` with what changed from `base` to `mine`: each card's choices, the cards' order,
    the pinned tools and where the tools open."""
    return LayoutDocument(
        cards=_merge_cards(base, mine, theirs),
        pinned=_merge_pinned(base.pinned, mine.pinned, theirs.pinned),
        new_tab=mine.new_tab if mine.new_tab != base.new_tab else theirs.new_tab,
    )


def _merge_cards(
    base: LayoutDocument, mine: LayoutDocument, theirs: LayoutDocument
) -> tuple[CardChoice, ...]:
    base_cards = {card.slug: card for card in base.cards}
    my_cards = {card.slug: card for card in mine.cards}
    their_cards = {card.slug: card for card in theirs.cards}
    mine_order, their_order = list(my_cards), list(their_cards)
    if mine_order != list(base_cards):  # this page moved cards: its order, with any card only theirs has
        order = mine_order + [slug for slug in their_order if slug not in my_cards]
    else:
        order = their_order + [slug for slug in mine_order if slug not in their_cards]
    merged = []
    for slug in order:
        card = their_cards.get(slug) or my_cards[slug]
        mine_card, base_card = my_cards.get(slug), base_cards.get(slug)
        if mine_card is not None:
            changed = {
                name: getattr(mine_card, name)
                for name in CARD_CHOICES
                if base_card is None or getattr(mine_card, name) != getattr(base_card, name)
            }
            card = card.model_copy(update=changed)
        merged.append(card)
    return tuple(merged)


def _merge_pinned(base: tuple[str, ...], mine: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[str, ...]:
    if mine == base:
        return theirs
    if theirs == base:
        return mine
    unpinned = set(base) - set(mine)
    kept = [tile for tile in theirs if tile not in unpinned]
    return tuple(kept + [tile for tile in mine if tile not in base and tile not in kept])
