"""Fault suite of ``python -m DeBERTa.apps.report``: bad run folders, bad options, an output that is a file
or read-only, no matplotlib. Each refused run keeps the promise of :mod:`fault_promise` (exit 2, one
``error:`` line last on stderr, no traceback), and the run folders and the output folder stay byte-identical
(an earlier report in it too)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_promise import AppResult, assert_refused, assert_succeeded, run_app, snapshot
from test_report import write_run

from DeBERTa.apps import report

APP = "DeBERTa.apps.report"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A run folder ``run`` and an earlier report in ``out`` (which a refused run must leave as it is)."""
    write_run(tmp_path / "run", "MRPC", 1, "base", {"dev": {"accuracy": 0.8, "f1": 0.85}})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.md").write_text("# an earlier report\n")
    (tmp_path / "out" / "curves_MRPC.png").write_bytes(b"\x89PNG an earlier figure")
    return tmp_path


def refused(work: Path, result: AppResult, before: dict, *mentions: str) -> str:
    return assert_refused(result, *mentions, unchanged=(before, lambda: snapshot(work)))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "binary-config": (lambda run: (run / "config.yaml").write_bytes(bytes(range(256))), "cannot read"),
    "config-list": (lambda run: (run / "config.yaml").write_text("- 1\n- 2\n"), "is not a mapping"),
    "config-no-task": (lambda run: (run / "config.yaml").write_text("seed: 1\n"), "has no task_name"),
    "metrics-not-utf8": (lambda run: (run / "metrics.jsonl").write_bytes(b'\xff\xfe{"type"\n'), "cannot read"),
    "metrics-torn-middle": (lambda run: (run / "metrics.jsonl").write_text('{"type": "tr\n{"type": "train"}\n'),
                            "line 1 is not valid JSON"),
    "metrics-list": (lambda run: (run / "metrics.jsonl").write_text("[1, 2]\n"), "line 1 is not a JSON object"),
    "step-as-text": (lambda run: (run / "metrics.jsonl").write_text('{"type": "train", "step": "9", "loss": 1}\n'),
                     "no integer 'step'"),
    "loss-as-text": (lambda run: (run / "metrics.jsonl").write_text('{"type": "train", "step": 9, "loss": "x"}\n'),
                     "no numeric 'loss'"),
    "eval-without-split": (lambda run: (run / "metrics.jsonl").write_text('{"type": "eval", "step": 9}\n'),
                           "needs a 'split' name"),
    "eval-results-list": (lambda run: ((run / "metrics.jsonl").write_text(""),
                                       (run / "eval_results.json").write_text("[1]")), "does not hold a JSON object"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_run_folder_is_one_line(work: Path, damage: str) -> None:
    make, mention = DAMAGE[damage]
    make(work / "run")
    before = snapshot(work)
    refused(work, run_app(APP, [str(work / "run"), "--output", str(work / "out")]), before, mention)


@pytest.mark.parametrize(("args", "mention"), [
    ([], "the following arguments are required: RUN_DIR"),
    (["{run}", "--bogus"], "unrecognized arguments: --bogus"),
    (["{run}", "--output"], "--output: expected one argument"),
    (["{work}/nope"], "nope does not exist"),
    (["{run}/config.yaml"], "no run folders"),
    (["{work}/out"], "no run folders"),
    (["{run}", "--output", "{run}/config.yaml"], "is a file, not a folder"),
    (["{run}", "--output", "{run}/config.yaml/report"], "cannot write the report into"),
    (["{run}", "--output", "{work}/new", "--title", "two\nlines"], "holds a control character"),
    (["{run}", "--output", "{work}/new", "--title", "not utf-8 \udcff"], "is not valid UTF-8"),
], ids=["no-args", "unknown-option", "output-without-value", "missing-run", "run-is-a-file", "no-runs",
        "output-is-a-file", "output-below-a-file", "title-newline", "title-not-utf8"])
def test_bad_options_are_one_line(work: Path, args: list[str], mention: str) -> None:
    before = snapshot(work)
    argv = [arg.format(run=work / "run", work=work) for arg in args]
    refused(work, run_app(APP, argv), before, mention)


def test_without_matplotlib_one_line_names_the_extra(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    before = snapshot(work)
    refused(work, run_app(APP, [str(work / "run"), "--output", str(work / "new")]), before,
            'pip install "deberta[report]"')


def test_a_failure_while_drawing_leaves_the_earlier_report(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "plot_curves", disk_full)
    write_run(work / "run2", "RTE", 1, "base", {"dev": {"accuracy": 0.7}})
    before = snapshot(work)
    refused(work, run_app(APP, [str(work / "run"), str(work / "run2"), "--output", str(work / "out")]), before,
            "No space left on device")
    refused(work, run_app(APP, [str(work / "run"), "--output", str(work / "new" / "deeper")]), before,
            "No space left on device")  # the folders it made for the report are gone again


def test_a_torn_last_line_is_left_out_and_the_report_made(work: Path) -> None:
    metrics = work / "run" / "metrics.jsonl"
    complete = report.load_run(work / "run")
    _append(metrics, '{"type": "eval", "step": 400, "split": "dev", "metr')  # killed mid-write
    result = run_app(APP, [str(work / "run"), "--output", str(work / "out")])
    assert_succeeded(result)
    assert "the last line is torn" in result.stderr
    assert report.load_run(work / "run").final == complete.final


def test_non_finite_metrics_are_reported_without_drawing_them(work: Path) -> None:
    _append(work / "run" / "metrics.jsonl", '{"type": "train", "step": 999, "loss": Infinity}\n'
                                            '{"type": "eval", "step": 999, "split": "dev", "metrics": '
                                            '{"accuracy": NaN, "f1": 1e308}}\n')
    result = run_app(APP, [str(work / "run"), "--output", str(work / "out")])
    assert_succeeded(result)
    assert result.stderr == ""  # no warnings from the plotting either
    table = (work / "out" / "report.md").read_text()
    assert "dev: accuracy n/a, f1 inf" in table


def test_a_symlink_loop_below_a_run_folder_is_harmless(work: Path) -> None:
    os.symlink(work, work / "run" / "loop")
    assert_succeeded(run_app(APP, [str(work), "--output", str(work / "out")], timeout=60))


# -- permissions, without root's override -------------------------------------------------------------------------


def test_a_read_only_output_folder_is_one_line(work: Path) -> None:
    (work / "out").chmod(0o555)
    try:
        before = snapshot(work)
        result = run_app(APP, [str(work / "run"), "--output", str(work / "out")], no_override=True)
        refused(work, result, before, "cannot write the report into", "Permission denied")
    finally:
        (work / "out").chmod(0o755)


def test_an_unreadable_metrics_file_is_one_line(work: Path) -> None:
    (work / "run" / "metrics.jsonl").chmod(0o000)
    try:
        before = snapshot(work, ignore=lambda path: path.name == "metrics.jsonl")
        result = run_app(APP, [str(work / "run"), "--output", str(work / "out")], no_override=True)
        assert_refused(result, "cannot read", "metrics.jsonl", "Permission denied",
                       unchanged=(before, lambda: snapshot(work, ignore=lambda path: path.name == "metrics.jsonl")))
    finally:
        (work / "run" / "metrics.jsonl").chmod(0o644)
