"""experiments/glue: the task scripts' recipes, commands and YAML configs, and download_data.sh.

The recipes are checked against the published table (typed in here, not read from the scripts), the
YAML they write is read back by the training app's own option parser, and download_data.sh is run
against a local mirror and against an address where nothing listens.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shlex
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from DeBERTa.apps.options import parse_options

GLUE = Path(__file__).resolve().parents[1] / "experiments" / "glue"
SCRIPTS = ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the experiment scripts are bash")

# The published recipe: (max_seq_len, epochs, learning_rate, batch, warmup, cls_drop_out) for base, large.
RECIPES = {
    "mnli": ("MNLI", {"base": (256, 3, 3e-5, 64, 1000, 0.1), "large": (256, 3, 1e-5, 64, 1000, 0.2)}),
    "qqp": ("QQP", {"base": (320, 8, 2e-5, 64, 500, 0.15), "large": (320, 8, 1e-5, 64, 500, 0.15)}),
    "qnli": ("QNLI", {"base": (512, 4, 2e-5, 32, 500, 0.15), "large": (512, 4, 1e-5, 32, 500, 0.15)}),
    "sst2": ("SST-2", {"base": (128, 6, 2e-5, 32, 500, 0.15), "large": (128, 6, 1e-5, 32, 500, 0.15)}),
    "cola": ("CoLA", {"base": (64, 6, 2e-5, 32, 100, 0.15), "large": (64, 6, 7e-6, 32, 100, 0.15)}),
    "rte": ("RTE", {"base": (320, 6, 2e-5, 32, 100, 0.2), "large": (320, 6, 1e-5, 32, 50, 0.2)}),
    "mrpc": ("MRPC", {"base": (128, 6, 2e-5, 32, 50, 0.15), "large": (128, 6, 1e-5, 32, 50, 0.15)}),
    "stsb": ("STS-B", {"base": (128, 6, 2e-5, 32, 100, 0.15), "large": (128, 4, 7e-6, 32, 100, 0.15)}),
}
FROM_MNLI = {"rte", "mrpc", "stsb"}
# Variables of the caller's environment that would change what the scripts choose.
SCRIPT_ENV = ("NUM_GPUS", "CUDA_VISIBLE_DEVICES", "SEED", "DATA_DIR", "OUTPUT_DIR", "FP16", "INIT_MODEL",
              "MNLI_MODEL", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "RDZV_ENDPOINT",
              "RDZV_BACKEND", "RDZV_ID", "PYTHON", "TORCHRUN", "GLUE_BASE_URL", "MRPC_BASE_URL",
              "GLUE_SHA256SUMS")


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    environ.update(env or {})
    return subprocess.run([shutil.which("bash"), str(GLUE / script), *args], env=environ, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def dry_run(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[Path, dict, list[str]]:
    """The recipe file's path, its YAML content, and the command of ``script --dry-run``."""
    result = run(f"{script}.sh", "--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# ") and lines[-2] == "# command"
    return Path(lines[0][2:]), yaml.safe_load("\n".join(lines[1:-2])), shlex.split(lines[-1])


# ----- recipes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("model", ["base", "large"])
def test_published_recipe_on_eight_gpus(script: str, model: str) -> None:
    task, table = RECIPES[script]
    max_seq_len, epochs, lr, batch, warmup, cls_drop_out = table[model]
    recipe_file, config, command = dry_run(script, model, env={"NUM_GPUS": "8"})
    run_dir = f"/data/runs/{task}-{model}-seed1234"
    assert recipe_file == Path(run_dir) / "recipe.yaml"
    assert config == {
        "task_name": task, "do_train": True, "do_eval": True, "do_predict": True,
        "data_dir": f"/data/glue_tasks/{task}", "output_dir": run_dir,
        "init_model": f"{model}_mnli" if script in FROM_MNLI else model,
        "max_seq_len": max_seq_len, "num_train_epochs": epochs, "learning_rate": lr,
        "train_batch_size": batch, "eval_batch_size": 128, "predict_batch_size": 128, "warmup": warmup,
        "cls_drop_out": cls_drop_out, "fp16": True, "seed": 1234, "tag": f"{task}-{model}",
        **({"dump_interval": 1000} if script == "mnli" else {}),
    }
    # PyYAML reads the numbers as numbers (YAML 1.1 reads "3e-5" as a string).
    assert isinstance(config["learning_rate"], float) and isinstance(config["cls_drop_out"], float)
    assert command == ["torchrun", "--standalone", "--nproc_per_node", "8", "-m", "DeBERTa.apps.train",
                       "--config", str(recipe_file)]


def test_cpu_runs_one_plain_process_without_fp16() -> None:
    _, config, command = dry_run("sst2", "base", env={"NUM_GPUS": "0"})
    assert command == ["python3", "-m", "DeBERTa.apps.train", "--config", "/data/runs/SST-2-base-seed1234/recipe.yaml"]
    assert config["fp16"] is False


@pytest.mark.parametrize("devices, nproc", [("0,1", "2"), ("3", "1"), ("", None), ("-1", None)])
def test_visible_gpus_follow_cuda_visible_devices(devices: str, nproc: str | None) -> None:
    _, config, command = dry_run("cola", "base", env={"CUDA_VISIBLE_DEVICES": devices})
    if nproc is None:
        assert command[0] == "python3" and config["fp16"] is False
    else:
        assert command[:4] == ["torchrun", "--standalone", "--nproc_per_node", nproc] and config["fp16"] is True


def test_environment_overrides_seed_folders_fp16_and_start_model() -> None:
    env = {"NUM_GPUS": "2", "SEED": "42", "DATA_DIR": "/mnt/glue", "OUTPUT_DIR": "/mnt/out/qnli", "FP16": "0",
           "INIT_MODEL": "/mnt/models/my-base"}
    recipe_file, config, _ = dry_run("qnli", "base", env=env)
    assert recipe_file == Path("/mnt/out/qnli/recipe.yaml")
    assert config["seed"] == 42 and config["data_dir"] == "/mnt/glue/glue_tasks/QNLI"
    assert config["output_dir"] == "/mnt/out/qnli" and config["fp16"] is False
    assert config["init_model"] == "/mnt/models/my-base"
    _, config, _ = dry_run("qnli", "base", env={"SEED": "42", "DATA_DIR": "/mnt/glue"})
    assert config["output_dir"] == "/mnt/glue/runs/QNLI-base-seed42"


@pytest.mark.parametrize("script", sorted(FROM_MNLI))
def test_mnli_start_official_or_own_run(script: str) -> None:
    _, config, _ = dry_run(script, "large_mnli")
    assert config["init_model"] == "large_mnli" and config["learning_rate"] == RECIPES[script][1]["large"][2]
    _, config, _ = dry_run(script, "base", env={"MNLI_MODEL": "/data/runs/MNLI-base-seed1234"})
    assert config["init_model"] == "/data/runs/MNLI-base-seed1234"


def test_extra_trainer_options_follow_the_config() -> None:
    _, _, command = dry_run("mrpc", "base", "--num_train_epochs", "1", "--tag", "a b", env={"NUM_GPUS": "0"})
    assert command[3:] == ["--config", "/data/runs/MRPC-base-seed1234/recipe.yaml", "--num_train_epochs", "1",
                           "--tag", "a b"]


def test_multi_node_static_rendezvous() -> None:
    env = {"NUM_GPUS": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29400"}
    _, _, command = dry_run("mnli", "large", env=env)
    assert command[:9] == ["torchrun", "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "1",
                           "--rdzv_endpoint", "node0:29400"]
    assert "--standalone" not in command
    _, _, command = dry_run("mnli", "large", env={**env, "RDZV_ENDPOINT": "head:1234", "RDZV_BACKEND": "c10d"})
    assert command[command.index("--rdzv_endpoint") + 1] == "head:1234"
    assert command[command.index("--rdzv_backend") + 1] == "c10d"
    assert command[command.index("--rdzv_id") + 1] == "deberta-MNLI-large-seed1234"


@pytest.mark.parametrize("env, message", [
    ({"NNODES": "2", "MASTER_ADDR": "node0"}, "needs NODE_RANK"),
    ({"NNODES": "2", "NODE_RANK": "0"}, "needs MASTER_ADDR"),
    ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "node0"}, "NODE_RANK must be 0 to 1"),
    ({"NUM_GPUS": "eight"}, "NUM_GPUS must be"),
    ({"SEED": "-1"}, "SEED must be"),
    ({"FP16": "maybe"}, "FP16 must be"),
])
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    result = run("mnli.sh", "--dry-run", "base", env=env)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_model_lists_the_known_ones() -> None:
    result = run("cola.sh", "--dry-run", "base_mnli")
    assert result.returncode == 2 and "choose one of: base large" in result.stderr
    result = run("rte.sh", "--dry-run", "xlarge")
    assert result.returncode == 2 and "base base_mnli large large_mnli" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_the_recipe(script: str) -> None:
    result = run(f"{script}.sh", "--help")
    assert result.returncode == 0
    task, table = RECIPES[script]
    assert f"on {task} with the published recipe" in result.stdout
    base_row = next(line.split() for line in result.stdout.splitlines() if line.strip().startswith("base "))
    assert [float(x) for x in base_row[1:]] == [float(x) for x in table["base"]]
    assert ("MNLI_MODEL" in result.stdout) == (script in FROM_MNLI)
    assert run(f"{script}.sh").returncode == 2  # no model: usage on stderr


# ----- a real (non-dry) run writes the recipe and starts the trainer on it ---------------------------------
@pytest.fixture
def fake_python(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in interpreter that records its arguments; returns (program, record)."""
    record = tmp_path / "argv"
    program = tmp_path / "fake-python"
    program.write_text(f"#!{shutil.which('bash')}\nprintf '%s\\n' \"$@\" > {record}\n")
    program.chmod(0o755)
    return program, record


def test_run_writes_a_recipe_the_trainer_reads_and_execs_it(tmp_path: Path, fake_python: tuple[Path, Path]) -> None:
    program, record = fake_python
    (tmp_path / "glue_tasks" / "RTE").mkdir(parents=True)
    out = tmp_path / "runs" / "rte"
    env = {"NUM_GPUS": "0", "PYTHON": str(program), "DATA_DIR": str(tmp_path), "OUTPUT_DIR": str(out)}
    result = run("rte.sh", "large", "--num_train_epochs", "2", env=env)
    assert result.returncode == 0, result.stderr
    recipe = out / "recipe.yaml"
    assert record.read_text().splitlines() == ["-m", "DeBERTa.apps.train", "--config", str(recipe),
                                               "--num_train_epochs", "2"]
    opts = parse_options(["--config", str(recipe), "--num_train_epochs", "2"])
    assert (opts.task_name, opts.init_model, opts.max_seq_len, opts.learning_rate) == ("RTE", "large_mnli", 320, 1e-5)
    assert (opts.train_batch_size, opts.warmup, opts.cls_drop_out, opts.num_train_epochs) == (32, 50, 0.2, 2)
    assert opts.do_train and opts.do_eval and opts.do_predict and not opts.fp16
    assert opts.data_dir == str(tmp_path / "glue_tasks" / "RTE") and opts.output_dir == str(out)


def test_run_without_data_points_to_download_data(tmp_path: Path, fake_python: tuple[Path, Path]) -> None:
    program, record = fake_python
    env = {"NUM_GPUS": "0", "PYTHON": str(program), "DATA_DIR": str(tmp_path / "empty")}
    result = run("stsb.sh", "base", env=env)
    assert result.returncode == 2
    assert "no STS-B data" in result.stderr and "download_data.sh" in result.stderr
    assert not record.exists() and not (tmp_path / "empty").exists()


# ----- download_data.sh ---------------------------------------------------------------------------------
class Mirror:
    """GLUE-like files served over HTTP from 127.0.0.1, counting the requests."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802 (the http.server API)
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_rte_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        header = "index\tsentence1\tsentence2\tlabel\n"
        archive.writestr("RTE/train.tsv", header + "0\tA cat sat.\tA cat.\tentailment\n")
        archive.writestr("RTE/dev.tsv", header + "0\tIt rains.\tIt is dry.\tnot_entailment\n")
        archive.writestr("RTE/test.tsv", "index\tsentence1\tsentence2\n0\tX.\tY.\n")


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[Mirror, Path]]:
    """A mirror with RTE.zip, MRPC's three source files and AX.tsv, and a checksum file for them."""
    root = tmp_path / "mirror"
    root.mkdir()
    write_rte_zip(root / "RTE.zip")
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
    (root / "msr_paraphrase_train.txt").write_text(
        header + "1\t11\t12\tHe said \"yes.\tHe agreed.\r\n0\t21\t22\tA dog.\tA car.\r\n1\t31\t32\tOne.\t1.\r\n",
        encoding="utf-8", newline="")
    (root / "msr_paraphrase_test.txt").write_text(header + "1\t41\t42\tUp.\tRise.\r\n0\t51\t52\tIn.\tOut.\r\n",
                                                  encoding="utf-8", newline="")
    (root / "mrpc_dev_ids.tsv").write_text("21\t22\r\n")
    (root / "AX.tsv").write_text("index\tsentence1\tsentence2\n0\tP.\tH.\n")
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n"
                            for f in sorted(root.iterdir())))
    server = Mirror(root)
    yield server, sums
    server.close()


def mirror_env(server: Mirror, sums: Path | None) -> dict[str, str]:
    env = {"GLUE_BASE_URL": server.url, "MRPC_BASE_URL": server.url}
    return {**env, "GLUE_SHA256SUMS": str(sums)} if sums else env


def test_download_verifies_unpacks_and_is_idempotent(tmp_path: Path, mirror: tuple[Mirror, Path]) -> None:
    server, sums = mirror
    data = tmp_path / "data"
    result = run("download_data.sh", str(data), "rte", "MRPC", "diagnostic", env=mirror_env(server, sums))
    assert result.returncode == 0, result.stderr
    tasks = data / "glue_tasks"
    assert (tasks / "RTE" / "dev.tsv").read_text().endswith("not_entailment\n")
    assert (tasks / "AX" / "AX.tsv").read_text().startswith("index\tsentence1")
    # MRPC: the pairs listed in the dev ids form dev.tsv, the rest train.tsv; test.tsv is indexed, unlabeled.
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    assert (tasks / "MRPC" / "train.tsv").read_text().splitlines() == [
        header, '1\t11\t12\tHe said "yes.\tHe agreed.', "1\t31\t32\tOne.\t1."]
    assert (tasks / "MRPC" / "dev.tsv").read_text().splitlines() == [header, "0\t21\t22\tA dog.\tA car."]
    assert (tasks / "MRPC" / "test.tsv").read_text().splitlines() == [
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String", "0\t41\t42\tUp.\tRise.", "1\t51\t52\tIn.\tOut."]
    assert sorted(server.requests) == sorted(["/RTE.zip", "/msr_paraphrase_train.txt", "/msr_paraphrase_test.txt",
                                              "/mrpc_dev_ids.tsv", "/AX.tsv"])
    assert not list((tasks / ".downloads").iterdir())  # archives go once unpacked

    server.requests.clear()
    again = run("download_data.sh", str(data), "RTE", "mrpc", "ax", env=mirror_env(server, sums))
    assert again.returncode == 0, again.stderr
    assert server.requests == [] and again.stdout.count("already in") == 3


def test_download_rejects_a_file_whose_checksum_differs(tmp_path: Path, mirror: tuple[Mirror, Path]) -> None:
    server, _ = mirror  # the built-in checksums are those of the real GLUE files
    result = run("download_data.sh", str(tmp_path / "data"), "RTE", env=mirror_env(server, None))
    assert result.returncode == 2
    assert "RTE.zip" in result.stderr and "SHA-256" in result.stderr and "not using it" in result.stderr
    assert not (tmp_path / "data" / "glue_tasks" / "RTE").exists()
    assert not list((tmp_path / "data" / "glue_tasks" / ".downloads").iterdir())


def test_no_network_says_so_and_leaves_no_task_folder(tmp_path: Path) -> None:
    env = {"GLUE_BASE_URL": "http://127.0.0.1:9", "MRPC_BASE_URL": "http://127.0.0.1:9"}
    result = run("download_data.sh", str(tmp_path / "data"), "WNLI", env=env)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "cannot download http://127.0.0.1:9/WNLI.zip" in message and "No network?" in message
    assert ".downloads" in message  # where to put a copy fetched elsewhere
    assert [p.name for p in (tmp_path / "data" / "glue_tasks").iterdir()] == [".downloads"]


def test_offline_uses_archives_copied_into_downloads(tmp_path: Path, mirror: tuple[Mirror, Path]) -> None:
    server, sums = mirror
    downloads = tmp_path / "data" / "glue_tasks" / ".downloads"
    downloads.mkdir(parents=True)
    shutil.copy(server.root / "RTE.zip", downloads / "RTE.zip")
    env = {"GLUE_BASE_URL": "http://127.0.0.1:9", "GLUE_SHA256SUMS": str(sums)}
    result = run("download_data.sh", str(tmp_path / "data"), "rte", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "glue_tasks" / "RTE" / "train.tsv").is_file()


def test_download_without_curl_or_unzip_uses_python(tmp_path: Path, mirror: tuple[Mirror, Path]) -> None:
    # The container image has neither curl nor unzip; the script falls back to Python.
    server, sums = mirror
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "mktemp", "rm", "mv", "cp", "date", "cut", "awk", "sha256sum"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    environ = {"PATH": str(bin_dir), "HOME": str(tmp_path), **mirror_env(server, sums)}
    result = subprocess.run([shutil.which("bash"), str(GLUE / "download_data.sh"), str(tmp_path / "data"), "RTE"],
                            env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "glue_tasks" / "RTE" / "test.tsv").is_file()
    assert server.requests == ["/RTE.zip"]


def test_download_unknown_task_and_help(tmp_path: Path) -> None:
    result = run("download_data.sh", str(tmp_path), "SQuAD")
    assert result.returncode == 2 and "unknown task 'SQuAD'" in result.stderr and "MNLI" in result.stderr
    result = run("download_data.sh", "--help")
    assert result.returncode == 0 and "GLUE_BASE_URL" in result.stdout and ".downloads" in result.stdout


# ----- slurm.sbatch --------------------------------------------------------------------------------------
def test_slurm_batch_file_starts_one_launcher_per_node(tmp_path: Path) -> None:
    # Stand-ins for SLURM: scontrol lists two hosts, srun runs its command once per node id.
    bash = shutil.which("bash")
    (tmp_path / "scontrol").write_text(f"#!{bash}\nprintf 'gpu-a\\ngpu-b\\n'\n")
    (tmp_path / "srun").write_text(f'#!{bash}\nwhile [[ $1 == --* ]]; do shift; done\n'
                                   'for id in 0 1; do SLURM_NODEID=$id "$@"; done\n')
    for tool in ("scontrol", "srun"):
        (tmp_path / tool).chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    environ.update(PATH=f"{tmp_path}:{os.environ['PATH']}", SLURM_JOB_NODELIST="gpu-[a-b]", SLURM_JOB_NUM_NODES="2",
                   SLURM_SUBMIT_DIR=str(GLUE), NUM_GPUS="8")
    result = subprocess.run([bash, str(GLUE / "slurm.sbatch"), "mnli.sh", "--dry-run", "large"], env=environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines() if line.startswith("torchrun")]
    assert [c[:9] for c in commands] == [
        ["torchrun", "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", rank, "--rdzv_endpoint", "gpu-a:29500"]
        for rank in ("0", "1")]
    missing = subprocess.run([bash, str(GLUE / "slurm.sbatch"), "mnli.sh"], env=environ, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "usage: sbatch slurm.sbatch" in missing.stderr
