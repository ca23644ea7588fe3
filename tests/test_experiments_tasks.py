"""experiments/{ner,squad,race,swag}: the recipes, the YAML and commands the scripts write, their settings,
and the download scripts run against local mirrors (file:// URLs).

The recipes are checked against tables typed in here, not read from the scripts.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from kind_fixtures import write_race, write_swag

from DeBERTa.apps.tasks.choice import RACE, SWAG
from DeBERTa.apps.tasks.ner import NER
from DeBERTa.apps.tasks.squad import SQUAD_V1

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SHARED = Path(__file__).resolve().parents[2] / "shared"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the experiment scripts are bash")

# script → (task, {model: (max_seq_len, epochs, learning_rate, batch, warmup, cls_drop_out)}, extra YAML, init)
RECIPES = {
    "ner/ner.sh": ("NER", {"base": (512, 15, 2e-5, 16, 0.1, 0), "large": (512, 15, 1e-5, 16, 0.1, 0)}, {}, ""),
    "squad/squad.sh": ("SQuAD", {"base": (384, 3, 2e-5, 32, 0.1, 0), "large": (384, 3, 1e-5, 32, 0.1, 0)},
                       {"doc_stride": 128, "max_query_length": 64, "max_answer_length": 30}, ""),
    "squad/squad2.sh": ("SQuAD2", {"base": (384, 3, 2e-5, 32, 0.1, 0), "large": (384, 3, 1e-5, 32, 0.1, 0)},
                        {"doc_stride": 128, "max_query_length": 64, "max_answer_length": 30}, ""),
    "race/race.sh": ("RACE", {"base": (320, 6, 2e-5, 32, 100, 0.2), "large": (320, 6, 8e-6, 32, 100, 0.2)}, {},
                     "_mnli"),
    "swag/swag.sh": ("SWAG", {"base": (128, 3, 2e-5, 32, 0.1, 0.1), "large": (128, 3, 1e-5, 32, 0.1, 0.1)}, {}, ""),
}
SCRIPT_ENV = ("NUM_GPUS", "CUDA_VISIBLE_DEVICES", "SEED", "DATA_DIR", "OUTPUT_DIR", "FP16", "INIT_MODEL",
              "DUMP_INTERVAL", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "RDZV_ENDPOINT", "RDZV_BACKEND",
              "RDZV_ID", "PYTHON", "TORCHRUN", "SQUAD_BASE_URL", "SWAG_BASE_URL", "RACE_URL", "CONLL2003_URL")


def run(script: str, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    environ.update(env or {})
    return subprocess.run([shutil.which("bash"), str(EXPERIMENTS / script), *map(str, args)], env=environ,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def dry_run(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[Path, dict, list[str]]:
    result = run(script, "--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# ") and lines[-2] == "# command"
    return Path(lines[0][2:]), yaml.safe_load("\n".join(lines[1:-2])), shlex.split(lines[-1])


@pytest.mark.parametrize("script", sorted(RECIPES))
@pytest.mark.parametrize("model", ["base", "large"])
def test_recipe_on_eight_gpus(script: str, model: str) -> None:
    task, table, extra, init_suffix = RECIPES[script]
    max_seq_len, epochs, lr, batch, warmup, cls_drop_out = table[model]
    recipe_file, config, command = dry_run(script, model, env={"NUM_GPUS": "8"})
    run_dir = f"/data/runs/{task}-{model}-seed1234"
    assert recipe_file == Path(run_dir) / "recipe.yaml"
    assert config == {
        "task_name": task, "do_train": True, "do_eval": True, "do_predict": True, "data_dir": f"/data/{task}",
        "output_dir": run_dir, "init_model": model + init_suffix, "max_seq_len": max_seq_len,
        "num_train_epochs": epochs, "learning_rate": lr, "train_batch_size": batch, "eval_batch_size": 128,
        "predict_batch_size": 128, "warmup": warmup, "cls_drop_out": cls_drop_out, **extra, "fp16": True,
        "seed": 1234, "tag": f"{task}-{model}",
    }
    assert isinstance(config["learning_rate"], float)
    assert command == ["torchrun", "--standalone", "--nproc_per_node", "8", "-m", "DeBERTa.apps.train",
                       "--config", str(recipe_file)]


def test_task_names_and_folders_are_the_apps() -> None:
    """The scripts' task names are the kinds' names, so the app finds them."""
    assert {RECIPES[s][0] for s in RECIPES} == {NER.name, SQUAD_V1.name, "SQuAD2", RACE.name, SWAG.name}


def test_environment_overrides() -> None:
    env = {"NUM_GPUS": "0", "SEED": "7", "DATA_DIR": "/mnt/d", "OUTPUT_DIR": "/mnt/out/x", "FP16": "0",
           "INIT_MODEL": "/mnt/models/v3-base", "DUMP_INTERVAL": "500"}
    recipe_file, config, command = dry_run("squad/squad2.sh", "base", env=env)
    assert recipe_file == Path("/mnt/out/x/recipe.yaml") and command[:3] == ["python3", "-m", "DeBERTa.apps.train"]
    assert (config["seed"], config["data_dir"], config["output_dir"]) == (7, "/mnt/d/SQuAD2", "/mnt/out/x")
    assert config["fp16"] is False and config["init_model"] == "/mnt/models/v3-base"
    assert config["dump_interval"] == 500
    env = {"NUM_GPUS": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "node0"}
    _, _, command = dry_run("race/race.sh", "large", "--num_train_epochs", "1", env=env)
    assert command[:9] == ["torchrun", "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "1",
                           "--rdzv_endpoint", "node0:29500"]
    assert command[-2:] == ["--num_train_epochs", "1"]


@pytest.mark.parametrize(("env", "args", "message"), [
    ({"SEED": "-1"}, ["base"], "SEED must be"),
    ({"FP16": "maybe"}, ["base"], "FP16 must be"),
    ({"NNODES": "2", "MASTER_ADDR": "n"}, ["base"], "needs NODE_RANK"),
    ({"DUMP_INTERVAL": "0"}, ["base"], "DUMP_INTERVAL must be a positive integer"),
    ({"OUTPUT_DIR": "/tmp/a\nb"}, ["base"], "OUTPUT_DIR holds a control character"),
    ({}, ["xlarge"], "unknown model 'xlarge' for NER; choose one of: base large"),
    ({}, ["--fast", "base"], "unknown option '--fast'"),
])
def test_bad_settings_are_one_line_errors(env: dict[str, str], args: list[str], message: str) -> None:
    result = run("ner/ner.sh", "--dry-run", *args, env=env)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script", sorted(RECIPES))
def test_help_shows_the_recipe_and_its_source(script: str) -> None:
    result = run(script, "--help")
    assert result.returncode == 0 and "Source: " in result.stdout
    task, table, extra, _ = RECIPES[script]
    base_row = next(line.split() for line in result.stdout.splitlines() if line.strip().startswith("base "))
    assert [float(x) for x in base_row[1:]] == [float(x) for x in table["base"]]
    assert all(f"{key}: {value}" in result.stdout for key, value in extra.items())
    assert run(script).returncode == 2


def test_run_writes_the_recipe_and_execs_the_app(tmp_path: Path) -> None:
    record = tmp_path / "argv"
    program = tmp_path / "fake-python"
    program.write_text(f"#!{shutil.which('bash')}\nprintf '%s\\n' \"$@\" > {record}\n")
    program.chmod(0o755)
    env = {"NUM_GPUS": "0", "PYTHON": str(program), "DATA_DIR": str(tmp_path)}
    result = run("swag/swag.sh", "base", env=env)
    assert result.returncode == 2 and "no SWAG data in" in result.stderr and "download_data.sh" in result.stderr
    assert not record.exists() and not (tmp_path / "runs").exists()
    (tmp_path / "SWAG").mkdir()
    result = run("swag/swag.sh", "base", "--max_steps", "3", env=env)
    assert result.returncode == 0, result.stderr
    recipe = tmp_path / "runs" / "SWAG-base-seed1234" / "recipe.yaml"
    assert record.read_text().splitlines() == ["-m", "DeBERTa.apps.train", "--config", str(recipe), "--max_steps", "3"]
    assert yaml.safe_load(recipe.read_text())["task_name"] == "SWAG"


# ----- download_data.sh ---------------------------------------------------------------------------------------
def _squad_file(path: Path, questions: int, version: str) -> None:
    qas = [{"id": str(i), "question": "q", "answers": [{"text": "c", "answer_start": 0}]} for i in range(questions)]
    path.write_text(json.dumps({"version": version, "data": [{"title": "t", "paragraphs": [
        {"context": "c", "qas": qas}]}]}))


def test_squad_download_checks_the_question_counts(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _squad_file(mirror / "train-v1.1.json", 87599, "1.1")
    _squad_file(mirror / "dev-v1.1.json", 10570, "1.1")
    env = {"SQUAD_BASE_URL": mirror.as_uri()}
    result = run("squad/download_data.sh", tmp_path / "data", "v1.1", env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "data" / "SQuAD").iterdir()) == ["dev-v1.1.json", "train-v1.1.json"]
    assert len(SQUAD_V1.read(tmp_path / "data" / "SQuAD", "dev")) == 10570
    # Again: the files in place pass and are kept; nothing is fetched.
    shutil.rmtree(mirror)
    result = run("squad/download_data.sh", tmp_path / "data", "v1.1", env=env)
    assert result.returncode == 0 and result.stdout.count("is already there") == 2
    # A file that is not the official one is refused and not left behind.
    mirror.mkdir()
    _squad_file(mirror / "train-v2.0.json", 5, "v2.0")
    result = run("squad/download_data.sh", tmp_path / "data", "v2.0", env=env)
    assert result.returncode == 2 and "has 5 questions, the official file 130319; not using it" in result.stderr
    assert list((tmp_path / "data" / "SQuAD2").iterdir()) == []
    result = run("squad/download_data.sh", tmp_path / "data", "v3", env=env)
    assert result.returncode == 2 and "unknown version 'v3'" in result.stderr


def test_swag_download(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_swag(mirror / "train.csv")
    write_swag(mirror / "val.csv")
    write_swag(mirror / "test.csv", labeled=False)
    result = run("swag/download_data.sh", tmp_path / "data", env={"SWAG_BASE_URL": mirror.as_uri()})
    assert result.returncode == 0, result.stderr
    assert len(SWAG.read(tmp_path / "data" / "SWAG", "dev")) == 3
    (mirror / "val.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data" / "SWAG" / "val.csv").unlink()
    result = run("swag/download_data.sh", tmp_path / "data", env={"SWAG_BASE_URL": mirror.as_uri()})
    assert result.returncode == 2 and "not a SWAG file: no column sent1" in result.stderr


def test_race_download(tmp_path: Path) -> None:
    tree = tmp_path / "tree" / "RACE"
    for split in ("train", "dev", "test"):
        write_race(tree, split)
    archive = tmp_path / "RACE.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="RACE")
    result = run("race/download_data.sh", tmp_path / "data", env={"RACE_URL": archive.as_uri()})
    assert result.returncode == 0, result.stderr
    assert len(RACE.read(tmp_path / "data" / "RACE", "test")) == 4
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["RACE"]
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        tar.add(tree / "dev", arcname="RACE/dev")
    result = run("race/download_data.sh", tmp_path / "other", env={"RACE_URL": broken.as_uri()})
    assert result.returncode == 2 and "no RACE/train/middle/*.txt in it; not using it" in result.stderr


@pytest.mark.skipif(not (SHARED / "conll2003").is_dir(), reason="../shared/conll2003 is not here")
def test_ner_download_needs_a_url_and_checks_the_files(tmp_path: Path) -> None:
    result = run("ner/download_data.sh", tmp_path / "data")
    assert result.returncode == 2 and "set CONLL2003_URL" in result.stderr
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, sample in (("eng.train", "train"), ("eng.testa", "valid"), ("eng.testb", "test")):
        shutil.copyfile(SHARED / "conll2003" / f"{sample}-sample.txt", mirror / name)
    result = run("ner/download_data.sh", tmp_path / "data", env={"CONLL2003_URL": mirror.as_uri()})
    assert result.returncode == 0, result.stderr
    assert len(NER.read(tmp_path / "data" / "NER", "dev")) == 300
    (mirror / "eng.testb").write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-ORG\n")
    (tmp_path / "data" / "NER" / "test.txt").unlink()
    result = run("ner/download_data.sh", tmp_path / "data", env={"CONLL2003_URL": mirror.as_uri()})
    assert result.returncode == 2 and "line 3 is not 'word POS chunk tag'" in result.stderr
    assert not (tmp_path / "data" / "NER" / "test.txt").exists()
