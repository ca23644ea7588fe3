"""Task registry, GLUE specs against the official file layouts, and custom tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from glue_fixtures import FOLDERS, KEYWORDS, QQP_BROKEN_ROWS, write_glue_task

from DeBERTa.apps import tasks
from DeBERTa.apps.data import DataError, read_examples
from DeBERTa.apps.tasks import TaskError, custom_task, get_task, register_task
from DeBERTa.deberta.errors import DeBERTaError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "glue-samples"

GLUE = ["CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI", "AX"]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))


# --------------------------------------------------------------------------------------------------
# Registry and specs


@pytest.mark.parametrize(("spelling", "name"), [
    ("MNLI", "MNLI"), ("mnli", "MNLI"), ("SST-2", "SST-2"), ("sst2", "SST-2"), ("Sst_2", "SST-2"),
    ("STS-B", "STS-B"), ("stsb", "STS-B"), ("sts-b", "STS-B"), ("cola", "CoLA"), ("ax", "AX"),
    ("diagnostic", "AX"), ("QQP", "QQP"), ("wnli", "WNLI"),
])
def test_get_task_spellings(spelling: str, name: str) -> None:
    assert get_task(spelling).name == name


def test_all_glue_tasks_registered_in_order() -> None:
    assert tasks.task_names()[: len(GLUE)] == GLUE


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(TaskError) as err:
        get_task("mnli2")
    message = str(err.value)
    assert isinstance(err.value, DeBERTaError) and "\n" not in message
    assert "'mnli2'" in message and all(name in message for name in GLUE)


def test_label_orders_follow_the_original_release() -> None:
    # The fine-tuned MNLI checkpoints' classifier rows are in this order.
    assert get_task("MNLI").labels == ("contradiction", "neutral", "entailment")
    assert get_task("AX").labels == get_task("MNLI").labels
    for name in ("QNLI", "RTE"):
        assert get_task(name).labels == ("not_entailment", "entailment")
    for name in ("CoLA", "SST-2", "MRPC", "QQP", "WNLI"):
        assert get_task(name).labels == ("0", "1")
    assert get_task("STS-B").labels is None and get_task("STS-B").num_labels == 1
    assert get_task("MNLI").num_labels == 3


def test_metrics_and_splits() -> None:
    expected = {
        "CoLA": (("mcc", "accuracy"), "mcc"), "SST-2": (("accuracy",), "accuracy"),
        "MRPC": (("accuracy", "f1"), "accuracy"), "QQP": (("accuracy", "f1"), "accuracy"),
        "STS-B": (("pearson", "spearman"), "pearson"), "MNLI": (("accuracy",), "accuracy"),
        "QNLI": (("accuracy",), "accuracy"), "RTE": (("accuracy",), "accuracy"),
        "WNLI": (("accuracy",), "accuracy"), "AX": ((), None),
    }
    for name, (metric_names, main) in expected.items():
        spec = get_task(name)
        assert (spec.metrics, spec.main_metric) == (metric_names, main), name
    mnli = get_task("MNLI")
    assert mnli.eval_splits == ("dev_matched", "dev_mismatched")
    assert mnli.test_splits == ("test_matched", "test_mismatched")
    assert mnli.train_split == "train"
    assert get_task("SST-2").eval_splits == ("dev",)
    ax = get_task("AX")
    assert (ax.train_split, ax.eval_splits, ax.test_splits, ax.predict_with) == (None, (), ("test",), "MNLI")


def test_leaderboard_file_names() -> None:
    names = {(spec.name, split): spec.prediction_file(split) for spec in map(get_task, GLUE)
             for split in spec.test_splits}
    assert names == {
        ("CoLA", "test"): "CoLA.tsv", ("SST-2", "test"): "SST-2.tsv", ("MRPC", "test"): "MRPC.tsv",
        ("QQP", "test"): "QQP.tsv", ("STS-B", "test"): "STS-B.tsv", ("MNLI", "test_matched"): "MNLI-m.tsv",
        ("MNLI", "test_mismatched"): "MNLI-mm.tsv", ("QNLI", "test"): "QNLI.tsv", ("RTE", "test"): "RTE.tsv",
        ("WNLI", "test"): "WNLI.tsv", ("AX", "test"): "AX.tsv",
    }
    assert get_task("MNLI").prediction_file("dev_matched") == "MNLI.dev_matched.tsv"


def test_unknown_split_names_the_task_splits() -> None:
    with pytest.raises(TaskError, match="task AX has no 'train' split .*MNLI.*splits are: test"):
        get_task("AX").split("train")
    with pytest.raises(TaskError, match="dev_matched, dev_mismatched"):
        get_task("MNLI").split("dev")


def test_spec_validation() -> None:
    spec = get_task("SST-2")
    with pytest.raises(TaskError, match="unknown metrics"):
        tasks.TaskSpec("x", spec.splits, ("0", "1"), metrics=("acc",), main_metric="acc")
    with pytest.raises(TaskError, match="main metric"):
        tasks.TaskSpec("x", spec.splits, ("0", "1"), metrics=("accuracy",), main_metric="f1")
    with pytest.raises(TaskError, match="distinct"):
        tasks.TaskSpec("x", spec.splits, ("0", "0"), metrics=("accuracy",), main_metric="accuracy")
    with pytest.raises(TaskError, match="eval split 'test'"):
        tasks.TaskSpec("x", spec.splits, ("0", "1"), metrics=("accuracy",), main_metric="accuracy",
                       eval_splits=("test",))
    with pytest.raises(TaskError, match=r"metrics \['pearson'\] do not apply to a classification task"):
        tasks.TaskSpec("x", spec.splits, ("0", "1"), metrics=("pearson",), main_metric="pearson")
    with pytest.raises(TaskError, match="only allowed on labeled"):
        tasks.SplitSpec("test", ("test.tsv",), header=True, text_columns=(0,), skip_malformed=True)


# --------------------------------------------------------------------------------------------------
# Every GLUE task's reader on hand-written files in the official layouts

# (task, {file: content}, split, [(text_a, text_b, label id or score or None), ...])
LAYOUTS = [
    ("CoLA", {"train.tsv": "gj04\t1\t\tThe cat slept on the mat.\ngj04\t0\t*\tCat the mat on slept.\n"},
     "train", [("The cat slept on the mat.", None, 1), ("Cat the mat on slept.", None, 0)]),
    ("CoLA", {"test.tsv": "index\tsentence\n0\tShe sings \"loudly.\n1\tWe left.\n"},
     "test", [('She sings "loudly.', None, None), ("We left.", None, None)]),
    ("SST-2", {"dev.tsv": "sentence\tlabel\na gem of a film \t1\ntedious , flat \t0\n"},
     "dev", [("a gem of a film ", None, 1), ("tedious , flat ", None, 0)]),
    ("SST-2", {"test.tsv": "index\tsentence\n0\tit 's \" fine\n"}, "test", [('it \'s " fine', None, None)]),
    ("MRPC", {"train.tsv": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                           "1\t11\t12\tHe said \"no.\tHe refused.\n0\t13\t14\tPrices rose.\tIt rained.\n"},
     "train", [('He said "no.', "He refused.", 1), ("Prices rose.", "It rained.", 0)]),
    ("MRPC", {"test.tsv": "\ufeffindex\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t21\t22\tA b.\tC d.\n"},
     "test", [("A b.", "C d.", None)]),
    ("QQP", {"dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                        "7\t1\t2\tHow do I cook rice?\tWhat is the way to cook rice?\t1\n"},
     "dev", [("How do I cook rice?", "What is the way to cook rice?", 1)]),
    ("QQP", {"test.tsv": "id\tquestion1\tquestion2\n0\tWhy is the sky blue?\tWhat colour is the sky?\n"},
     "test", [("Why is the sky blue?", "What colour is the sky?", None)]),
    ("STS-B", {"train.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\t"
                            "score\n0\tmain-news\theadlines\t2015\t0001\tnone\tnone\tA man runs.\tA man jogs.\t"
                            "4.250\n"},
     "train", [("A man runs.", "A man jogs.", 4.25)]),
    ("STS-B", {"test.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
                           "0\tmain-news\theadlines\t2015\t0002\tnone\tnone\tA dog.\tA cat.\n"},
     "test", [("A dog.", "A cat.", None)]),
    ("MNLI", {"train.tsv": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                           "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
                           "0\t1\t1n\tfiction\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tIt is late.\tIt is early.\t"
                           "contradiction\tcontradiction\n"},
     "train", [("It is late.", "It is early.", 0)]),
    ("MNLI", {"dev_mismatched.tsv": "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\t"
                                    "label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
                                    "0\t1\t1e\tletters\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tAll came.\tSome came.\t"
                                    "entailment\tneutral\tentailment\tentailment\tentailment\tentailment\n"},
     "dev_mismatched", [("All came.", "Some came.", 2)]),
    ("MNLI", {"test_matched.tsv": "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\n"
                                  "0\t5\t5n\tslate\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tX runs.\tY sits.\n"},
     "test_matched", [("X runs.", "Y sits.", None)]),
    # QNLI: the sentence is fed first and the question second, as the original release does.
    ("QNLI", {"train.tsv": "index\tquestion\tsentence\tlabel\n0\tWho wrote it?\tShe wrote it.\tentailment\n"},
     "train", [("She wrote it.", "Who wrote it?", 1)]),
    ("QNLI", {"test.tsv": "index\tquestion\tsentence\n0\tWhen?\tAt noon.\n"}, "test", [("At noon.", "When?", None)]),
    ("RTE", {"dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tRain fell.\tIt was dry.\tnot_entailment\n"},
     "dev", [("Rain fell.", "It was dry.", 0)]),
    ("WNLI", {"train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tJo met Al. He smiled.\tAl smiled.\t1\n"},
     "train", [("Jo met Al. He smiled.", "Al smiled.", 1)]),
    ("WNLI", {"test.tsv": "index\tsentence1\tsentence2\n0\tP.\tQ.\n"}, "test", [("P.", "Q.", None)]),
    ("AX", {"diagnostic.tsv": "index\tsentence1\tsentence2\n0\tThe cat sat.\tThe cat did not sit.\n"},
     "test", [("The cat sat.", "The cat did not sit.", None)]),
    ("AX", {"AX.tsv": "index\tsentence1\tsentence2\n0\tA.\tB.\n1\tC.\tD.\n"},
     "test", [("A.", "B.", None), ("C.", "D.", None)]),
]


@pytest.mark.parametrize(("task", "files", "split", "expected"), LAYOUTS,
                         ids=[f"{t}-{s}-{next(iter(f))}" for t, f, s, _ in LAYOUTS])
def test_reader_on_official_layout(tmp_path: Path, task: str, files: dict[str, str], split: str,
                                   expected: list[tuple]) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    examples = read_examples(get_task(task), tmp_path, split)
    assert [(ex.text_a, ex.text_b, ex.label) for ex in examples] == expected
    assert [ex.guid for ex in examples] == [str(i) for i in range(len(expected))]


@pytest.mark.parametrize("task", GLUE)
def test_fixture_folders_read_back_with_labels_matching_keywords(tmp_path: Path, task: str) -> None:
    spec = get_task(task)
    folder = write_glue_task(tmp_path, task, n_train=20, n_dev=12, n_test=8, seed=3)
    assert folder == tmp_path / FOLDERS[spec.name]
    sizes = {"train": 20, "test": 8}
    for split in spec.split_names:
        examples = read_examples(spec, folder, split)
        assert len(examples) == sizes.get(split.split("_")[0], 12), split
        assert len(examples.skipped_lines) == (2 * QQP_BROKEN_ROWS if (task, split) == ("QQP", "train") else 0)
        for ex in examples:
            # The keyword of the example's label sits in the text the spec says carries it.
            carrier = ex.text_a if spec.name in ("CoLA", "SST-2", "QNLI") else ex.text_b
            words = {word.strip('".') for word in carrier.split()}
            found = [i for i, keyword in enumerate(KEYWORDS[spec.name]) if keyword in words]
            assert len(found) == 1, (split, ex)
            if ex.label is None:
                continue
            if spec.is_regression:
                assert (ex.label >= 3.5) == bool(found[0]) and 0.0 <= ex.label <= 5.0
            else:
                assert ex.label == found[0]


def test_fixtures_are_deterministic_and_balanced(tmp_path: Path) -> None:
    a = write_glue_task(tmp_path / "a", "MNLI", seed=5)
    b = write_glue_task(tmp_path / "b", "MNLI", seed=5)
    c = write_glue_task(tmp_path / "c", "MNLI", seed=6)
    assert (a / "train.tsv").read_bytes() == (b / "train.tsv").read_bytes()
    assert (a / "train.tsv").read_bytes() != (c / "train.tsv").read_bytes()
    labels = [ex.label for ex in read_examples(get_task("MNLI"), a, "train")]
    assert sorted(set(labels)) == [0, 1, 2] and max(map(labels.count, {0, 1, 2})) - min(
        map(labels.count, {0, 1, 2})) <= 1
    # MRPC's test file starts with a BOM, as the official one does.
    assert (write_glue_task(tmp_path, "MRPC") / "test.tsv").read_bytes().startswith(b"\xef\xbb\xbf")


# --------------------------------------------------------------------------------------------------
# The real GLUE rows in ../shared/glue-samples


def _raw_rows(path: Path) -> list[list[str]]:
    """Independent reading of a sample file: bytes split on newline then tab, header dropped."""
    lines = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8").split("\n")
    return [line.split("\t") for line in lines[1:] if line]


@pytest.mark.parametrize("task", ["MRPC", "RTE", "WNLI", "STS-B", "SST-2"])
def test_glue_samples(task: str) -> None:
    folder = SAMPLES / task
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    spec = get_task(task)
    for split in ("train", "dev", "test"):
        split_spec = spec.split(split)
        examples = read_examples(spec, folder, split)
        rows = _raw_rows(folder / f"{split}.tsv")
        assert len(examples) == len(rows)
        for ex, row in zip(examples, rows, strict=True):
            assert ex.text_a == row[split_spec.text_columns[0]]
            assert ex.text_b == (row[split_spec.text_columns[1]] if len(split_spec.text_columns) > 1 else None)
            if split_spec.labeled:
                label = row[split_spec.label_column]
                assert ex.label == (float(label) if spec.is_regression else spec.labels.index(label))
            else:
                assert ex.label is None


def test_glue_samples_quirks() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} is not present")
    # MRPC's test file starts with a BOM: the header is still recognised and skipped.
    mrpc_test = read_examples(get_task("MRPC"), SAMPLES / "MRPC", "test")
    assert len(mrpc_test) == 200 and not mrpc_test[0].text_a.startswith(("\ufeff", "Quality"))
    # Unbalanced quotes stay in the text and do not swallow the following rows.
    mrpc_train = read_examples(get_task("MRPC"), SAMPLES / "MRPC", "train")
    odd = [ex for ex in mrpc_train if (ex.text_a.count('"') + (ex.text_b or "").count('"')) % 2]
    assert odd, "the sample is known to hold unbalanced quotes"
    # STS-B scores are floats in [0, 5].
    scores = [ex.label for ex in read_examples(get_task("STS-B"), SAMPLES / "STS-B", "dev")]
    assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores) and len(set(scores)) > 10


# --------------------------------------------------------------------------------------------------
# Custom tasks


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_custom_task_from_yaml_csv(tmp_path: Path) -> None:
    _write(tmp_path / "task.yaml", """
name: reviews
format: csv
files: {train: train.csv, dev: dev.csv, test: test.csv}
text_columns: [title, body]
label_column: stars
labels: ["1", "2", "3"]
metrics: [accuracy, mcc]
main_metric: mcc
id_column: id
""")
    # CSV quoting: a comma and a line break inside quoted fields.
    _write(tmp_path / "train.csv", 'id,title,body,stars\na1,"Good, really","Line one\nline two",3\na2,Bad,Meh,1\n')
    _write(tmp_path / "dev.csv", "id,title,body,stars\nd1,Fine,Okay,2\n")
    _write(tmp_path / "test.csv", "id,title,body\nt9,New,Unseen\n")
    spec = get_task("Reviews", data_dir=tmp_path)
    assert (spec.name, spec.labels, spec.metrics, spec.main_metric, spec.eval_splits) == (
        "reviews", ("1", "2", "3"), ("accuracy", "mcc"), "mcc", ("dev",))
    train = read_examples(spec, tmp_path, "train")
    assert [(ex.guid, ex.text_a, ex.text_b, ex.label, ex.line) for ex in train] == [
        ("a1", "Good, really", "Line one\nline two", 2, 2), ("a2", "Bad", "Meh", 0, 4)]
    test = read_examples(spec, tmp_path, "test")
    assert [(ex.guid, ex.label) for ex in test] == [("t9", None)]
    assert spec.prediction_file("test") == "reviews.tsv"
    # The task file can also be named directly.
    assert get_task(str(tmp_path / "task.yaml")).name == "reviews"


def test_custom_task_jsonl_regression_from_json_file(tmp_path: Path) -> None:
    _write(tmp_path / "task.json", json.dumps({
        "name": "sim", "format": "jsonl", "files": {"train": "train.jsonl"}, "text_columns": ["a", "b"],
        "label_column": "score", "regression_range": [0, 1]}))
    _write(tmp_path / "train.jsonl", '{"a": "x", "b": "y", "score": 0.25}\n\n{"a": "p", "b": "q", "score": 1}\n')
    spec = get_task("sim", tmp_path)
    assert spec.is_regression and spec.metrics == ("pearson", "spearman") and spec.regression_range == (0.0, 1.0)
    assert [(ex.text_a, ex.text_b, ex.label) for ex in read_examples(spec, tmp_path, "train")] == [
        ("x", "y", 0.25), ("p", "q", 1.0)]


def test_custom_task_jsonl_non_string_labels_and_tsv_by_index(tmp_path: Path, registry: None) -> None:
    spec = register_task(custom_task("flags", files={"train": "t.jsonl"}, file_format="jsonl",
                                     text_columns=["text"], label_column="ok", labels=["false", "true", "0", "1"]))
    _write(tmp_path / "t.jsonl", '{"text": "a", "ok": true}\n{"text": "b", "ok": 1}\n')
    assert [ex.label for ex in read_examples(spec, tmp_path, "train")] == [1, 3]
    assert get_task("FLAGS") is spec

    by_index = custom_task("plain", files={"train": "t.tsv"}, header=False, text_columns=[1],
                           label_column=0, labels=["neg", "pos"])
    _write(tmp_path / "t.tsv", 'pos\tloved "it\nneg\thated it\n')
    assert [(ex.text_a, ex.label) for ex in read_examples(by_index, tmp_path, "train")] == [
        ('loved "it', 1), ("hated it", 0)]


def test_register_task_refuses_taken_names(registry: None) -> None:
    spec = custom_task("sst_2", files={"train": "t.tsv"}, text_columns=[0], label_column=1, labels=["a", "b"])
    with pytest.raises(TaskError, match="already used by SST-2"):
        register_task(spec)
    register_task(spec, replace=True)
    assert get_task("SST-2") is spec


@pytest.mark.parametrize(("document", "message"), [
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\n", r"missing keys \['label_column'\]"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabel: [a, b]\n",
     r"unknown keys \['label'\]"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabels: [yes, no]\n", "read as a boolean"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabels: [a, b]\nmetrics: [auc]\n",
     "unknown metrics"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabels: [a, a]\n", "distinct"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabels: ab\n", "must be a list"),
    ("name: x\nfiles: {train: t.tsv}\nheader: false\ntext_columns: [text]\nlabel_column: 1\nlabels: [a, b]\n",
     "by name but the files have no header"),
    ("name: x\nformat: jsonl\nfiles: {train: t.jsonl}\ntext_columns: [0]\nlabel_column: y\nlabels: [a, b]\n",
     "keys; give them by name"),
    ("name: x\nformat: xml\nfiles: {train: t.xml}\ntext_columns: [0]\nlabel_column: 1\n", "format 'xml'"),
    ("name: x\nfiles: {valid: v.tsv}\ntext_columns: [0]\nlabel_column: 1\n", "files must map"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabels: [a, b]\n"
     "regression_range: [0, 5]\n", "regression_range"),
    ("name: x\nfiles: {train: t.tsv}\nheader: 'false'\ntext_columns: [0]\nlabel_column: 1\nlabels: [a, b]\n",
     "header must be true or false, got 'false'"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nmetrics: [accuracy]\n",
     r"metrics \['accuracy'\] do not apply to a regression task"),
    ("name: x\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\nlabels: [a, b, c]\nmetrics: [f1]\n",
     "needs exactly two labels"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "must hold a mapping"),
])
def test_bad_task_files(tmp_path: Path, document: str, message: str) -> None:
    _write(tmp_path / "task.yaml", document)
    with pytest.raises(TaskError, match=message) as err:
        get_task("x", tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path / "task.yaml") in str(err.value)


def test_task_file_name_must_match(tmp_path: Path) -> None:
    _write(tmp_path / "task.yml", "name: other\nfiles: {train: t.tsv}\ntext_columns: [0]\nlabel_column: 1\n"
                                  "labels: [a, b]\n")
    with pytest.raises(TaskError, match="does not match .* defines task 'other'"):
        get_task("mine", tmp_path)
    with pytest.raises(TaskError, match=r"unknown task 'mine' and .* has no task.yaml/task.yml/task.json"):
        get_task("mine", tmp_path / "elsewhere")


def test_custom_named_column_missing_from_header(tmp_path: Path) -> None:
    spec = custom_task("c", files={"train": "t.tsv"}, text_columns=["text"], label_column="label",
                       labels=["a", "b"])
    _write(tmp_path / "t.tsv", "sentence\tlabel\nhello\ta\n")
    with pytest.raises(DataError, match=r"no column 'text' in the header \(sentence, label\)"):
        read_examples(spec, tmp_path, "train")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "", "x" * 101, "a\nb"])
def test_custom_task_names_are_plain_names(name: str) -> None:
    with pytest.raises(TaskError, match="must be a plain name"):
        custom_task(name, files={"train": "t.tsv"}, text_columns=[0], label_column=1, labels=["a", "b"])


@pytest.mark.parametrize("file", ["/etc/passwd", "../outside.tsv", "sub/../../outside.tsv", "C:\\data\\t.tsv", ""])
def test_custom_task_files_stay_in_the_data_folder(file: str) -> None:
    with pytest.raises(TaskError, match="must be a path inside the data folder"):
        custom_task("x", files={"train": file}, text_columns=[0], label_column=1, labels=["a", "b"])


def test_a_symlink_out_of_the_data_folder_is_refused_without_echoing_its_content(tmp_path: Path) -> None:
    secret = tmp_path / "secret.tsv"
    _write(secret, "top secret line\ta\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "t.tsv").symlink_to(secret)
    _write(data_dir / "inside.tsv", "text\tlabel\nhello\ta\n")
    (data_dir / "link_inside.tsv").symlink_to(data_dir / "inside.tsv")
    spec = custom_task("x", files={"train": "t.tsv", "dev": "link_inside.tsv"}, text_columns=[0], label_column=1,
                       labels=["a", "b"])
    with pytest.raises(DataError, match="leads outside the data dir") as err:
        read_examples(spec, data_dir, "train")
    assert "top secret" not in str(err.value)
    assert [example.text_a for example in read_examples(spec, data_dir, "dev")] == ["hello"]  # a link inside is fine
