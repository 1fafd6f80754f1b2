"""The page itself: navbar, tiles and one empty card per widget (no upstream I/O)."""

from .views import bp

__all__ = ["bp"]
