"""Shared helpers for page-db tests."""

from __future__ import annotations

import hypothesis

hypothesis.settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.register_profile("dev", max_examples=30, deadline=None)
hypothesis.settings.register_profile("long", max_examples=2000, deadline=None)
hypothesis.settings.load_profile("ci")


def fill(page_id: int, version: int, size: int) -> bytes:
    """A recognisable payload for ``page_id`` at ``version``."""
    seed = f"{page_id}:{version}:".encode()
    return (seed * (size // len(seed) + 1))[:size]
