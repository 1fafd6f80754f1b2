"""The warm-up at start: a new worker's first page and cards compile no template."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import Environment

from portal.config import LANGUAGES
from portal.web.i18n import LANGUAGE_COOKIE
from portal.web.warm_up import template_environments, warm_up
from portal.widgets import WIDGETS


def _refuse_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def compile_refused(self: Environment, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a template was compiled while answering a request")

    monkeypatch.setattr(Environment, "compile", compile_refused)


def _every_page(client: FlaskClient) -> None:
    for code in LANGUAGES:
        client.set_cookie(LANGUAGE_COOKIE, code)
        assert client.get("/").status_code == 200
        for widget in WIDGETS:
            answer = client.get(f"/widgets/{widget.slug}", headers={"HX-Request": "true"})
            assert answer.status_code == 200, widget.slug


def test_after_the_warm_up_no_request_compiles_a_template(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    warmed = warm_up(app)
    assert warmed.languages == len(LANGUAGES)
    assert warmed.templates == sum(
        len(env.list_templates(extensions=["html"])) for env in template_environments(app)
    )
    _refuse_compiling(monkeypatch)
    _every_page(client)


def test_without_it_the_first_page_compiles_its_templates(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the check above would see a compilation."""
    _refuse_compiling(monkeypatch)
    with pytest.raises(AssertionError, match="compiled while answering"):
        client.get("/")
