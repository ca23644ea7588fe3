"""The GLUE tasks, declared exactly as the official GLUE files lay them out.

Every file is tab-separated and read with no quote processing (GLUE text has unbalanced ``"``).
Columns are 0-based. Label lists are in the original DeBERTa release's order, because the classifier
rows of its fine-tuned checkpoints (``base_mnli``, ``large_mnli``) follow that order: MNLI is
``contradiction, neutral, entailment``, not the alphabetical or Hugging Face order.

Main metrics are the columns the DeBERTa paper reports: MCC for CoLA, accuracy for MRPC and QQP
(F1 is reported alongside), Pearson for STS-B.

Malformed rows: only QQP skips them (the public ``train.tsv`` has rows whose question holds a line
break, which splits one row into two short ones); they are counted and logged. Its test split never
skips — a missing test row would leave a hole in the leaderboard file. Every other task stops at the
first malformed row with its file and line.
"""

from __future__ import annotations

from .spec import SplitSpec, TaskSpec

_BINARY = ("0", "1")
_NLI2 = ("not_entailment", "entailment")
_MNLI = ("contradiction", "neutral", "entailment")


def _test(files: tuple[str, ...], text_columns: tuple[int, ...], leaderboard: str, *,
          name: str = "test", num_columns: int | None = None) -> SplitSpec:
    """An unlabeled split with a header, predicted into ``leaderboard``."""
    return SplitSpec(name, files, header=True, text_columns=text_columns, num_columns=num_columns,
                     leaderboard_file=leaderboard)


def _pair_task(name: str, labels: tuple[str, ...], num_columns: int, text_columns: tuple[int, int],
               label_column: int, *, metrics: tuple[str, ...] = ("accuracy",), main_metric: str = "accuracy",
               skip_malformed: bool = False, test_columns: tuple[int, int] | None = None,
               test_num_columns: int | None = None) -> TaskSpec:
    """A task whose train/dev files share a header layout and whose test file drops the label."""
    def labeled(split: str) -> SplitSpec:
        return SplitSpec(split, (f"{split}.tsv",), header=True, text_columns=text_columns,
                         label_column=label_column, num_columns=num_columns, skip_malformed=skip_malformed)

    return TaskSpec(
        name=name,
        splits=(
            labeled("train"),
            labeled("dev"),
            _test(("test.tsv",), test_columns or text_columns, f"{name}.tsv",
                  num_columns=test_num_columns if test_num_columns is not None else num_columns - 1),
        ),
        labels=labels,
        metrics=metrics,
        main_metric=main_metric,
    )


COLA = TaskSpec(
    name="CoLA",
    # train/dev rows: source, label, original judgement mark ('*' or empty), sentence — no header.
    splits=(
        SplitSpec("train", ("train.tsv",), header=False, text_columns=(3,), label_column=1, num_columns=4),
        SplitSpec("dev", ("dev.tsv",), header=False, text_columns=(3,), label_column=1, num_columns=4),
        _test(("test.tsv",), (1,), "CoLA.tsv", num_columns=2),
    ),
    labels=_BINARY,
    metrics=("mcc", "accuracy"),
    main_metric="mcc",
)

SST2 = TaskSpec(
    name="SST-2",
    splits=(
        SplitSpec("train", ("train.tsv",), header=True, text_columns=(0,), label_column=1, num_columns=2),
        SplitSpec("dev", ("dev.tsv",), header=True, text_columns=(0,), label_column=1, num_columns=2),
        _test(("test.tsv",), (1,), "SST-2.tsv", num_columns=2),
    ),
    labels=_BINARY,
    metrics=("accuracy",),
    main_metric="accuracy",
)

# Header "Quality #1 ID #2 ID #1 String #2 String"; the test file (which starts with a UTF-8 BOM) has
# the same five columns with an index in place of the quality label.
MRPC = _pair_task("MRPC", _BINARY, 5, (3, 4), 0, metrics=("accuracy", "f1"), test_num_columns=5)

# Header "id qid1 qid2 question1 question2 is_duplicate"; test "id question1 question2".
QQP = _pair_task("QQP", _BINARY, 6, (3, 4), 5, metrics=("accuracy", "f1"), skip_malformed=True,
                 test_columns=(1, 2), test_num_columns=3)

STSB = TaskSpec(
    name="STS-B",
    # index genre filename year old_index source1 source2 sentence1 sentence2 score (test: no score).
    splits=(
        SplitSpec("train", ("train.tsv",), header=True, text_columns=(7, 8), label_column=9, num_columns=10),
        SplitSpec("dev", ("dev.tsv",), header=True, text_columns=(7, 8), label_column=9, num_columns=10),
        _test(("test.tsv",), (7, 8), "STS-B.tsv", num_columns=9),
    ),
    labels=None,
    metrics=("pearson", "spearman"),
    main_metric="pearson",
    regression_range=(0.0, 5.0),
)


def _mnli_labeled(split: str, num_columns: int) -> SplitSpec:
    # Train rows have one annotator label before gold_label, dev rows five: the gold label is last.
    return SplitSpec(split, (f"{split}.tsv",), header=True, text_columns=(8, 9), label_column=-1,
                     num_columns=num_columns)


MNLI = TaskSpec(
    name="MNLI",
    splits=(
        _mnli_labeled("train", 12),
        _mnli_labeled("dev_matched", 16),
        _mnli_labeled("dev_mismatched", 16),
        _test(("test_matched.tsv",), (8, 9), "MNLI-m.tsv", name="test_matched", num_columns=10),
        _test(("test_mismatched.tsv",), (8, 9), "MNLI-mm.tsv", name="test_mismatched", num_columns=10),
    ),
    labels=_MNLI,
    metrics=("accuracy",),
    main_metric="accuracy",
    eval_splits=("dev_matched", "dev_mismatched"),
)

# Header "index question sentence label". The original release feeds the sentence first and the
# question second; kept, so that its recipes reproduce.
QNLI = _pair_task("QNLI", _NLI2, 4, (2, 1), 3)

# Header "index sentence1 sentence2 label".
RTE = _pair_task("RTE", _NLI2, 4, (1, 2), 3)
WNLI = _pair_task("WNLI", _BINARY, 4, (1, 2), 3)

AX = TaskSpec(
    name="AX",
    # GLUE ships it as diagnostic/diagnostic.tsv ("index sentence1 sentence2"); some mirrors as AX.tsv.
    splits=(_test(("diagnostic.tsv", "AX.tsv"), (1, 2), "AX.tsv", num_columns=3),),
    labels=_MNLI,
    eval_splits=(),
    aliases=("diagnostic",),
    predict_with="MNLI",
)

GLUE_TASKS: tuple[TaskSpec, ...] = (COLA, SST2, MRPC, QQP, STSB, MNLI, QNLI, RTE, WNLI, AX)
"""All GLUE tasks, in the benchmark's order."""
