"""The model hub client against a real local HTTP server: cache, resume, verification, locks, offline, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import HubServer

from DeBERTa.apps import download
from DeBERTa.deberta import hub
from DeBERTa.deberta.errors import DeBERTaError

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE = "microsoft/deberta-base"


def torch_file(size: int) -> bytes:
    """A zip of random bytes, shaped like a torch.save file: the hub checks the format, never unpickles."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data/0", os.urandom(size))
    return buffer.getvalue()


CONFIG = json.dumps({"hidden_size": 32, "num_hidden_layers": 2}).encode()
WEIGHTS = torch_file(256 * 1024)
VOCAB = torch_file(20 * 1024)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A local hub with the three files of ``base``; the environment points at it, online, rank 0."""
    with HubServer() as running:
        running.add_file(BASE, "config.json", CONFIG)
        running.add_file(BASE, "pytorch_model.bin", WEIGHTS)
        running.add_file(BASE, "bpe_encoder.bin", VOCAB)
        for key, value in running.environ(tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("LOCAL_RANK", raising=False)
        yield running


def model_dir(name: str = "base") -> Path:
    return hub.cache_dir() / "models" / name


def leftovers(name: str = "base") -> list[str]:
    """Everything in a model's cache folder except lock files (which are harmless and reused)."""
    root = model_dir(name)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


def assert_one_line(err: pytest.ExceptionInfo[DeBERTaError], *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def run_python(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start a fresh interpreter with these arguments, the repository importable and ``env`` added."""
    return subprocess.Popen([sys.executable, *arguments], env={**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)},
                            cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_names_settings_and_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for spelling, name in [("base", "base"), ("Large", "large"), ("base-mnli", "base_mnli"),
                           ("large_mnli", "large_mnli"), ("microsoft/deberta-base-mnli", "base_mnli"),
                           ("deberta-xlarge", "xlarge"), (" microsoft/deberta-xlarge-mnli ", "xlarge_mnli")]:
        assert hub.canonical_name(spelling) == name
    for spelling, name in [("deberta-v3-base", "deberta-v3-base"), ("microsoft/deberta-v3-xsmall", "deberta-v3-xsmall"),
                           ("v3-large", "deberta-v3-large"), ("deberta_v3_small", "deberta-v3-small"),
                           ("MDeBERTa-v3-base", "mdeberta-v3-base"), ("deberta-v2-xlarge", "deberta-v2-xlarge"),
                           ("microsoft/deberta-v2-xxlarge-mnli", "deberta-v2-xxlarge-mnli"),
                           ("v2-xlarge-mnli", "deberta-v2-xlarge-mnli"),
                           ("v2-xxlarge_mnli", "deberta-v2-xxlarge-mnli")]:  # as the GLUE recipes spell it
        assert hub.canonical_name(spelling) == name
    for not_a_name in ["./base", "/models/base", "microsoft/deberta-v3-huge", "deberta-v4-base", "v3", ""]:
        assert hub.canonical_name(not_a_name) is None
    assert hub.model_files("base") == hub.MODEL_FILES
    assert hub.model_files("v3-base") == ("config.json", "pytorch_model.bin", "spm.model", "tokenizer_config.json")
    assert hub.HUB_MODELS["mdeberta-v3-base"].repo == "microsoft/mdeberta-v3-base"
    assert {model.family for model in hub.HUB_MODELS.values()} == {"v1", "v2", "v3"}

    monkeypatch.delenv("DEBERTA_MODEL_HUB")
    monkeypatch.delenv("DEBERTA_CACHE")
    monkeypatch.setenv("HOME", "/home/someone")
    assert hub.hub_url() == "https://huggingface.co"
    assert hub.cache_dir() == Path("/home/someone/.~DeBERTa")
    assert hub.file_url("base-mnli", "config.json") == \
        "https://huggingface.co/microsoft/deberta-base-mnli/resolve/main/config.json"
    monkeypatch.setenv("DEBERTA_MODEL_HUB", "http://mirror.local/hf/")
    monkeypatch.setenv("DEBERTA_CACHE", "/scratch/cache")
    assert hub.file_url("large", "pytorch_model.bin") == \
        "http://mirror.local/hf/microsoft/deberta-large/resolve/main/pytorch_model.bin"
    assert hub.cache_dir() == Path("/scratch/cache")

    for variable in ("DEBERTA_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv("DEBERTA_OFFLINE", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        assert not hub.is_offline()
        monkeypatch.setenv(variable, "0")
        assert not hub.is_offline()
        monkeypatch.setenv(variable, "1")
        assert hub.is_offline()

    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base-v3", "config.json")
    assert_one_line(err, "unknown model 'base-v3'", "base, large", "deberta-v3-base")
    for bad_file in ["../config.json", ".hub", ""]:
        with pytest.raises(hub.DownloadError, match="invalid file name"):
            hub.fetch("base", bad_file)


def test_an_unwritable_cache_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("DEBERTA_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "config.json")
    assert_one_line(err, "cannot write to the model cache", "set DEBERTA_CACHE to a writable folder")


def test_first_fetch_downloads_and_second_does_not_touch_the_network(server: HubServer) -> None:
    folder = hub.fetch_model("base")
    assert folder == model_dir()
    assert (folder / "config.json").read_bytes() == CONFIG
    assert (folder / "pytorch_model.bin").read_bytes() == WEIGHTS
    assert (folder / "bpe_encoder.bin").read_bytes() == VOCAB
    assert [server.count(f) for f in hub.MODEL_FILES] == [1, 1, 1]
    # Only the model's files and their records: no partial file is left behind.
    assert leftovers() == [".hub/bpe_encoder.bin.json", ".hub/config.json.json", ".hub/pytorch_model.bin.json",
                           "bpe_encoder.bin", "config.json", "pytorch_model.bin"]
    record = json.loads((folder / ".hub/pytorch_model.bin.json").read_text())
    assert record["url"] == f"{server.url}/{BASE}/resolve/main/pytorch_model.bin"
    assert record["size"] == len(WEIGHTS)
    assert record["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert record["sha256_verified"] is True  # published by the redirect's X-Linked-Etag
    # config.json's ETag is a git object id, not a SHA-256: recorded, not claimed as verified.
    assert json.loads((folder / ".hub/config.json.json").read_text())["sha256_verified"] is False

    requests_so_far = len(server.hits)
    assert hub.fetch_model("microsoft/deberta-base") == folder
    assert hub.fetch("base", "pytorch_model.bin") == folder / "pytorch_model.bin"
    assert len(server.hits) == requests_so_far
    assert hub.cached_files("base") == {"bpe_encoder.bin": len(VOCAB), "config.json": len(CONFIG),
                                        "pytorch_model.bin": len(WEIGHTS)}


def test_a_mirror_without_the_vocabulary_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubServer() as server:
        server.add_file(BASE, "config.json", CONFIG)
        server.add_file(BASE, "pytorch_model.bin", WEIGHTS)
        for key, value in server.environ(tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        folder = hub.fetch_model("base")
        assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["config.json", "pytorch_model.bin"]
        assert server.count("bpe_encoder.bin") == 1
        hub.fetch_model("base")
        assert server.count("bpe_encoder.bin") == 1  # the 404 was remembered
        with pytest.raises(hub.FileNotOnHub) as err:  # an explicit request still asks the hub
            hub.fetch("base", "bpe_encoder.bin")
        assert_one_line(err, "bpe_encoder.bin", "'base'", "HTTP 404",
                        f"{server.url}/{BASE}/resolve/main/bpe_encoder.bin")
        assert server.count("bpe_encoder.bin") == 2


@pytest.mark.parametrize("ignore_range", [False, True], ids=["resumes", "server-ignores-range"])
def test_a_dropped_connection_is_resumed(server: HubServer, ignore_range: bool) -> None:
    half = len(WEIGHTS) // 2
    server.drop_after["pytorch_model.bin"] = half
    server.ignore_range = ignore_range
    path = hub.fetch("base", "pytorch_model.bin", progress=False)
    assert path.read_bytes() == WEIGHTS
    ranges = [hit.range for hit in server.hits if hit.kind == "cdn"]
    assert ranges == [None, f"bytes={half}-"]
    assert leftovers() == [".hub/pytorch_model.bin.json", "pytorch_model.bin"]


def test_a_resume_from_the_wrong_byte_is_discarded(server: HubServer) -> None:
    server.drop_after["pytorch_model.bin"] = 1000
    server.misaligned_range = True
    assert hub.fetch("base", "pytorch_model.bin").read_bytes() == WEIGHTS
    assert [hit.range for hit in server.hits if hit.kind == "cdn"] == [None, "bytes=1000-", None]


def test_a_damaged_cached_file_is_fetched_again_and_a_hand_placed_one_is_used(server: HubServer) -> None:
    path = hub.fetch("base", "pytorch_model.bin")
    path.write_bytes(WEIGHTS[:1000])  # e.g. a copy of the cache that ran out of disk space
    assert hub.fetch("base", "pytorch_model.bin").read_bytes() == WEIGHTS
    assert server.count("pytorch_model.bin") == 2

    by_hand = model_dir("large") / "config.json"
    by_hand.parent.mkdir(parents=True)
    by_hand.write_bytes(CONFIG)
    assert hub.fetch("large", "config.json") == by_hand
    assert server.count("config.json") == 0


def test_a_partial_file_longer_than_the_remote_one_is_restarted(server: HubServer) -> None:
    part = model_dir() / ".hub" / "config.json.part"
    part.parent.mkdir(parents=True)
    stale = CONFIG + b"bytes of an older, longer file"
    part.write_bytes(stale)
    assert hub.fetch("base", "config.json").read_bytes() == CONFIG
    # The server answers 416 to the resume; the client drops the partial file and starts over.
    assert [hit.range for hit in server.hits] == [f"bytes={len(stale)}-", None]


def test_a_killed_download_leaves_nothing_trusted_and_resumes(server: HubServer) -> None:
    server.seconds_per_chunk = 0.05  # 16 chunks: about 0.8 s, time enough to kill the download
    child = run_python(["-c", "from DeBERTa.deberta import hub; hub.fetch('base', 'pytorch_model.bin')"],
                       server.environ(hub.cache_dir()))
    part = model_dir() / ".hub" / "pytorch_model.bin.part"
    deadline = time.monotonic() + 15
    while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    assert not (model_dir() / "pytorch_model.bin").exists()
    assert hub.cached_files("base") == {}
    kept = part.stat().st_size
    assert 0 < kept < len(WEIGHTS)

    server.seconds_per_chunk = 0.0
    assert hub.fetch("base", "pytorch_model.bin").read_bytes() == WEIGHTS
    assert server.hits[-1].range == f"bytes={kept}-"


@pytest.mark.parametrize("redirect_lfs", [True, False], ids=["x-linked-etag", "etag"])
def test_a_wrong_sha256_is_rejected_and_the_cache_stays_clean(server: HubServer, redirect_lfs: bool) -> None:
    server.redirect_lfs = redirect_lfs
    server.advertised_sha256["pytorch_model.bin"] = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "pytorch_model.bin")
    assert_one_line(err, "base/pytorch_model.bin", "corrupt", "SHA-256", hashlib.sha256(WEIGHTS).hexdigest())
    assert leftovers() == []
    assert hub.cached_files("base") == {}

    del server.advertised_sha256["pytorch_model.bin"]  # the hub is fixed: a new run succeeds
    assert hub.fetch("base", "pytorch_model.bin").read_bytes() == WEIGHTS


@pytest.mark.parametrize("announced", [len(WEIGHTS) + 1, len(WEIGHTS) - 1])
def test_a_wrong_size_is_rejected_and_the_cache_stays_clean(server: HubServer, announced: int) -> None:
    server.advertised_size["pytorch_model.bin"] = announced
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "pytorch_model.bin")
    assert_one_line(err, "corrupt", f"{len(WEIGHTS)} bytes instead of the {announced}")
    assert leftovers() == []


def test_server_errors_are_retried_with_a_bound(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.statuses["config.json"] = [503, 500]
    assert hub.fetch("base", "config.json").read_bytes() == CONFIG
    assert server.count("config.json") == 3

    monkeypatch.setenv("DEBERTA_DOWNLOAD_RETRIES", "3")
    server.statuses["pytorch_model.bin"] = [502] * 10
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "pytorch_model.bin")
    assert_one_line(err, "after 3 tries", "HTTP 502", "python -m DeBERTa.apps.download base")
    assert server.count("pytorch_model.bin") == 3


def test_404_is_one_clear_line(server: HubServer) -> None:
    with pytest.raises(hub.FileNotOnHub) as err:
        hub.fetch("large-mnli", "config.json")
    assert_one_line(err, "config.json", "'large_mnli'", "HTTP 404",
                    f"{server.url}/microsoft/deberta-large-mnli/resolve/main/config.json")


@pytest.mark.parametrize("variable", ["DEBERTA_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_uses_the_cache_and_names_what_is_missing(
        server: HubServer, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "1")
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch_model("base-mnli")
    assert_one_line(err, "config.json", "'base_mnli'", f"downloads are off ({variable}=1;",
                    f"{server.url}/microsoft/deberta-base-mnli/resolve/main/config.json",
                    "python -m DeBERTa.apps.download base_mnli", "DEBERTA_MODEL_HUB", "local model folder")
    assert server.hits == []

    monkeypatch.setenv(variable, "0")
    hub.fetch_model("base")
    monkeypatch.setenv(variable, "1")
    requests_so_far = len(server.hits)
    assert hub.fetch_model("base") == model_dir()
    assert len(server.hits) == requests_so_far


def test_an_unreachable_hub_gives_one_line_and_the_cache_still_works(
        server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.fetch_model("base")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("DEBERTA_MODEL_HUB", dead)
    monkeypatch.setenv("DEBERTA_DOWNLOAD_RETRIES", "2")
    assert hub.fetch_model("base") == model_dir()
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("large", "config.json")
    assert_one_line(err, "large/config.json", f"{dead}/microsoft/deberta-large/resolve/main/config.json",
                    "after 2 tries", "python -m DeBERTa.apps.download large")


def test_two_processes_download_once(server: HubServer, tmp_path: Path) -> None:
    server.seconds_per_chunk = 0.02  # the download lasts ~0.3 s, so both processes want it at once
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    code = (
        "import os, sys, time, pathlib\n"
        "from DeBERTa.deberta import hub\n"
        f"barrier = pathlib.Path({str(barrier)!r})\n"
        "(barrier / sys.argv[1]).touch()\n"
        "while len(list(barrier.iterdir())) < 2: time.sleep(0.005)\n"
        "print(hub.fetch('base', 'pytorch_model.bin'))\n"
    )
    children = [run_python(["-c", code, str(rank)], server.environ(hub.cache_dir())) for rank in range(2)]
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    paths = {out.strip() for out, _ in outputs}
    assert paths == {str(model_dir() / "pytorch_model.bin")}
    assert server.count("pytorch_model.bin") == 1
    assert (model_dir() / "pytorch_model.bin").read_bytes() == WEIGHTS


@pytest.mark.parametrize("local_rank", [None, "0", "3"])
def test_only_local_rank_zero_draws_progress_bars(
        server: HubServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        local_rank: str | None) -> None:
    if local_rank is not None:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    hub.fetch("base", "pytorch_model.bin")
    drew = "base/pytorch_model.bin" in capsys.readouterr().err
    assert drew == (local_rank != "3")


def test_cli_list_and_download(server: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert download.main(["--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == f"hub:   {server.url}"
    assert listing[1] == f"cache: {hub.cache_dir() / 'models'}"
    assert listing[2].endswith(str(hub.hf_cache_dir()))
    assert [line.split()[:4] for line in listing[3:]] == [
        [name, model.repo, model.family, "(not"] for name, model in hub.HUB_MODELS.items()]

    assert download.main(["base", "--files", "config.json", "--quiet"]) == 0
    assert capsys.readouterr().out == f"base: {model_dir()}\n"
    assert [server.count(f) for f in hub.MODEL_FILES] == [1, 0, 0]

    assert download.main(["microsoft/deberta-base", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"base: {model_dir()}"
    base_line = next(line for line in out if line.startswith("base "))
    assert (f"bpe_encoder.bin {download._size(len(VOCAB))}, config.json {len(CONFIG)}.0B, "
            f"pytorch_model.bin {download._size(len(WEIGHTS))}") in base_line
    assert next(line for line in out if line.startswith("large ")).endswith("(not cached)")


def test_cli_errors_are_one_line_with_status_2(server: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert download.main(["base", "no-such-model"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: unknown model name(s) 'no-such-model': expected {', '.join(hub.MODELS)} " \
                           "(or microsoft/... names)\n"
    assert server.hits == []  # the bad name was caught before the good one was downloaded

    offline = {**server.environ(hub.cache_dir()), "DEBERTA_OFFLINE": "1"}
    child = run_python(["-m", "DeBERTa.apps.download", "large"], offline)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config.json of model 'large'"), stderr
    assert "python -m DeBERTa.apps.download large" in lines[0]


# --------------------------------------------------------------------------------------------------
# v2/v3 names, the Hugging Face cache, content checks, trickling servers, the lock's message
# --------------------------------------------------------------------------------------------------
V3 = "microsoft/deberta-v3-base"
TOKENIZER_CONFIG = json.dumps({"do_lower_case": False, "vocab_type": "spm"}).encode()


def spm_model_bytes() -> bytes:
    """A real (tiny) SentencePiece model when sentencepiece is installed, else bytes shaped like one."""
    try:
        import sentencepiece
    except ImportError:
        return b"\x0a\x0c\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02"
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(["a tiny corpus for a tiny model"] * 20),
                                             model_writer=model, vocab_size=20, minloglevel=2)
    return model.getvalue()


SPM = spm_model_bytes()
V3_FILES = {"config.json": CONFIG, "pytorch_model.bin": WEIGHTS, "spm.model": SPM,
            "tokenizer_config.json": TOKENIZER_CONFIG}


def hf_cache(root: Path, repo: str, files: dict[str, bytes], revision: str = "a" * 40) -> Path:
    """A Hugging Face cache as huggingface_hub writes it: blobs by hash, snapshot symlinks, refs/main."""
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo_dir / "blobs").mkdir()
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    for filename, data in files.items():
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / filename).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


def test_a_v3_model_downloads_its_sentencepiece_model(server: HubServer) -> None:
    for filename, data in V3_FILES.items():
        server.add_file(V3, filename, data)
    folder = hub.fetch_model("deberta-v3-base")
    assert folder == model_dir("deberta-v3-base")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == V3_FILES
    assert server.count("bpe_encoder.bin") == 0
    # A mirror without the optional tokenizer_config.json is fine, and the 404 is remembered.
    (folder / "tokenizer_config.json").unlink()
    (folder / ".hub" / "tokenizer_config.json.json").unlink()
    del server._files[V3, "tokenizer_config.json"]
    hub.fetch_model("v3-base")
    hub.fetch_model("v3-base")
    assert server.count("tokenizer_config.json") == 2  # the first download, then one 404

    with pytest.raises(hub.DownloadError) as err:  # spm.model is required: without it no tokenizer
        hub.fetch_model("deberta-v3-large")
    assert_one_line(err, "config.json", "'deberta-v3-large'", "HTTP 404")


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME", "HOME"])
def test_a_model_in_the_hugging_face_cache_is_used_without_downloading(
        server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    root = {"HF_HUB_CACHE": tmp_path / "hf", "HF_HOME": tmp_path / "hf-home" / "hub",
            "HOME": tmp_path / "home" / ".cache" / "huggingface" / "hub"}[variable]
    monkeypatch.setenv(variable, str(root if variable == "HF_HUB_CACHE" else root.parent if variable == "HF_HOME"
                                     else root.parents[2]))
    assert hub.hf_cache_dir() == root
    snapshot = hf_cache(root, V3, V3_FILES)
    assert hub.fetch_model("deberta-v3-base") == snapshot
    assert hub.fetch("deberta-v3-base", "spm.model") == snapshot / "spm.model"
    monkeypatch.setenv("DEBERTA_OFFLINE", "1")  # offline too
    assert hub.fetch_model("microsoft/deberta-v3-base") == snapshot
    assert server.hits == []
    assert not model_dir("deberta-v3-base").exists()


def test_a_snapshot_with_safetensors_weights_is_complete(server: HubServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4)}, str(tmp_path / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    files = {**V3_FILES, "model.safetensors": (tmp_path / "model.safetensors").read_bytes()}
    del files["pytorch_model.bin"]
    snapshot = hf_cache(tmp_path / "hf", V3, files)
    assert hub.fetch_model("deberta-v3-base") == snapshot
    assert server.hits == []


def test_which_cache_wins(server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    for filename, data in V3_FILES.items():
        server.add_file(V3, filename, data)
    # An incomplete snapshot (no spm.model, as transformers may leave it) is not used: all is downloaded here.
    snapshot = hf_cache(tmp_path / "hf", V3, {"config.json": CONFIG, "pytorch_model.bin": WEIGHTS})
    assert hub.fetch_model("deberta-v3-base") == model_dir("deberta-v3-base")
    assert server.count("pytorch_model.bin") == 1
    # Once complete in both, this package's cache wins.
    (snapshot / "spm.model").symlink_to(snapshot / "config.json")  # any file: never read when not used
    assert hub.fetch_model("deberta-v3-base") == model_dir("deberta-v3-base")
    # A damaged file in the Hugging Face cache is passed over with a warning.
    damaged = hf_cache(tmp_path / "hf", "microsoft/deberta-v3-small", {**V3_FILES, "config.json": b"<html>portal"})
    for filename, data in V3_FILES.items():
        server.add_file("microsoft/deberta-v3-small", filename, data)
    assert hub.fetch_model("deberta-v3-small") == model_dir("deberta-v3-small")
    assert f"ignoring {damaged / 'config.json'} in the Hugging Face cache: it is an HTML page" in caplog.text
    # A refs/main that is not a commit id is never followed as a path.
    (tmp_path / "hf" / "models--microsoft--deberta-v3-xsmall" / "refs").mkdir(parents=True)
    (tmp_path / "hf" / "models--microsoft--deberta-v3-xsmall" / "refs" / "main").write_text("../../../etc")
    assert hub.hf_snapshot("deberta-v3-xsmall") is None


def zip_truncated() -> bytes:
    return WEIGHTS[: len(WEIGHTS) // 2]


@pytest.mark.parametrize(("filename", "content", "problem"), [
    ("config.json", b"<!DOCTYPE html><html>Sign in to the Wi-Fi</html>", "it is an HTML page"),
    ("config.json", b'{"hidden_size": 32', "not valid JSON"),
    ("config.json", b"[1, 2]", "not a JSON object but a list"),
    ("config.json", b"\xff\xfe\x00", "not UTF-8"),
    ("pytorch_model.bin", b"\x00" * 4096, "not a PyTorch file"),
    ("pytorch_model.bin", zip_truncated(), "a truncated zip"),
    ("spm.model", b"Not Found", "not a SentencePiece model"),
], ids=["html", "torn-json", "json-list", "binary-json", "zeros", "truncated-zip", "spm-text"])
def test_a_file_that_is_not_what_it_must_be_is_never_stored(
        server: HubServer, filename: str, content: bytes, problem: str) -> None:
    repo = V3 if filename == "spm.model" else BASE
    name = "deberta-v3-base" if filename == "spm.model" else "base"
    server.redirect_lfs = False  # a plain mirror: no SHA-256 to catch it
    server.add_file(repo, filename, content)
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch(name, filename)
    assert_one_line(err, f"{name}/{filename}", "corrupt", problem, "it was deleted")
    assert leftovers(name) == []


def test_a_safetensors_file_is_checked_for_its_header(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(8, 8)}, str(path))
    assert hub.check_model_file(path) is None
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])
    assert "a truncated safetensors file" in hub.check_model_file(path)
    path.write_bytes(b"\xff" * 64)
    assert "not a safetensors file" in hub.check_model_file(path)
    path.write_bytes(b"")
    assert hub.check_model_file(path) == "the file is empty"


def test_a_legacy_torch_file_passes(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    assert hub.check_model_file(path) is None
    torch.save({"w": torch.zeros(2)}, path)
    assert hub.check_model_file(path) is None


def test_an_html_answer_is_refused_before_anything_is_written(server: HubServer) -> None:
    server.html["config.json"] = 1
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "config.json")
    assert_one_line(err, "base/config.json", "HTML page (Content-Type text/html)", "captive portal")
    assert leftovers() == []
    assert server.count("config.json") == 1  # not retried: a portal does not go away by asking again
    server.redirect["pytorch_model.bin"] = "/portal"
    with pytest.raises(hub.DownloadError, match=r"/portal answered with an HTML page"):
        hub.fetch("base", "pytorch_model.bin")
    server.redirect["pytorch_model.bin"] = f"/{BASE}/resolve/main/pytorch_model.bin"  # a loop
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "pytorch_model.bin")
    assert_one_line(err, "base/pytorch_model.bin", "redirects", "in a loop or too often (HTTP 302)")
    assert leftovers() == []


def test_a_stored_html_page_is_downloaded_again_and_a_hand_placed_one_is_named(
        server: HubServer, caplog: pytest.LogCaptureFixture) -> None:
    # What an older version stored from a captive portal: recorded as downloaded, size matching.
    path = hub.fetch("base", "config.json")
    page = b"<html><body>login</body></html>"
    path.write_bytes(page)
    record = path.parent / ".hub" / "config.json.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "size": len(page)}))
    assert hub.fetch("base", "config.json").read_bytes() == CONFIG
    assert "config.json in the model cache is damaged (it is an HTML page" in caplog.text

    by_hand = model_dir("large") / "config.json"
    by_hand.parent.mkdir(parents=True)
    by_hand.write_bytes(page)
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch_model("large")
    assert_one_line(err, str(by_hand), "placed in the model cache by hand", "HTML page", "delete it")
    assert by_hand.read_bytes() == page  # the user's file is not touched


def test_force_replaces_a_damaged_file(server: HubServer) -> None:
    path = hub.fetch("base", "config.json")
    path.write_bytes(b'{"hidden_size": 1}')  # valid JSON, wrong content: only --force can tell
    record = path.parent / ".hub" / "config.json.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "size": path.stat().st_size}))
    assert hub.fetch("base", "config.json").read_bytes() != CONFIG
    assert hub.fetch("base", "config.json", force=True).read_bytes() == CONFIG


def test_a_failed_load_of_a_cached_file_names_it_and_the_fix(
        server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = hub.fetch_model("base")
    message = hub.cached_file_problem(folder / "config.json", ValueError("bad key 'x'\nsecond line"))
    assert message == (f"{folder / 'config.json'} (model 'base' in the DeBERTa cache) is damaged: bad key 'x'; "
                       "run 'python -m DeBERTa.apps.download base --force' to replace it")
    with pytest.raises(hub.CachedFileError, match="is damaged: boom; run 'python -m DeBERTa.apps.download base"):
        with hub.loading_cached(folder / "pytorch_model.bin"):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="^boom$"):  # a file outside the caches: the error as it was
        with hub.loading_cached(tmp_path / "pytorch_model.bin"):
            raise RuntimeError("boom")
    assert hub.cached_file_problem(tmp_path / "config.json") is None

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = hf_cache(tmp_path / "hf", V3, {**V3_FILES, "config.json": b"{}"})
    message = hub.cached_file_problem(snapshot / "config.json")
    assert message.startswith(f"{snapshot / 'config.json'} (model 'deberta-v3-base' in the Hugging Face cache) "
                              "is damaged: it could not be loaded; delete it from the Hugging Face cache, or run "
                              "'python -m DeBERTa.apps.download deberta-v3-base --force'")


def test_a_trickling_server_is_aborted_retried_and_resumed(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBERTA_DOWNLOAD_RATE_WINDOW", "0.3")  # the default is 20 s; the rule is the same
    monkeypatch.setenv("DEBERTA_DOWNLOAD_RETRIES", "2")
    server.trickle["pytorch_model.bin"] = 1  # 16 bytes per 50 ms: 320 bytes/s, under 1 KiB/s
    started = time.monotonic()
    assert hub.fetch("base", "pytorch_model.bin").read_bytes() == WEIGHTS
    ranges = [hit.range for hit in server.hits if hit.kind == "cdn"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"  # resumed

    server.trickle["bpe_encoder.bin"] = 10  # every try trickles: one line after DEBERTA_DOWNLOAD_RETRIES tries
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "bpe_encoder.bin")
    assert_one_line(err, "after 2 tries", "under 1024 bytes/s (DEBERTA_DOWNLOAD_MIN_RATE)")
    assert time.monotonic() - started < 10


def test_a_reset_connection_is_retried(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.reset["config.json"] = 1
    assert hub.fetch("base", "config.json").read_bytes() == CONFIG
    monkeypatch.setenv("DEBERTA_DOWNLOAD_RETRIES", "2")
    server.reset["pytorch_model.bin"] = 5
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "pytorch_model.bin")
    assert_one_line(err, "after 2 tries")
    assert server.count("pytorch_model.bin") == 2


def test_a_process_waiting_for_the_lock_says_so(server: HubServer, caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import filelock

    monkeypatch.setattr(hub, "_LOCK_MESSAGE_EVERY_S", 0.1)
    lock_path = model_dir() / ".hub" / "config.json.lock"
    lock_path.parent.mkdir(parents=True)
    holder = filelock.FileLock(lock_path)
    holder.acquire()
    result: list[Path] = []
    waiter = threading.Thread(target=lambda: result.append(hub.fetch("base", "config.json")))
    waiter.start()
    deadline = time.monotonic() + 10
    while "still waiting" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f"waiting for another process to finish downloading {server.url}/{BASE}/resolve/main/config.json" \
        in caplog.text
    assert "still waiting for the download" in caplog.text
    holder.release()
    waiter.join(timeout=10)
    assert result and result[0].read_bytes() == CONFIG


@pytest.mark.parametrize("value", ["huggingface.co", "ftp://mirror/hf", "http://", "http://host:port",
                                   "http://mirror local", "https://hub?x=1", "http://[::1"])
def test_a_malformed_hub_url_is_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEBERTA_MODEL_HUB", value)
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "config.json")
    assert_one_line(err, f"DEBERTA_MODEL_HUB={value!r} is not the http(s) URL")


@pytest.mark.parametrize(("variable", "value"), [("DEBERTA_DOWNLOAD_RETRIES", "0"), ("DEBERTA_DOWNLOAD_RETRIES", "x"),
                                                 ("DEBERTA_DOWNLOAD_BACKOFF", "nan"),
                                                 ("DEBERTA_DOWNLOAD_MIN_RATE", "-1"),
                                                 ("DEBERTA_DOWNLOAD_RATE_WINDOW", "inf")])
def test_bad_download_settings_are_one_line(server: HubServer, monkeypatch: pytest.MonkeyPatch,
                                            variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(hub.DownloadError) as err:
        hub.fetch("base", "config.json")
    assert_one_line(err, f"{variable}={value!r} must be")
    assert server.hits == []
