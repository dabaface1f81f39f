"""The store's one time convention: naive UTC, from the wall clock (which tests move)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """Now, naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)
