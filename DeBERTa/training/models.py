"""Model configs from the command line: a preset or a JSON file in either layout, and partial overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from torch import nn

from DeBERTa import deberta
from DeBERTa.deberta import DeBERTaError
from DeBERTa.deberta.config import PRESETS


class ModelConfigError(DeBERTaError):
    """A --model_config that is neither a preset nor a readable config file."""


def config_of(model: nn.Module) -> deberta.ModelConfig:
    """``model.config`` of one of the library's models (typed: nn.Module types every attribute it does not
    declare as a tensor or a module)."""
    return cast(deberta.ModelConfig, model.config)


def read_model_config(name_or_file: str) -> deberta.ModelConfig:
    """--model_config: a preset name (tiny, small, base, large, …) or a JSON file in either layout."""
    if name_or_file in PRESETS:
        config = deberta.ModelConfig.preset(name_or_file)
    elif not Path(name_or_file).is_file():
        known = ", ".join(PRESETS)
        raise ModelConfigError(f"--model_config {name_or_file}: neither a JSON file nor a preset ({known})")
    else:
        config = deberta.ModelConfig.from_json_file(name_or_file)
    # Before a model is built: a size this machine cannot hold is one line, not an allocation of tens of GB.
    config.check_fits_in_memory(what=f"--model_config {name_or_file}")
    return config


def override_config(checkpoint: deberta.ModelConfig, name_or_file: str) -> deberta.ModelConfig:
    """The checkpoint's config with the keys that --model_config sets (the original scripts pass partial
    files such as ``{"pooling": {"dropout": 0}}``). Architecture keys must agree (checked on loading)."""
    if name_or_file in PRESETS or not Path(name_or_file).is_file():
        return read_model_config(name_or_file)
    try:
        overrides = json.loads(Path(name_or_file).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelConfigError(f"--model_config {name_or_file}: not valid JSON ({err})") from None
    if not isinstance(overrides, dict):
        raise ModelConfigError(f"--model_config {name_or_file}: expected a JSON object")
    if isinstance(overrides.get("pooling"), dict):  # the original layout nests the pooler
        merged = checkpoint.to_original_dict()
        merged["pooling"] = {**merged["pooling"], **overrides.pop("pooling")}
    else:
        merged = checkpoint.to_hf_dict()
    merged.update(overrides)
    return deberta.ModelConfig.from_dict(merged)
