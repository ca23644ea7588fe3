"""Test-wide settings: no test reads or writes the user's model cache or reaches a real hub."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets an empty model cache and a hub address that nothing listens on."""
    monkeypatch.setenv("DEBERTA_CACHE", str(tmp_path_factory.mktemp("deberta-cache")))
    monkeypatch.setenv("DEBERTA_MODEL_HUB", "http://127.0.0.1:9")
