"""The tasks card's own routes: the quick status change, the kept sort, and Taiga's webhook."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ...identity import User, current_user
from ...state import portal_state
from ...upstreams.errors import N_, Reason
from ...web.guard import audit, write_refusal
from ...web.i18n import select_locale
from ..contract import WidgetContext, upstream_key
from ..taiga import hooks
from ..taiga.cards import taiga_name
from ..taiga.client import Board, Kind, TaigaClient, WorkItem
from ..taiga.keeping import StorageMissing, keeper
from ..taiga.upstream import TAIGA
from ..taiga.work import SORTS
from ..writes import Unchanged, WriteRefused, widget_write
from .widget import KINDS, TasksWidget


def register(widget: TasksWidget, blueprint: Blueprint) -> None:
    def set_status(kind: str, item_id: int) -> Response:
        """Change the status of one of my items (checked against Taiga's data), with the version I saw."""
        return change_status(widget, kind, item_id)

    blueprint.add_url_rule(
        "/widgets/tasks/<kind>/<int:item_id>/status", "set_status", set_status, methods=["POST"]
    )

    def save_sort() -> Response:
        """Keep my sort of the card for every device (in the portal's database)."""
        return keep_sort(widget)

    blueprint.add_url_rule("/widgets/tasks/sort", "save_sort", save_sort, methods=["POST"])
    hooks.register(blueprint)


def change_status(widget: TasksWidget, kind: str, item_id: int) -> Response:
    try:
        status = int(request.form.get("status", ""))
        version = int(request.form.get("version", ""))
    except ValueError:
        status = version = -1
    item_kind: Kind = next((known for known in KINDS if known == kind), "task")
    valid = kind in KINDS and status > 0 and version >= 0
    made: list[WorkItem] = []  # the item as Taiga answered the change (or already held it)

    def change(ctx: WidgetContext, user: User) -> Reason | Unchanged | None:
        if not valid:
            raise WriteRefused(Reason.of(N_("This change is not valid.")))
        client: TaigaClient = ctx.client(TAIGA)
        name = taiga_name(ctx, user)
        person = client.user_by_username(name) if name else None
        language = str(select_locale())  # the notice names the status as Taiga does in it
        current = client.item(item_kind, item_id, language)  # Taiga's data, not what the form says
        if person is None or person.id not in current.assignees:
            raise WriteRefused(Reason.of(N_("Only items assigned to you can be changed here.")))
        # Already so (this change sent again after its answer was lost, or the same change made
        # in Taiga meanwhile): nothing to write, and nothing of anyone's is overwritten.
        if current.status == status:
            made.append(current)
            return Unchanged(
                Reason.of(
                    N_("“%(subject)s” is now %(status)s."),
                    subject=current.subject,
                    status=current.status_name,
                )
            )
        updated = client.set_status(item_kind, item_id, status, version, language)
        made.append(updated)
        return Reason.of(
            N_("“%(subject)s” is now %(status)s."), subject=updated.subject, status=updated.status_name
        )

    return widget_write(
        widget,
        action="set_status",
        target=f"{kind} {item_id}",
        upstream=TAIGA,
        touches=[upstream_key(TAIGA, "board")],
        change=change,
        row=f"{item_kind}-{item_id}",
        amend=lambda _key, board: board.with_status_of(made[0])
        if made and isinstance(board, Board)
        else board,
    )


def keep_sort(widget: TasksWidget) -> Response:
    """The sort chosen on the card, kept per person (the card itself re-sorts through its poll)."""
    ctx = portal_state().widgets[widget.slug]
    sort = request.form.get("sort", "")
    refusal = write_refusal(ctx.settings.roles)
    if refusal is None and sort not in SORTS:
        refusal = Reason.of(N_("This change is not valid."))
    user = current_user()
    if refusal is not None or user is None:
        audit("save_sort", f"sort {sort[:20]}", "refused", widget=widget.slug, reason=str(refusal))
        return Response(status=403)
    try:
        keeper().save_sort(user, sort)
    except StorageMissing:
        audit("save_sort", f"sort {sort}", "no_storage", widget=widget.slug)
        return Response(status=503)
    audit("save_sort", f"sort {sort}", "ok", widget=widget.slug)
    return Response(status=204)
