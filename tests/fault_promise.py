"""The fault suite's promise, shared by every ``test_faults_*.py``: run an app on a bad input or under a fault
and check what it owes the user.

A refused run (:func:`assert_refused`): exit status 2; exactly one line ``error: …`` on stderr, and it is the
last line; no ``Traceback``; nothing written, and every file that was there byte-identical (a
:func:`snapshot` of the watched folders before and after).

Apps run in this process by default (:func:`run_app`: fast, ``main(argv)`` with stdout/stderr captured and
the environment and working folder set for the call; an exception escaping ``main`` is what a user would
see as a traceback and is recorded as one), or as a real subprocess (``child=True``), which permission
cases need: ``no_override=True`` runs it without root's override of file permissions (every capability
dropped with ``setpriv``), or skips the test where that is impossible.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HANG_SECONDS = 60.0


@dataclass(frozen=True)
class AppResult:
    """What one run of an app did: exit status (None: it hung and was killed), its output, and whether an
    exception escaped (in this process: the exception's traceback is in ``stderr``)."""

    status: int | None
    stdout: str
    stderr: str
    crashed: bool

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def no_override_prefix() -> list[str]:
    """A command prefix under which root obeys file permissions like any user (no capabilities), or
    ``[]`` when not root; skips the test where root's override cannot be dropped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--"] if setpriv else []
    if prefix:
        probe = subprocess.run([*prefix, "grep", "^CapEff", "/proc/self/status"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.split()[-1].strip("0") == "":
            return prefix
    pytest.skip("running as root and the capabilities cannot be dropped (setpriv missing or not permitted)")


@contextlib.contextmanager
def _environment(env: Mapping[str, str | None]) -> Iterator[None]:
    saved = dict(os.environ)
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_app(module: str, args: Sequence[str], *, env: Mapping[str, str | None] | None = None,
            cwd: Path | None = None, child: bool = False, no_override: bool = False,
            stdin: str = "", timeout: float = HANG_SECONDS) -> AppResult:
    """Run ``python -m module args`` (in this process unless ``child`` or ``no_override``).

    ``env`` adds variables (``None`` removes one). A run past ``timeout`` seconds is a hang: killed,
    status None.
    """
    env = dict(env or {})
    if child or no_override:
        return _run_subprocess(module, args, env, cwd, no_override_prefix() if no_override else [], stdin, timeout)
    out, err = io.StringIO(), io.StringIO()
    crashed, status = False, None
    previous = Path.cwd()
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if cwd is not None:
            os.chdir(cwd)
        try:
            status = importlib.import_module(module).main(list(args))
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 -- anything escaping main is what the user would see as a traceback
            crashed, status = True, 1  # Python's exit status after a traceback
            err.write(traceback.format_exc())
        finally:
            os.chdir(previous)
    return AppResult(status, out.getvalue(), err.getvalue(), crashed)


def _run_subprocess(module: str, args: Sequence[str], env: Mapping[str, str | None], cwd: Path | None,
                    prefix: list[str], stdin: str, timeout: float) -> AppResult:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    try:
        done = subprocess.run([*prefix, sys.executable, "-m", module, *args], env=environment, cwd=cwd or REPO_ROOT,
                              input=stdin, text=True, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as hang:
        return AppResult(None, _text(hang.stdout), _text(hang.stderr), False)
    return AppResult(done.returncode, done.stdout, done.stderr, "Traceback (most recent call last)" in done.stderr)


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def snapshot(*roots: Path, ignore: Callable[[Path], bool] = lambda path: False) -> dict[str, bytes | str | None]:
    """Every file (its bytes), folder (None) and symlink (its target) under ``roots``, by path, except what
    ``ignore`` says; a missing root adds nothing (so creating it shows). Compare two snapshots to show that
    nothing was written and nothing changed."""
    state: dict[str, bytes | str | None] = {}
    for root in roots:
        if not root.exists() and not root.is_symlink():
            continue
        paths = [root, *root.rglob("*")] if root.is_dir() and not root.is_symlink() else [root]
        for path in paths:
            if ignore(path):
                continue
            if path.is_symlink():
                state[str(path)] = "-> " + os.readlink(path)
            elif path.is_dir():
                state[str(path)] = None
            else:
                state[str(path)] = path.read_bytes()
    return state


def assert_refused(result: AppResult, *mentions: str, unchanged: tuple[dict, Callable[[], dict]] | None = None,
                   stdout_empty: bool = True, prefix: str = "error: ") -> str:
    """The promise of a refused run; returns the error line. ``mentions`` must appear in it; ``unchanged``
    is (snapshot before, a function taking the snapshot after); ``prefix`` starts the error line (the
    shell scripts name themselves: ``rte.sh: error: ``)."""
    assert result.status is not None, f"hang: killed after {HANG_SECONDS:.0f} s; stderr:\n{result.stderr}"
    assert not result.crashed and "Traceback" not in result.stderr, f"traceback:\n{result.stderr}"
    assert result.status == 2, f"exit status {result.status}, not 2; stderr:\n{result.stderr}"
    lines = result.lines
    assert lines and lines[-1].startswith(prefix), f"the last line on stderr is not '{prefix}…':\n{result.stderr}"
    errors = [line for line in lines if line.startswith(prefix.strip())]
    assert len(errors) == 1, f"{len(errors)} error lines:\n{result.stderr}"
    for mention in mentions:
        assert mention in lines[-1], f"{mention!r} not in {lines[-1]!r}"
    if stdout_empty:
        assert result.stdout == "", f"a refused run printed on stdout:\n{result.stdout}"
    if unchanged is not None:
        before, after = unchanged
        now = after()
        changed = sorted(set(before) ^ set(now) | {k for k in set(before) & set(now) if before[k] != now[k]})
        assert not changed, f"written or changed by a refused run: {changed[:10]}"
    return lines[-1]


def assert_succeeded(result: AppResult) -> None:
    """A run that must work: exit 0, no traceback."""
    assert result.status is not None, f"hang: killed after {HANG_SECONDS:.0f} s; stderr:\n{result.stderr}"
    assert not result.crashed and "Traceback" not in result.stderr, f"traceback:\n{result.stderr}"
    assert result.status == 0, f"exit status {result.status}; stderr:\n{result.stderr}"
