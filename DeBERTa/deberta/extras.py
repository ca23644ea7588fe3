"""Optional dependencies: imported where they are used, with one line naming the extra that installs them.

The package's own dependencies cover the model, the tokenizers and training. What not every user needs
(matplotlib for the report, ninja for the compiled CPU kernel, onnx for the export) is an extra of the
distribution (``[project.optional-dependencies]`` in pyproject.toml); :func:`require` imports such a module
at the point of use, so that importing the package never needs it, and a missing one is a
:class:`~DeBERTa.deberta.errors.DeBERTaError` that says what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import DeBERTaError

DISTRIBUTION = "deberta"
"""The name the package is installed under, as ``pip install`` spells it."""


class MissingExtraError(DeBERTaError):
    """An optional dependency is not installed; the message names the ``pip install`` that adds it."""


def install_command(extra: str) -> str:
    """The command that installs ``extra``: ``pip install "deberta[report]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib"``) of the optional dependency group ``extra`` (e.g. ``"report"``).

    ``purpose`` says what it is needed for, in the error ("the report's figures"). Only the absence of
    ``module`` itself (or of its top-level package) becomes :class:`MissingExtraError`; a module that is
    installed but fails to import is named as such, so a broken install is not mistaken for a missing one.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        for_what = f" (needed for {purpose})" if purpose else ""
        top_level = module.split(".")[0]
        if isinstance(error, ModuleNotFoundError) and error.name in (module, top_level):
            raise MissingExtraError(
                f"{top_level} is not installed{for_what}; install it with: {install_command(extra)}"
            ) from None
        raise MissingExtraError(
            f"{module} is installed but cannot be imported{for_what}: {error}"
        ) from error
