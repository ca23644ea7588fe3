"""Fault suite of model configs, checkpoints and the data readers of the task kinds: a config whose model cannot fit
in memory, wrong types in config.json, a damaged, integer or non-finite weights file (the library and the export
app), a file-system refusal in any app, and data files that are not UTF-8 or hold a lone surrogate. Each is one
line naming what and where (file, key, line), never a traceback; a refused export writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from fault_promise import assert_refused, run_app, snapshot
from safetensors.torch import load_file, save_file

from DeBERTa import deberta
from DeBERTa.apps import cli
from DeBERTa.apps.tasks.choice import read_race, read_swag
from DeBERTa.apps.tasks.kinds import DataError, read_json_file
from DeBERTa.deberta.config import ConfigError, ModelConfig
from DeBERTa.deberta.pretrained import CheckpointError
from DeBERTa.training.models import read_model_config

TINY = ModelConfig.preset("tiny")


# -- the size of a model, before it is built ----------------------------------------------------------------------

@pytest.mark.parametrize("config", [
    TINY, ModelConfig.preset("v3-tiny"),
    dataclasses.replace(TINY, embedding_size=16, type_vocab_size=2, position_biased_input=True),
    dataclasses.replace(TINY, pos_att_type=("c2p",)), dataclasses.replace(TINY, relative_attention=False),
    ModelConfig.preset("v3-tiny", share_att_key=False),
    ModelConfig.preset("v3-tiny", conv_kernel_size=3, conv_groups=2),
], ids=["v1", "v3", "v1-embedding-projection", "v1-c2p", "v1-absolute", "v3-own-position-keys", "v2-conv"])
def test_the_parameter_count_from_the_config_is_the_models(config: ModelConfig) -> None:
    assert config.parameter_count() == sum(p.numel() for p in deberta.DeBERTa(config).parameters())
    assert config.estimated_bytes() == 4 * config.parameter_count()


def test_a_model_that_cannot_fit_is_one_line_naming_the_estimate_and_the_limit() -> None:
    huge = ModelConfig(hidden_size=1_000_000, num_attention_heads=4)
    with pytest.raises(ConfigError) as err:
        huge.check_fits_in_memory(available=64 * 2**30, what="model_config.json")
    message = str(err.value)
    assert "\n" not in message and message.startswith("model_config.json needs about ")
    assert "hidden_size 1000000" in message and "only 64.0 GiB of memory is available" in message
    TINY.check_fits_in_memory(available=64 * 2**20)  # 6 MiB of parameters fit in 64 MiB
    TINY.check_fits_in_memory()  # and in this machine's memory


def test_a_config_file_of_a_huge_model_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 1_000_000, "num_attention_heads": 4, "num_hidden_layers": 24}))
    with pytest.raises(ConfigError, match=r"^--model_config .*config.json needs about [\d,.]+ GiB .* available$"):
        read_model_config(str(path))


@pytest.mark.parametrize(("document", "expected"), [
    ([1, 2], "a model config is a JSON object of keys and values, not a list"),
    ({"hidden_size": "768"}, "config key hidden_size: '768' is not an integer"),
    ({"hidden_size": 76.8}, "config key hidden_size: 76.8 is not an integer"),
    ({"num_attention_heads": None}, "config key num_attention_heads: None is not an integer"),
    ({"num_attention_heads": 0}, "config key num_attention_heads: 0 must be at least 1"),
    ({"num_hidden_layers": True}, "config key num_hidden_layers: True is not an integer"),
    ({"pos_att_type": 5}, "config key pos_att_type: 5 is not a list of names"),
    ({"pos_att_type": ["c2p", 3]}, "config key pos_att_type: ['c2p', 3] is not a list of names"),
    ({"hidden_dropout_prob": 2}, "config key hidden_dropout_prob: 2 is not a probability in [0, 1)"),
    ({"layer_norm_eps": "tiny"}, "config key layer_norm_eps: 'tiny' is not a number"),
    ({"padding_idx": 10**6}, "config key padding_idx: 1000000 is not an id of the vocabulary of 50265"),
    ({"embedding_size": -1}, "config key embedding_size: -1 must be at least 1"),
], ids=["list", "str", "float", "null", "zero-heads", "bool", "terms-int", "terms-mixed", "dropout", "eps", "padding",
        "embedding"])
def test_a_config_file_with_wrong_types_is_one_line_naming_the_file_and_key(tmp_path: Path, document: object,
                                                                            expected: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as err:
        ModelConfig.from_json_file(path)
    assert str(err.value) == f"{path}: {expected}" or str(err.value).startswith(f"{path}: {expected}")


def test_a_config_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"\xff\xfe\x00{}")
    with pytest.raises(ConfigError, match="config.json: not UTF-8 text"):
        ModelConfig.from_json_file(path)


# -- damaged and odd weights ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classification checkpoint in Hugging Face's layout."""
    folder = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    model = deberta.SequenceClassificationModel(TINY, num_labels=2)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    TINY.save(folder / "config.json", layout="hf")
    return folder


def damaged(checkpoint: Path, tmp_path: Path, fault: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes((checkpoint / "config.json").read_bytes())
    weights = (checkpoint / "model.safetensors").read_bytes()
    if fault == "truncated":
        (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    elif fault == "garbage":
        (folder / "model.safetensors").write_bytes(random.Random(0).randbytes(3000))
    elif fault in ("int32", "nan", "inf"):
        tensors = load_file(str(checkpoint / "model.safetensors"))
        key = "deberta.encoder.layer.1.output.dense.weight"
        if fault == "int32":
            tensors[key] = tensors[key].to(torch.int32)
        else:
            tensors[key][0, 0] = float(fault)
        save_file(tensors, str(folder / "model.safetensors"))
    elif fault in ("bin-list", "bin-tensor"):
        torch.save([1, 2] if fault == "bin-list" else torch.zeros(2), folder / "pytorch_model.bin")
    elif fault == "huge":
        (folder / "model.safetensors").write_bytes(weights)
        config = json.loads((checkpoint / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "hidden_size": 2**22, "vocab_size": 2**20}))
    return folder


FAULTS = {
    "truncated": "model.safetensors: not a readable safetensors file (",
    "garbage": "model.safetensors: not a readable safetensors file (",
    "int32": "model.safetensors: deberta.encoder.layer.1.output.dense.weight holds int32 values; a DeBERTa parameter "
             "is floating point",
    "nan": "model.safetensors: deberta.encoder.layer.1.output.dense.weight holds 1 NaN or infinite value(s) of 2048",
    "inf": "model.safetensors: deberta.encoder.layer.1.output.dense.weight holds 1 NaN or infinite value(s)",
    "bin-list": "pytorch_model.bin: holds a list, not a mapping of tensor names to tensors",
    "bin-tensor": "pytorch_model.bin: holds a Tensor, not a mapping",
    "huge": "config.json needs about ",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_damaged_or_odd_checkpoint_is_one_line_naming_the_file_and_key(checkpoint: Path, tmp_path: Path,
                                                                        fault: str) -> None:
    folder = damaged(checkpoint, tmp_path, fault)
    with pytest.raises(deberta.DeBERTaError) as err:
        deberta.load_model_state(folder)
    assert "\n" not in str(err.value) and FAULTS[fault] in str(err.value)
    assert isinstance(err.value, CheckpointError | ConfigError)


@pytest.mark.parametrize("fault", ["truncated", "int32", "nan", "bin-list", "huge"])
def test_export_of_a_damaged_checkpoint_is_one_line_and_writes_nothing(checkpoint: Path, tmp_path: Path,
                                                                      fault: str) -> None:
    folder = damaged(checkpoint, tmp_path, fault)
    before = snapshot(tmp_path)
    result = run_app("DeBERTa.apps.export", [str(folder), str(tmp_path / "hf")])
    assert_refused(result, FAULTS[fault], unchanged=(before, lambda: snapshot(tmp_path)), stdout_empty=False)


@pytest.mark.parametrize("id2label", [["no", "yes"], {"zero": "no", "one": "yes"}, {"0": "no", "2": "yes"}],
                         ids=["list", "words", "gap"])
def test_export_refuses_a_malformed_id2label(checkpoint: Path, tmp_path: Path, id2label: object) -> None:
    folder = tmp_path / "model"
    shutil.copytree(checkpoint, folder)  # no vocabulary: the labels are checked before the tokenizer is read
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "id2label": id2label}))
    before = snapshot(tmp_path)
    result = run_app("DeBERTa.apps.export", [str(folder), str(tmp_path / "hf")])
    assert_refused(result, "config.json: id2label must map the class ids",
                   unchanged=(before, lambda: snapshot(tmp_path)), stdout_empty=False)


def test_the_intact_checkpoint_loads(checkpoint: Path) -> None:
    state, config = deberta.load_model_state(checkpoint)
    assert config == TINY and state["deberta.embeddings.word_embeddings.weight"].dtype == torch.float32


# -- apps: the file system's refusals, numbers that are not numbers ------------------------------------------------

def test_a_file_system_refusal_in_an_app_is_one_line_with_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    def body(argv: list[str]) -> int:
        raise PermissionError(13, "Permission denied", "/runs/out")

    assert cli.run(body, []) == 2
    assert capsys.readouterr().err == "error: /runs/out: Permission denied\n"


def test_evaluate_refuses_a_threshold_that_is_not_a_number(tmp_path: Path) -> None:
    (tmp_path / "gold.json").write_text('{"data": []}')
    (tmp_path / "pred.json").write_text("{}")
    result = run_app("DeBERTa.apps.evaluate", ["squad", str(tmp_path / "gold.json"), str(tmp_path / "pred.json"),
                                               "--na-prob-thresh", "nan"])
    assert_refused(result, "--na-prob-thresh nan is not a finite number")


# -- data files: bytes that are not UTF-8, lone surrogates ----------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    (b'{"a":\n "x\\ud800y"}', ":2: \\uD800 at column 4 is half of a surrogate pair"),
    (b'{"a": "\\udc00"}', ":1: \\uDC00 at column 8 is half of a surrogate pair"),
    (b'{"a": 1,\n"b": 2,\n"c": "\xff"}', ":3: not UTF-8 text (bad byte at column 7)"),
], ids=["high", "low", "bad-byte"])
def test_a_json_data_file_that_is_not_unicode_text_is_named_by_line(tmp_path: Path, content: bytes,
                                                                    expected: str) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_json_file(path)
    assert str(err.value) == f"{path}{expected}" or str(err.value).startswith(f"{path}{expected}")


def test_valid_escapes_read_as_the_text_they_stand_for(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(b'{"pair": "\\ud83d\\ude00", "backslash": "\\\\ud800", "bom": true}')
    assert read_json_file(path) == {"pair": "😀", "backslash": "\\ud800", "bom": True}


def test_race_and_swag_files_name_the_line(tmp_path: Path) -> None:
    race = tmp_path / "race" / "middle"
    race.mkdir(parents=True)
    (race / "1.txt").write_text('{"article": "x \\ud800", "questions": ["q"], "options": [["a", "b", "c", "d"]], '
                                '"answers": ["A"]}')
    with pytest.raises(DataError, match=r"1.txt:1: \\uD800 at column 16 is half of a surrogate pair"):
        read_race(tmp_path / "race")
    swag = tmp_path / "train.csv"
    swag.write_bytes(b",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"
                     b"0,v,1,s,He runs,He,gold,fast,slow,up,down,0\n1,v,1,s,\xffHe,He,gold,a,b,c,d,1\n")
    with pytest.raises(DataError, match=r"train.csv:3: not UTF-8 text \(bad byte at column 9\)"):
        read_swag(swag)


def test_the_library_exports_its_error_types() -> None:
    assert issubclass(deberta.TokenizerInputError, ValueError)
    for name in ("TokenizerInputError", "TokenizerError", "ConfigError", "CheckpointError", "DownloadError",
                 "FileNotOnHub", "CachedFileError", "MissingExtraError"):
        assert issubclass(getattr(deberta, name), deberta.DeBERTaError) and name in deberta.__all__
