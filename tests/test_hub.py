"""The model hub client against a real local HTTP server: cache, resume, verification, locks, offline, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import HubServer

from DeBERTa.apps import download
from DeBERTa.deberta import hub
from DeBERTa.deberta.errors import DeBERTaError

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE = "microsoft/deberta-base"
# Random bytes stand in for the files: the hub client never looks inside them.
CONFIG = json.dumps({"hidden_size": 32, "num_hidden_layers": 2}).encode()
WEIGHTS = os.urandom(256 * 1024)
VOCAB = os.urandom(20 * 1024)


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
    for not_a_name in ["./base", "/models/base", "microsoft/deberta-v3-base", "deberta-v2-xlarge", ""]:
        assert hub.canonical_name(not_a_name) is None

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
    assert_one_line(err, "unknown model 'base-v3'", "base, large")
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
    assert [line.split()[:3] for line in listing[2:]] == [
        [name, repo, "(not"] for name, repo in hub.MODELS.items()]

    assert download.main(["base", "--files", "config.json", "--quiet"]) == 0
    assert capsys.readouterr().out == f"base: {model_dir()}\n"
    assert [server.count(f) for f in hub.MODEL_FILES] == [1, 0, 0]

    assert download.main(["microsoft/deberta-base", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"base: {model_dir()}"
    base_line = next(line for line in out if line.startswith("base "))
    assert f"bpe_encoder.bin 20.5kB, config.json {len(CONFIG)}.0B, pytorch_model.bin 262kB" in base_line
    assert next(line for line in out if line.startswith("large ")).endswith("(not cached)")


def test_cli_errors_are_one_line_with_status_2(server: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert download.main(["base", "no-such-model"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: unknown model name(s) 'no-such-model': expected base, large, xlarge, " \
                           "base_mnli, large_mnli, xlarge_mnli or microsoft/deberta-* names\n"
    assert server.hits == []  # the bad name was caught before the good one was downloaded

    offline = {**server.environ(hub.cache_dir()), "DEBERTA_OFFLINE": "1"}
    child = run_python(["-m", "DeBERTa.apps.download", "large"], offline)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config.json of model 'large'"), stderr
    assert "python -m DeBERTa.apps.download large" in lines[0]
