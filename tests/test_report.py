"""Tests of the results report (DeBERTa/apps/report.py) on run folders the tests write.

The numbers are chosen so that means, sample standard deviations and differences to the paper can be
worked out by hand; the working is in the comments next to each expectation.
"""

from __future__ import annotations

import json
import runpy
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from DeBERTa.apps import report
from DeBERTa.apps.tasks import TaskError, get_task

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# Steps of the evaluations, and each one's metrics as a fraction of the final ones: the middle
# evaluation is the best and the first the worst, so a report that took the best or the first
# evaluation instead of the last would show other numbers.
EVAL_STEPS = (100, 200, 300)
EVAL_FACTORS = (0.8, 1.02, 1.0)


def write_run(
    directory: Path,
    task: str,
    seed: int,
    init_model: str | None,
    finals: dict[str, dict[str, float]] | None,
    *,
    eval_in_metrics: bool = True,
) -> Path:
    """A run folder as the training app writes it.

    Training loss falls with the step; ``finals`` are the metrics of the last evaluation. With
    ``eval_in_metrics=False`` they are only in eval_results.json; with ``finals=None`` the run never
    evaluated.
    """
    directory.mkdir(parents=True)
    config = {"task_name": task, "seed": seed, "init_model": init_model, "learning_rate": 2e-5}
    (directory / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    records: list[dict] = []
    for step in range(10, EVAL_STEPS[-1] + 1, 10):
        epoch = step / EVAL_STEPS[-1]
        loss = 1.0 / (1 + step / 50) + 0.01 * seed
        records.append({"type": "train", "step": step, "epoch": epoch, "loss": loss, "lr": 2e-5,
                        "examples_per_s": 80.0})
        if finals is not None and eval_in_metrics and step in EVAL_STEPS:
            factor = EVAL_FACTORS[EVAL_STEPS.index(step)]
            for split, metrics in finals.items():
                records.append({"type": "eval", "step": step, "epoch": epoch, "split": split, "loss": 0.5,
                                "metrics": {name: value * factor for name, value in metrics.items()}})
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    if finals is not None:
        splits = {split: {"loss": 0.5, **metrics} for split, metrics in finals.items()}
        results = {"step": EVAL_STEPS[-1], "epoch": 1.0, "splits": splits}
        (directory / "eval_results.json").write_text(json.dumps(results), encoding="utf-8")
    return directory


def write_runs(root: Path) -> Path:
    """Three tasks, several seeds each, one incomplete run and one run known only by eval_results.json."""
    # MNLI from DeBERTa base, three seeds.
    #   matched:    85.0, 86.0, 87.0 -> mean 86.00; deviations -1, 0, 1 -> var 2/2 = 1 -> std 1.00;
    #               86.00 - 88.8 (paper base, m) = -2.80
    #   mismatched: 84.2, 84.6, 85.0 -> mean 84.60; deviations -.4, 0, .4 -> var .32/2 = .16 -> std 0.40;
    #               84.60 - 88.5 (paper base, mm) = -3.90
    for seed, matched, mismatched in ((1, 0.85, 0.842), (2, 0.86, 0.846), (3, 0.87, 0.850)):
        write_run(root / f"mnli-{seed}", "MNLI", seed, "base",
                  {"dev_matched": {"accuracy": matched}, "dev_mismatched": {"accuracy": mismatched}})
    # SST-2 from the hub's large model, two seeds and one that died before evaluating.
    #   95.0, 96.0 -> mean 95.50; var (0.25 + 0.25)/1 = 0.5 -> std 0.7071 -> 0.71;
    #   95.50 - 96.8 (paper large) = -1.30
    write_run(root / "sst2-1", "SST-2", 1, "microsoft/deberta-large", {"dev": {"accuracy": 0.95}})
    write_run(root / "sst2-2", "SST-2", 2, "microsoft/deberta-large", {"dev": {"accuracy": 0.96}})
    write_run(root / "sst2-3", "SST-2", 3, "microsoft/deberta-large", None)
    # STS-B (regression) from a tiny model: no paper model of that size, so both paper columns and no
    # difference. Seed 3 has its evaluation only in eval_results.json.
    #   pearson 80.0, 82.0, 87.0 -> mean 83.00; deviations -3, -1, 4 -> var 26/2 = 13 -> std 3.6056 -> 3.61
    write_run(root / "stsb-1", "STS-B", 1, "tiny", {"dev": {"pearson": 0.80, "spearman": 0.79}})
    write_run(root / "stsb-2", "STS-B", 2, "tiny", {"dev": {"pearson": 0.82, "spearman": 0.80}})
    write_run(root / "stsb-3", "STS-B", 3, "tiny", {"dev": {"pearson": 0.87, "spearman": 0.86}},
              eval_in_metrics=False)
    return root


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """The run folders of :func:`write_runs`, for a test that may change them."""
    return write_runs(tmp_path / "runs")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The report on :func:`write_runs`' folders, made once: (its folder, report.md)."""
    root = write_runs(tmp_path_factory.mktemp("report") / "runs")
    markdown = report.make_report([root], root.parent / "out").read_text(encoding="utf-8")
    return root.parent / "out", markdown


def results_table(markdown: str) -> list[str]:
    """The body lines of the report's results table (after its header and separator lines)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Task | Model |")) + 2
    return lines[start:lines.index("", start)]


EXPECTED_ROWS = [
    "| MNLI | base | accuracy (m/mm) | 3 | 86.00/84.60 | 1.00/0.40 | 88.8/88.5 | 91.1/91.1 "
    "| -2.80/-3.90 (base) |",
    "| SST-2 | large | accuracy | 2 | 95.50 | 0.71 | n/a | 96.8 | -1.30 (large) |",
    "| STS-B | tiny | pearson | 3 | 83.00 | 3.61 | n/a | 92.8 | — |",
]


def test_table_means_stds_and_differences(built: tuple[Path, str]) -> None:
    assert results_table(built[1]) == EXPECTED_ROWS


def test_rows_hold_the_unrounded_numbers(runs_root: Path) -> None:
    runs = [report.load_run(path) for path in report.find_run_dirs([runs_root])]
    mnli, sst2, stsb = report.summarize(runs)
    assert mnli.splits == ("dev_matched", "dev_mismatched")
    assert mnli.means == pytest.approx((86.0, 84.6))
    assert mnli.stds == pytest.approx((1.0, 0.4))
    assert mnli.diffs == pytest.approx((-2.8, -3.9))
    assert (sst2.runs, sst2.size) == (2, "large")
    assert sst2.stds[0] == pytest.approx(0.5**0.5)
    assert stsb.stds[0] == pytest.approx(13**0.5)
    assert stsb.diffs is None and stsb.paper_large == (92.8,)


def test_single_run_custom_task_uses_its_first_metric(tmp_path: Path) -> None:
    # Tasks neither the registry nor the paper knows, one run each: the first metric they report, "—"
    # for std and paper. An error metric is shown as it is, not as a percentage.
    write_run(tmp_path / "runs" / "mine", "my_task", 7, None, {"dev": {"f1": 0.5, "accuracy": 0.6}})
    write_run(tmp_path / "runs" / "reg", "my_regression", 7, None, {"dev": {"mse": 0.0123}})
    markdown = report.make_report([tmp_path / "runs"], tmp_path / "out").read_text(encoding="utf-8")
    assert results_table(markdown) == [
        "| my_regression | scratch | mse | 1 | 0.0123 | — | — | — | — |",
        "| my_task | scratch | f1 | 1 | 50.00 | — | — | — | — |",
    ]


def test_registry_main_metric_splits_and_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = {"mrpc": SimpleNamespace(name="MRPC", main_metric="f1", eval_splits=["dev"])}

    def fake_get_task(name: str, data_dir: str | None = None) -> SimpleNamespace:
        if name.lower() not in specs:
            raise TaskError(f"unknown task {name!r}")
        return specs[name.lower()]

    monkeypatch.setattr(report, "get_task", fake_get_task)
    # Both spellings are one task under the registry's name. Main metric f1 first, then the paper's
    # accuracy with the comparison:
    #   f1 90.0, 92.0 -> mean 91.00, var (1 + 1)/1 = 2 -> std 1.4142 -> 1.41
    #   accuracy 88.0, 89.0 -> mean 88.50, var .5 -> std 0.71; 88.50 - 91.9 (paper large) = -3.40
    write_run(tmp_path / "runs" / "a", "mrpc", 1, "large", {"dev": {"accuracy": 0.88, "f1": 0.90}})
    write_run(tmp_path / "runs" / "b", "MRPC", 2, "large", {"dev": {"accuracy": 0.89, "f1": 0.92}})
    # Not in the registry: reported under its own name, not a crash.
    write_run(tmp_path / "runs" / "c", "custom", 1, "large", {"dev": {"acc": 0.5}})
    markdown = report.make_report([tmp_path / "runs"], tmp_path / "out").read_text(encoding="utf-8")
    assert "| MRPC | large | f1 | 2 | 91.00 | 1.41 | — | — | — |" in markdown
    assert "| MRPC | large | accuracy | 2 | 88.50 | 0.71 | n/a | 91.9 | -3.40 (large) |" in markdown
    assert "| custom | large | acc | 1 | 50.00 | — | — | — | — |" in markdown


def test_paper_table_agrees_with_the_task_registry() -> None:
    # The paper's task names, splits and metric names are the ones the training app records.
    for name, paper in report.PAPER_RESULTS.items():
        spec = get_task(name)
        assert spec.name == name
        assert paper.splits == tuple(spec.eval_splits)
        assert paper.metric in spec.metrics


def test_incomplete_run_is_listed_not_counted(built: tuple[Path, str]) -> None:
    markdown = built[1]
    assert "9 run folders: 8 complete, 1 incomplete." in markdown
    incomplete = markdown.split("## Incomplete runs", 1)[1]
    assert "sst2-3" in incomplete and "(SST-2, seed 3)" in incomplete
    assert "sst2-1" not in incomplete


def test_only_incomplete_runs_still_make_a_report(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "early", "RTE", 1, "base", None)
    markdown = report.make_report([tmp_path / "runs"], tmp_path / "out").read_text(encoding="utf-8")
    assert "No run has evaluated yet." in markdown
    assert "**incomplete**" in markdown
    assert not list((tmp_path / "out").glob("*.png"))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_figures_are_valid_pngs_linked_from_the_report(built: tuple[Path, str]) -> None:
    out, markdown = built
    names = {"tasks_vs_paper.png", "curves_MNLI.png", "curves_SST-2.png", "curves_STS-B.png"}
    assert {path.name for path in out.glob("*.png")} == names
    for name in names:
        assert f"]({name})" in markdown
        width, height = png_size(out / name)
        assert 600 <= width <= 2500 and 350 <= height <= 1000, (name, width, height)
        assert (out / name).stat().st_size > 10_000  # a blank canvas compresses to far less


@pytest.mark.parametrize(
    ("init_model", "size"),
    [("base", "base"), ("large", "large"), ("base-mnli", "base"), ("microsoft/deberta-large-mnli", "large"),
     ("/models/deberta_base/", "base"), ("/base/checkpoints/tiny", None), ("xlarge", None),
     ("microsoft/deberta-v3-base", None), ("tiny", None), (None, None), ("", None)],
)
def test_model_size_from_init_model(init_model: str | None, size: str | None) -> None:
    assert report.model_size(init_model) == size


@pytest.mark.parametrize(
    ("init_model", "model_config", "label"),
    [("microsoft/deberta-base", None, "base"), ("runs/pretrain/step-500/", "tiny", "step-500"),
     (None, "tiny", "tiny (scratch)"), (None, "configs/small.json", "small (scratch)"), (None, None, "scratch")],
)
def test_model_label(init_model: str | None, model_config: str | None, label: str) -> None:
    assert report.model_label(init_model, model_config) == label


def test_task_spellings_are_one_task(tmp_path: Path) -> None:
    # config.yaml may spell the task as it was typed; the registry's name groups the runs.
    #   accuracy 90.0, 92.0 -> mean 91.00, std sqrt(2) = 1.41; 91.00 - 96.8 = -5.80
    write_run(tmp_path / "runs" / "a", "sst2", 1, "large", {"dev": {"accuracy": 0.90}})
    write_run(tmp_path / "runs" / "b", "SST-2", 2, "large", {"dev": {"accuracy": 0.92}})
    runs = [report.load_run(path) for path in report.find_run_dirs([tmp_path / "runs"])]
    assert report.markdown_table(report.summarize(runs)).splitlines()[2:] == [
        "| SST-2 | large | accuracy | 2 | 91.00 | 1.41 | n/a | 96.8 | -5.80 (large) |"
    ]


def test_cli_writes_report_into_default_output(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(runs_root / "mnli-1"), str(runs_root / "mnli-2"), "--title", "Two seeds"]) == 0
    out = capsys.readouterr().out
    # The default output is report/ in the common parent of the run folders.
    assert f"report: {runs_root / 'report' / 'report.md'}" in out
    assert "figure: " in out
    markdown = (runs_root / "report" / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Two seeds\n")
    # Seeds 1 and 2 only: (85 + 86)/2 = 85.50, (84.2 + 84.6)/2 = 84.40.
    assert "| 2 | 85.50/84.40 |" in markdown


def expect_cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect exit status 2, return its one-line error message."""
    assert report.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_cli_no_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "config.yaml").write_text("task_name: RTE\n", encoding="utf-8")
    message = expect_cli_error([str(tmp_path / "empty")], capsys)
    assert "no run folders" in message and str(tmp_path / "empty") in message


def test_cli_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = expect_cli_error([str(tmp_path / "nowhere")], capsys)
    assert message == f"error: {tmp_path / 'nowhere'} does not exist"


def test_cli_unreadable_metrics_line(runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = runs_root / "sst2-1" / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"type": "train", "step": 30, "loss": 0.'  # cut off mid-write
    metrics.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = expect_cli_error([str(runs_root), "--output", str(tmp_path / "out")], capsys)
    assert f"{metrics} line 3 is not valid JSON" in message


def test_cli_record_without_step(runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = runs_root / "stsb-1" / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines()
    with metrics.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"type": "eval", "split": "dev", "metrics": {"pearson": 0.9}}) + "\n")
    message = expect_cli_error([str(runs_root), "--output", str(tmp_path / "out")], capsys)
    assert message == f"error: {metrics} line {len(lines) + 1}: the eval record has no integer 'step'"


def test_cli_config_without_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", "RTE", 1, "base", {"dev": {"accuracy": 0.7}})
    (run / "config.yaml").write_text("seed: 1\n", encoding="utf-8")
    message = expect_cli_error([str(run), "--output", str(tmp_path / "out")], capsys)
    assert message == f"error: {run / 'config.yaml'} has no task_name"


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy re-runs the module
def test_module_entry_point_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # `python -m DeBERTa.apps.report` passes main()'s status on as the exit status. Run in-process:
    # a subprocess would spend seconds importing torch.
    monkeypatch.setattr(sys, "argv", ["report", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("DeBERTa.apps.report", run_name="__main__")
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'} does not exist\n"
