"""Your own classification or regression task, from TSV, CSV or JSON-lines files.

From the command line
---------------------
Put a ``task.yaml`` (or ``task.yml`` / ``task.json``) next to your data and name the task::

    python -m DeBERTa.apps.train --task_name reviews --data_dir data/reviews --do_train --do_eval ...

``data/reviews/task.yaml``::

    name: reviews                  # must match --task_name (case, '-' and '_' do not matter)
    format: csv                    # tsv (default: split on tabs, no quote processing), csv, jsonl
    header: true                   # tsv/csv: the first line names the columns (default: true)
    files:                         # relative to --data_dir
      train: train.csv
      dev: dev.csv                 # evaluated during and after training
      test: test.csv               # optional; predicted with --do_predict, needs no label column
    text_columns: [title, body]    # one column, or two for a sentence pair; names or 0-based indices
    label_column: stars            # name or 0-based index
    labels: ["1", "2", "3", "4", "5"]   # classifier rows in this order; leave out for regression
    metrics: [accuracy]            # from: accuracy, f1, mcc, pearson, spearman
    main_metric: accuracy          # picks the best checkpoint; default: the first metric
    # optional:
    id_column: id                  # written as the index of prediction files (default: row position)
    regression_range: [0, 5]       # regression only: predictions are clipped to it
    skip_malformed: false          # skip (count, warn) train/dev rows with the wrong number of fields

Defaults: ``metrics`` is ``[accuracy]`` for classification and ``[pearson, spearman]`` for regression.
Every value of the label column must be one of ``labels`` — quote labels such as ``"yes"``/``"no"``,
which YAML would otherwise read as booleans. Rows of a file with a header must have as many fields as
the header. With columns given by index, keep the label column after the text columns so that a test
file without labels keeps the same positions. In JSON lines, columns are keys, and a label that is not
a string is matched by its JSON spelling (``1``, ``true``). Predictions of the test split are written
to ``<name>.tsv``. ``--task_name path/to/task.yaml`` also works.

From Python
-----------
::

    from DeBERTa.apps.tasks import custom_task, register_task

    register_task(custom_task(
        "reviews", files={"train": "train.jsonl", "dev": "dev.jsonl"}, file_format="jsonl",
        text_columns=["text"], label_column="label", labels=["neg", "pos"], metrics=["accuracy", "f1"]))

after which ``get_task("reviews")`` returns it like any GLUE task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

import yaml

from .spec import FILE_FORMATS, Column, SplitSpec, TaskError, TaskSpec

TASK_FILE_NAMES = ("task.yaml", "task.yml", "task.json")
"""File names looked for in ``--data_dir`` when ``--task_name`` is not a registered task."""

_SPLITS = ("train", "dev", "test")
_REQUIRED_KEYS = {"name", "files", "text_columns", "label_column"}
_OPTIONAL_KEYS = {"format", "header", "labels", "metrics", "main_metric", "id_column", "regression_range",
                  "skip_malformed"}


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def custom_task(name: str, *, files: Mapping[str, str], text_columns: Sequence[Column], label_column: Column,
                labels: Sequence[str] | None, metrics: Sequence[str] | None = None,
                main_metric: str | None = None, file_format: str = "tsv", header: bool = True,
                id_column: Column | None = None, regression_range: Sequence[float] | None = None,
                skip_malformed: bool = False) -> TaskSpec:
    """A :class:`TaskSpec` for user data; arguments as the keys of a task file (module docstring).

    ``files`` maps ``train`` / ``dev`` / ``test`` to paths relative to the data dir; ``test`` is read
    without labels. ``labels=None`` makes a regression task.
    """
    # The name becomes file names (the leaderboard file, prediction files): a plain name, never a path.
    if not _PLAIN_NAME.fullmatch(name):
        raise TaskError(f"task name {name!r} must be a plain name: letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit")
    where = f"task {name}"
    unknown_splits = sorted(set(files) - set(_SPLITS))
    if unknown_splits or not files:
        raise TaskError(f"{where}: files must map some of {list(_SPLITS)} to file names, got {dict(files)}")
    for split, file in files.items():
        # Data files live in --data_dir: no absolute path, no '..' (locate_file also checks where symlinks lead).
        parts = PurePath(file).parts
        if not file or PurePath(file).is_absolute() or ".." in parts or PureWindowsPath(file).drive:
            raise TaskError(f"{where}: files.{split} {file!r} must be a path inside the data folder "
                            "(relative, without '..')")
    columns = tuple(_column(c, f"{where}: text_columns") for c in _sequence(text_columns, f"{where}: text_columns"))
    label = _column(label_column, f"{where}: label_column")
    id_col = None if id_column is None else _column(id_column, f"{where}: id_column")
    if file_format == "jsonl" and any(isinstance(c, int) for c in (*columns, label, id_col)):
        raise TaskError(f"{where}: JSON-lines columns are keys; give them by name")
    if file_format != "jsonl" and not header:
        named = [c for c in (*columns, label, id_col) if isinstance(c, str)]
        if named:
            raise TaskError(f"{where}: columns {named} are given by name but the files have no header")
    if labels is not None:
        labels = tuple(_label(value, where) for value in _sequence(labels, f"{where}: labels"))
    if metrics is None:
        metrics = ("accuracy",) if labels is not None else ("pearson", "spearman")
    metrics = tuple(_sequence(metrics, f"{where}: metrics"))
    if regression_range is not None:
        regression_range = _range(regression_range, labels is None, where)
    splits = tuple(
        SplitSpec(
            split, (files[split],), header=header, text_columns=columns,
            label_column=None if split == "test" else label, id_column=id_col,
            skip_malformed=skip_malformed and split != "test",
            leaderboard_file=f"{name}.tsv" if split == "test" else None,
        )
        for split in _SPLITS
        if split in files
    )
    return TaskSpec(
        name=name,
        splits=splits,
        labels=labels,
        metrics=metrics,
        main_metric=main_metric or (metrics[0] if metrics else None),
        eval_splits=("dev",) if "dev" in files else (),
        file_format=file_format,
        regression_range=regression_range,
    )


def load_task_file(path: str | Path) -> TaskSpec:
    """Read a ``task.yaml`` / ``task.json`` (module docstring) into a :class:`TaskSpec`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as err:
        raise TaskError(f"cannot read task file {path}: {err.strerror}") from None
    except (ValueError, yaml.YAMLError) as err:
        # Both parsers put the position in the first line of their message.
        raise TaskError(f"task file {path} is not valid {path.suffix[1:].upper()}: "
                        f"{str(err).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise TaskError(f"task file {path} must hold a mapping of keys such as name, files, text_columns")
    missing = sorted(_REQUIRED_KEYS - document.keys())
    unknown = sorted(document.keys() - _REQUIRED_KEYS - _OPTIONAL_KEYS)
    if missing or unknown:
        problem = f"missing keys {missing}" if missing else f"unknown keys {unknown}"
        raise TaskError(f"task file {path}: {problem}; keys are {sorted(_REQUIRED_KEYS | _OPTIONAL_KEYS)}")
    files, text_columns = document["files"], document["text_columns"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise TaskError(f"task file {path}: files must map train/dev/test to file names")
    if isinstance(text_columns, str | int):
        text_columns = [text_columns]
    file_format = document.get("format", "tsv")
    if file_format not in FILE_FORMATS:
        raise TaskError(f"task file {path}: format {file_format!r} is not one of {list(FILE_FORMATS)}")
    try:
        return custom_task(
            str(document["name"]), files=files, text_columns=text_columns,
            label_column=document["label_column"], labels=document.get("labels"),
            metrics=document.get("metrics"), main_metric=document.get("main_metric"),
            file_format=file_format, header=_flag(document, "header", True, path),
            id_column=document.get("id_column"), regression_range=document.get("regression_range"),
            skip_malformed=_flag(document, "skip_malformed", False, path),
        )
    except TaskError as err:
        raise TaskError(f"task file {path}: {err}") from None


def find_task_file(data_dir: str | Path) -> Path | None:
    """The task file in ``data_dir`` (first of :data:`TASK_FILE_NAMES`), or ``None``."""
    for name in TASK_FILE_NAMES:
        candidate = Path(data_dir) / name
        if candidate.is_file():
            return candidate
    return None


def _flag(document: dict[str, Any], key: str, default: bool, path: Path) -> bool:
    value = document.get(key, default)
    if not isinstance(value, bool):  # bool("false") is True
        raise TaskError(f"task file {path}: {key} must be true or false, got {value!r}")
    return value


def _sequence(value: Any, where: str) -> Sequence[Any]:
    # A bare string would otherwise be iterated character by character.
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TaskError(f"{where} must be a list, got {value!r}")
    return value


def _range(value: Any, regression: bool, where: str) -> tuple[float, float]:
    bounds = _sequence(value, f"{where}: regression_range")
    numeric = all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
    if not regression or len(bounds) != 2 or not numeric or not bounds[0] < bounds[1]:
        raise TaskError(f"{where}: regression_range must be [low, high] on a regression task (no labels), "
                        f"got {value!r}")
    return float(bounds[0]), float(bounds[1])


def _column(value: Any, where: str) -> Column:
    # bool is an int subclass; YAML's `yes` would otherwise silently become column 1.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TaskError(f"{where}: a column is a 0-based index or a name, got {value!r}")
    return value


def _label(value: Any, where: str) -> str:
    if isinstance(value, bool):
        raise TaskError(f"{where}: label {value!r} was read as a boolean; write it in quotes, e.g. \"yes\"")
    if not isinstance(value, int | str):
        raise TaskError(f"{where}: labels must be strings or integers, got {value!r}")
    return str(value)
