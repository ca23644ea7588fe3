"""Task registry: every task the apps know, by name, as a declarative :class:`TaskSpec`.

``get_task("mnli")`` returns the spec of a GLUE task (:mod:`.glue`); names are matched ignoring case,
``-`` and ``_`` (``SST-2``, ``sst2``, ``sst_2``). User tasks are registered from Python with
:func:`register_task` or described by a ``task.yaml`` in the data dir (see :mod:`.custom` for the
format). The rest of the code knows tasks only through these specs: :mod:`DeBERTa.apps.data` reads
their files, :mod:`DeBERTa.apps.metrics` scores them.
"""

from __future__ import annotations

from pathlib import Path

from .custom import TASK_FILE_NAMES, custom_task, find_task_file, load_task_file
from .glue import GLUE_TASKS
from .kinds import KINDS, KindTask, get_kind_task, kind_task_names
from .spec import FILE_FORMATS, Column, SplitSpec, TaskError, TaskSpec

__all__ = [
    "FILE_FORMATS",
    "KindTask",
    "TASK_FILE_NAMES",
    "Column",
    "SplitSpec",
    "TaskError",
    "TaskSpec",
    "custom_task",
    "get_task",
    "get_task_spec",
    "is_kind_task",
    "load_task_file",
    "register_task",
    "task_names",
]

_REGISTRY: dict[str, TaskSpec] = {}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    """Make ``spec`` available to :func:`get_task` under its name and aliases; returns it.

    A name already taken by another task is a :class:`TaskError` unless ``replace`` is true.
    """
    keys = [_key(spec.name), *(_key(alias) for alias in spec.aliases)]
    taken = [_REGISTRY[k].name for k in keys if k in _REGISTRY and _REGISTRY[k] is not spec]
    if taken and not replace:
        raise TaskError(f"task name {spec.name!r} (or an alias) is already used by {taken[0]}")
    for key in keys:
        _REGISTRY[key] = spec
    return spec


def task_names() -> list[str]:
    """Names of the registered tasks, in registration order (GLUE first), then the kind tasks (NER, SQuAD,
    SQuAD2, RACE, SWAG)."""
    return list(dict.fromkeys(spec.name for spec in _REGISTRY.values())) + kind_task_names()


def is_kind_task(task: object) -> bool:
    """Whether ``task`` is of a kind beyond classification (:mod:`.kinds`: token, span, choice)."""
    return getattr(task, "kind", None) in KINDS


def get_task(name: str, data_dir: str | Path | None = None) -> TaskSpec | KindTask:
    """The task called ``name`` (case-insensitive; ``-``/``_`` ignored; aliases accepted).

    Looked up in order: registered tasks; the kind tasks (:func:`~.kinds.get_kind_task`: NER, SQuAD,
    SQuAD2, RACE, SWAG); ``name`` as the path of a task file; a task file (see :data:`TASK_FILE_NAMES`)
    in ``data_dir`` whose ``name`` matches. Anything else is a :class:`TaskError` listing the known tasks.
    """
    spec = _REGISTRY.get(_key(name))
    if spec is not None:
        return spec
    kind = get_kind_task(name)
    if kind is not None:
        return kind
    if Path(name).suffix in (".yaml", ".yml", ".json") and Path(name).is_file():
        return load_task_file(name)
    task_file = find_task_file(data_dir) if data_dir is not None else None
    if task_file is not None:
        spec = load_task_file(task_file)
        if _key(spec.name) != _key(name):
            raise TaskError(f"--task_name {name} does not match the task file {task_file}, which defines "
                            f"task {spec.name!r}")
        return spec
    where = f" and {data_dir} has no {'/'.join(TASK_FILE_NAMES)}" if data_dir is not None else ""
    raise TaskError(f"unknown task {name!r}{where}; known tasks: {', '.join(task_names())} "
                    f"(for your own data see DeBERTa/apps/tasks/custom.py)")


def get_task_spec(name: str, data_dir: str | Path | None = None) -> TaskSpec:
    """:func:`get_task` for a classification task (a GLUE or user task); a :class:`TaskError` for a kind task."""
    task = get_task(name, data_dir)
    if not isinstance(task, TaskSpec):
        raise TaskError(f"task {task.name} is a {task.kind} task, not a classification task")
    return task


for _spec in GLUE_TASKS:
    register_task(_spec)
