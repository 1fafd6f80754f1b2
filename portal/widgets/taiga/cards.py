"""What the tasks and deadlines cards share: the board's part, the person's name in Taiga, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from ...config import LANGUAGES
from ...identity import User
from ...upstreams.errors import N_, Reason
from ..contract import Part, PartResult, WidgetContext, WidgetView
from .client import Catalog, TaigaClient
from .upstream import TAIGA, TaigaSettings, match_name
from .work import MyWork, cut, today_in


def taiga_settings(ctx: WidgetContext) -> TaigaSettings:
    section = ctx.config.upstream(TAIGA.name)
    assert isinstance(section, TaigaSettings)
    return section


def taiga_name(ctx: WidgetContext, user: User) -> str | None:
    """The Taiga username this portal user is looked up by (None: their token lacks the claim)."""
    return match_name(taiga_settings(ctx), user)


def board_part(ctx: WidgetContext, user: User) -> Part[Any]:
    """The open work of every project, fetched once for everyone (and for both cards), cut for `user`."""
    client: TaigaClient = ctx.client(TAIGA)
    cut_for = partial(cut, name=taiga_name(ctx, user), claim=taiga_settings(ctx).name_claim)
    return Part("board", "", TAIGA, client.board, select=cut_for, upstream_wide=True)


def tell_missing_claim(view: WidgetView) -> str:
    """When the user's token lacks the claim holding their Taiga username, the card says so in
    words above its "no Taiga account" state (unless a write already has something to say).
    Returns what it adds to the view's version."""
    work = my_work(view)
    if work is None or not work.missing_claim:
        return ""
    if view.notice is None:
        if work.missing_claim == "email":  # match_by: email_local_part
            view.notice = Reason.of(
                N_(
                    "Your account has no verified e-mail address at the team's domain: the portal "
                    "cannot tell your Taiga username. Ask an administrator."
                )
            )
        else:
            view.notice = Reason.of(
                N_(
                    "Your account has no “%(claim)s” claim: the portal cannot tell your Taiga username. "
                    "Ask an administrator."
                ),
                claim=work.missing_claim,
            )
        view.notice_kind = "warning"
    return f"no-claim:{work.missing_claim}"


def catalog_key(language: str) -> str:
    """The catalogue's part key in one language: Taiga names its default statuses in each."""
    return f"catalog-{language}"


CATALOG_KEYS = tuple(catalog_key(language) for language in LANGUAGES)


def catalog_part(ctx: WidgetContext, language: str) -> Part[Any]:
    """The statuses and their colours, named in the card's language ("En cours" where Taiga's own
    French says so): shared by everyone who reads that language, kept fresh longer (they rarely
    change)."""
    client: TaigaClient = ctx.client(TAIGA)
    return Part(
        catalog_key(language),
        "",
        TAIGA,
        partial(client.catalog, language),
        ttl=float(taiga_settings(ctx).catalog_ttl),
        upstream_wide=True,
    )


def catalog_read(view: WidgetView) -> PartResult[Any] | None:
    """The catalogue's part of this view, in whichever language the view was drawn."""
    return next((part for part in view.parts if part.part.key in CATALOG_KEYS), None)


def my_work(view: WidgetView) -> MyWork | None:
    part = view.part("board")
    value = part.value if part is not None else None
    return value if isinstance(value, MyWork) else None


def catalog_of(view: WidgetView) -> Catalog | None:
    part = catalog_read(view)
    value = part.value if part is not None else None
    return value if isinstance(value, Catalog) else None


def view_today(view: WidgetView, ctx: WidgetContext) -> date:
    """Today in the portal's zone, as of the view's clock step (never the wall clock)."""
    now = view.now or datetime.now(UTC)
    return today_in(now, ctx.config.portal.timezone)
