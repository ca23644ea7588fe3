"""Fault suite of ``python -m DeBERTa.apps.download``: bad input and an unlucky network (a captive portal's
HTML, a trickling server, resets, redirects), an unwritable cache without root's override. Each refused run
keeps the promise of :mod:`fault_promise`: exit 2, one ``error:`` line last on stderr, no traceback, and
the cache as it was (lock files and empty folders aside; a network failure may leave its ``.part`` file,
which the next run resumes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_promise import AppResult, assert_refused, assert_succeeded, run_app, snapshot
from hub_server import HubServer
from test_hub import CONFIG, SPM, TOKENIZER_CONFIG, V3, WEIGHTS

APP = "DeBERTa.apps.download"
BASE = "microsoft/deberta-base"


def _bookkeeping(path: Path) -> bool:
    """What a refused download may leave: folders it made, its lock files, a resumable partial file."""
    return path.is_dir() or path.suffix in (".lock", ".part")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_file(BASE, "config.json", CONFIG)
        server.add_file(BASE, "pytorch_model.bin", WEIGHTS)
        for filename, data in {"config.json": CONFIG, "pytorch_model.bin": WEIGHTS, "spm.model": SPM,
                               "tokenizer_config.json": TOKENIZER_CONFIG}.items():
            server.add_file(V3, filename, data)
        yield server


@pytest.fixture
def env(hub: HubServer, tmp_path: Path) -> dict[str, str | None]:
    return {**hub.environ(tmp_path / "cache"), "DEBERTA_DOWNLOAD_RETRIES": "2", "HF_HUB_CACHE": str(tmp_path / "hf"),
            "DEBERTA_DOWNLOAD_RATE_WINDOW": "0.3", "LOCAL_RANK": None}


def refused(result: AppResult, cache: Path, before: dict, *mentions: str) -> str:
    return assert_refused(result, *mentions, unchanged=(before, lambda: snapshot(cache, ignore=_bookkeeping)))


def test_the_v3_names_download_and_list(env: dict, tmp_path: Path) -> None:
    result = run_app(APP, ["deberta-v3-base", "--quiet", "--list"], env=env)
    assert_succeeded(result)
    folder = tmp_path / "cache" / "models" / "deberta-v3-base"
    assert result.stdout.splitlines()[0] == f"deberta-v3-base: {folder}"
    assert (folder / "spm.model").read_bytes() == SPM
    line = next(line for line in result.stdout.splitlines() if line.startswith("deberta-v3-base "))
    assert "microsoft/deberta-v3-base" in line and " v3 " in line and "spm.model" in line


# -- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "mentions"), [
    ([], ["give model names to download, or --list"]),
    (["--bogus"], ["unrecognized arguments: --bogus (see --help)"]),
    (["--files"], ["--files: expected at least one argument"]),
    (["no-such-model"], ["unknown model name(s) 'no-such-model'", "deberta-v3-base"]),
    (["base", "deberta-v9"], ["unknown model name(s) 'deberta-v9'"]),
    (["base", "--files", "../../etc/passwd"], ["invalid file name '../../etc/passwd'"]),
    (["base", "--files", ""], ["invalid file name ''"]),
    (["base", "--files", ".hub"], ["invalid file name '.hub'"]),
    (["base", "--files", "con\nfig.json"], ["invalid file name 'con\\nfig.json'"]),
], ids=["nothing", "unknown-option", "files-empty-list", "unknown-name", "second-name-unknown", "path-escape",
        "empty-file", "hidden-file", "newline-file"])
def test_bad_input_is_one_line(env: dict, tmp_path: Path, args: list[str], mentions: list[str]) -> None:
    cache = tmp_path / "cache"
    before = snapshot(cache, ignore=_bookkeeping)
    refused(run_app(APP, args, env=env), cache, before, *mentions)


@pytest.mark.parametrize(("variable", "value", "mention"), [
    ("DEBERTA_MODEL_HUB", "huggingface.co", "is not the http(s) URL"),
    ("DEBERTA_MODEL_HUB", "file:///mirror", "is not the http(s) URL"),
    ("DEBERTA_MODEL_HUB", "http://[::1", "is not the http(s) URL"),
    ("DEBERTA_MODEL_HUB", "http://mirror:port", "is not the http(s) URL"),
    ("DEBERTA_DOWNLOAD_RETRIES", "many", "must be an integer"),
    ("DEBERTA_DOWNLOAD_BACKOFF", "-1", "must be a number"),
    ("DEBERTA_DOWNLOAD_MIN_RATE", "fast", "must be a number"),
    ("DEBERTA_OFFLINE", "1", "downloads are off (DEBERTA_OFFLINE=1"),
], ids=["no-scheme", "file-url", "bad-ipv6", "bad-port", "retries", "backoff", "min-rate", "offline"])
def test_bad_settings_are_one_line(env: dict, tmp_path: Path, hub: HubServer, variable: str, value: str,
                                   mention: str) -> None:
    cache = tmp_path / "cache"
    before = snapshot(cache, ignore=_bookkeeping)
    refused(run_app(APP, ["base", "--quiet"], env={**env, variable: value}), cache, before, mention)
    assert hub.hits == []


def test_list_with_a_malformed_hub_is_one_line(env: dict) -> None:
    assert_refused(run_app(APP, ["--list"], env={**env, "DEBERTA_MODEL_HUB": "hub.local"}), "DEBERTA_MODEL_HUB")


def test_a_cache_below_a_file_is_one_line(env: dict, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("mine")
    before = snapshot(tmp_path / "a-file")
    result = run_app(APP, ["base"], env={**env, "DEBERTA_CACHE": str(tmp_path / "a-file" / "cache")})
    assert_refused(result, "cannot write to the model cache", unchanged=(before, lambda: snapshot(tmp_path / "a-file")))


# -- the network ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["portal", "portal-redirect", "html-body", "not-json", "not-zip", "loop"])
def test_what_is_not_the_file_is_never_stored(env: dict, tmp_path: Path, hub: HubServer, fault: str) -> None:
    """Other models' cached files survive byte-identical; nothing is stored for the failed one."""
    assert_succeeded(run_app(APP, ["deberta-v3-base", "--quiet"], env=env))
    cache = tmp_path / "cache"
    hub.redirect_lfs = False  # a plain mirror publishes no SHA-256: only the content check can tell
    if fault == "portal":
        hub.html["config.json"] = 10
    elif fault == "portal-redirect":
        hub.redirect["config.json"] = "/portal"
    elif fault == "html-body":
        hub.add_file(BASE, "config.json", b"<!DOCTYPE html><html><body>Sign in</body></html>")
    elif fault == "not-json":
        hub.add_file(BASE, "config.json", b"Service Unavailable")
    elif fault == "not-zip":
        hub.add_file(BASE, "pytorch_model.bin", b"Service Unavailable" * 100)
    else:
        hub.redirect["config.json"] = f"/{BASE}/resolve/main/config.json"
    if fault == "not-zip":  # config.json comes first and is fine: verified files are kept, as a .part is
        assert_succeeded(run_app(APP, ["base", "--files", "config.json", "--quiet"], env=env))
    before = snapshot(cache, ignore=_bookkeeping)
    line = refused(run_app(APP, ["base", "--quiet"], env=env), cache, before, "base/")
    assert {"portal": "HTML page", "portal-redirect": "/portal answered with an HTML page", "html-body": "HTML page",
            "not-json": "not valid JSON", "not-zip": "not a PyTorch file", "loop": "in a loop"}[fault] in line
    assert not (cache / "models" / "base" / "pytorch_model.bin").exists()


@pytest.mark.parametrize("fault", ["trickle", "reset", "503"])
def test_a_failing_server_ends_in_one_line_and_the_next_run_resumes(env: dict, tmp_path: Path, hub: HubServer,
                                                                   fault: str) -> None:
    cache = tmp_path / "cache"
    if fault == "trickle":
        hub.trickle["pytorch_model.bin"] = 2  # 320 bytes/s, under 1 KiB/s over the 0.3 s window of the test
    elif fault == "reset":
        hub.reset["pytorch_model.bin"] = 2
    else:
        hub.statuses["pytorch_model.bin"] = [503, 503]
    before = snapshot(cache, ignore=_bookkeeping)
    result = run_app(APP, ["base", "--files", "pytorch_model.bin", "--quiet"], env=env)
    refused(result, cache, before, "base/pytorch_model.bin", "after 2 tries")
    # The faults are used up: the same command now completes (resuming what the trickle delivered).
    assert_succeeded(run_app(APP, ["base", "--quiet"], env=env))
    assert (cache / "models" / "base" / "pytorch_model.bin").read_bytes() == WEIGHTS
    if fault == "trickle":
        assert [hit.range for hit in hub.hits if hit.kind == "cdn"][-1].startswith("bytes=")


def test_a_cache_file_placed_by_hand_that_is_html_is_named(env: dict, tmp_path: Path) -> None:
    placed = tmp_path / "cache" / "models" / "base" / "config.json"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"<html>portal</html>")
    before = snapshot(tmp_path / "cache", ignore=_bookkeeping)
    refused(run_app(APP, ["base"], env=env), tmp_path / "cache", before, str(placed),
            "placed in the model cache by hand")


def test_force_replaces_a_damaged_download(env: dict, tmp_path: Path) -> None:
    assert_succeeded(run_app(APP, ["base", "--quiet"], env=env))
    config = tmp_path / "cache" / "models" / "base" / "config.json"
    config.write_bytes(b"{}")
    record = config.parent / ".hub" / "config.json.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "size": 2}))
    assert_succeeded(run_app(APP, ["base", "--quiet", "--force"], env=env))
    assert config.read_bytes() == CONFIG


# -- permissions, without root's override -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["cache", "hub-folder"])
def test_a_read_only_cache_is_one_line(env: dict, tmp_path: Path, where: str) -> None:
    cache = tmp_path / "cache"
    folder = cache / "models" / "base"
    (folder / ".hub").mkdir(parents=True)
    (folder / "keep.txt").write_text("mine")
    locked = folder if where == "cache" else folder / ".hub"
    if where == "cache":
        (folder / ".hub").rmdir()
    locked.chmod(0o555)
    try:
        before = snapshot(cache)
        result = run_app(APP, ["base", "--quiet"], env=env, no_override=True)
        assert_refused(result, "cannot write", "DEBERTA_CACHE to a writable folder",
                       unchanged=(before, lambda: snapshot(cache)))
    finally:
        locked.chmod(0o755)


def test_a_read_only_cache_still_serves_what_it_holds(env: dict, tmp_path: Path) -> None:
    assert_succeeded(run_app(APP, ["base", "--quiet"], env=env))
    cache = tmp_path / "cache"
    folders = [path for path in [cache, *cache.rglob("*")] if path.is_dir()]
    for folder in folders:
        folder.chmod(0o555)
    try:
        result = run_app(APP, ["base", "--quiet"], env={**env, "DEBERTA_OFFLINE": "1"}, no_override=True)
        assert_succeeded(result)
        assert result.stdout.strip() == f"base: {cache / 'models' / 'base'}"
    finally:
        for folder in folders:
            folder.chmod(0o755)
