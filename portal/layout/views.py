"""The layout's routes: save (the whole document, at every change of the edit mode) and reset.

A save names what the page's layout was drawn from (`X-Layout-Basis`) and sends that layout
too: when the saved layout changed since (another device, another tab), the page's change is
put onto it (`merge.py`) and the answer carries the result for the page to show, rather than
a page left open since the morning putting its older layout back over the newer one. A page of
an earlier release, which sends no base, is refused with a 409 that says so.

Both go through the write path's guard (logged in, same origin, Flask-WTF's CSRF token from the
page's `hx-headers`) and leave an audit line. A refused layout changes nothing: it is checked
whole before the one statement that replaces the saved one.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..identity import User, current_user
from ..state import portal_state
from ..storage.database import StorageUnavailable
from ..upstreams.errors import N_, Reason
from ..web.guard import audit, write_refusal
from ..web.i18n import translate_reason
from .merge import merge_layouts
from .model import (
    MAX_BODY_BYTES,
    LayoutDocument,
    LayoutRefused,
    PageLayout,
    access_key,
    arrange,
    check_document,
    default_document,
    document_of,
    layout_basis,
    parse_change,
)
from .store import Rebase, load_document, reset_document, save_document

bp = Blueprint("layout", __name__)

BASIS_HEADER = "X-Layout-Basis"  # what the page's layout was drawn from (model.layout_basis)
MERGED = Reason.of(N_("Layout saved, with the changes made to it on another device or in another tab."))
UNAVAILABLE = Reason.of(N_("Your layout cannot be saved right now (the portal's database is unreachable)."))


def page_layout(user: User) -> PageLayout:
    """The dashboard as this user arranged it (or their team's default), against what they may see now."""
    state = portal_state()
    document, source, basis = load_document(state.database, state.config, user)
    return arrange(document, user, list(state.widgets.values()), state.tiles, source, basis)


def _answer(reason: Reason, status: int, **fields: object) -> Response:
    key = "message" if status == 200 else "error"
    response = jsonify({key: translate_reason(reason), **fields})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _body() -> bytes:
    """The request's body, read no further than the layout's limit (one byte more tells it is over)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return b"x" * (MAX_BODY_BYTES + 1)
    return request.stream.read(MAX_BODY_BYTES + 1)


def _guard(action: str) -> User | Response:
    """The user making the change, or the 403 that refuses it (audited)."""
    refusal = write_refusal()
    user = current_user()
    if refusal is not None or user is None:
        audit(action, "layout", "refused", reason=str(refusal))
        return _answer(refusal or Reason.of(N_("You are not allowed to make this change.")), 403)
    return user


def _onto_saved(base: LayoutDocument, mine: LayoutDocument, user: User) -> Rebase:
    """How the page's change (from `base` to `mine`) goes onto the layout saved since: merged,
    then read against what the user may see now, each card's width spelled out."""
    state = portal_state()
    widgets = list(state.widgets.values())

    def rebase(theirs: LayoutDocument | None) -> LayoutDocument:
        onto = theirs if theirs is not None else default_document(state.config, user)  # reset since
        return document_of(arrange(merge_layouts(base, mine, onto), user, widgets, state.tiles, "saved"))

    return rebase


@bp.get("/layout")
def current() -> Response:
    """The layout a page of this user shows now (saved, or the team's default) and its basis: a
    page left open on another device asks when the person comes back to it, to show a layout
    changed elsewhere meanwhile. 503 while the database is away (the page keeps its own)."""
    user = current_user()
    assert user is not None  # the login guard answered the others
    shown = page_layout(user)
    access = access_key(shown, user, portal_state().config.auth.role_labels)
    if shown.source == "unavailable":
        return _answer(UNAVAILABLE, 503, access=access)
    layout = document_of(shown).model_dump(mode="json")
    response = jsonify({"basis": shown.basis, "layout": layout, "access": access})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/layout")
def save() -> Response:
    """Save the user's whole layout (cards, pinned tiles, new tab), replacing the previous one,
    or put onto the one saved since the page was drawn."""
    user = _guard("layout_save")
    if isinstance(user, Response):
        return user
    state = portal_state()
    try:
        change = parse_change(_body())
        document = change.document()
        check_document(document, list(state.widgets.values()), state.config)
        based_on = request.headers.get(BASIS_HEADER)  # absent from a page of an older release
        rebase = None if change.base is None else _onto_saved(change.base, document, user)
        saved = save_document(state.database, user.subject, document, based_on, rebase)
    except LayoutRefused as refused:
        outcome = "conflict" if refused.status == 409 else "invalid"
        audit("layout_save", "layout", outcome, reason=str(refused.reason), status=refused.status)
        return _answer(refused.reason, refused.status)
    except StorageUnavailable:
        audit("layout_save", "layout", "unavailable")
        return _answer(UNAVAILABLE, 503)
    fields = {"revision": saved.revision, "basis": layout_basis(saved.document)}
    audit(
        "layout_save",
        "layout",
        "merged" if saved.merged else "ok",
        revision=saved.revision,
        cards=len(saved.document.cards),
    )
    if saved.merged:  # the page shows the layout saved, not its own
        return _answer(MERGED, 200, **fields, layout=saved.document.model_dump(mode="json"))
    return _answer(Reason.of(N_("Layout saved.")), 200, **fields)


@bp.post("/layout/reset")
def reset() -> Response:
    """Forget the user's layout: their team's default applies again."""
    user = _guard("layout_reset")
    if isinstance(user, Response):
        return user
    try:
        reset_document(portal_state().database, user.subject)
    except StorageUnavailable:
        audit("layout_reset", "layout", "unavailable")
        return _answer(UNAVAILABLE, 503)
    audit("layout_reset", "layout", "ok")
    back = Reason.of(N_("Your team's default layout is back."))
    shown = page_layout(user)  # the default, which the page shows in place (no reload)
    if shown.source == "unavailable":
        return _answer(back, 200)
    return _answer(back, 200, basis=shown.basis, layout=document_of(shown).model_dump(mode="json"))
