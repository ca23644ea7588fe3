"""The training package's one-line errors (the apps print them as ``error: …`` and exit 2)."""

from __future__ import annotations

from DeBERTa.deberta import DeBERTaError


class OptionsError(DeBERTaError):
    """An option value, or a combination of options, that cannot work."""


class DataError(DeBERTaError):
    """Unusable input data: a missing dir or file, a malformed row, an unknown label, an empty corpus."""
