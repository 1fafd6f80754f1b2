"""Application helpers shared by tests."""

from __future__ import annotations

from flask import Flask, abort


def add_failing_routes(app: Flask, prefix: str) -> Flask:
    """`<prefix>/403` is refused and `<prefix>/500` is a bug, the ways real views fail."""

    @app.get(f"{prefix}/403")
    def forbidden() -> str:
        abort(403)

    @app.get(f"{prefix}/500")
    def broken() -> str:
        raise RuntimeError("a bug, on purpose")

    return app
