"""The Binder set-up (binder/) agrees with the project, and the notebooks fit in Binder's memory.

Binder builds the image with repo2docker from binder/runtime.txt (Python) and binder/postBuild (the
installs), and starts every session through binder/start. Nothing here contacts Binder or PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomllib (3.11+) or tomli")
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from helpers import binder_start_environment

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
BINDER_MEMORY_BYTES = 2 << 30  # mybinder.org gives each session about 2 GB

# pip options that take a value (the value is not a package).
_OPTIONS_WITH_VALUE = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c", "--constraint",
                       "-r", "--requirement", "--target", "--prefix", "--root", "--cache-dir", "--trusted-host"}


def _logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def pip_installs() -> list[list[str]]:
    """The arguments of every ``pip install`` in binder/postBuild (and binder/requirements.txt, if any)."""
    installs = []
    for line in _logical_lines((BINDER / "postBuild").read_text(encoding="utf-8")):
        words = shlex.split(line)
        for i in range(len(words) - 1):
            if words[i] in ("pip", "pip3") or (words[i].endswith("python") and words[i + 1:i + 3] == ["-m", "pip"]):
                rest = words[i + 1:] if words[i] in ("pip", "pip3") else words[i + 3:]
                if rest and rest[0] == "install":
                    installs.append(rest[1:])
                break
    requirements = BINDER / "requirements.txt"
    if requirements.is_file():
        installs += [shlex.split(line) for line in _logical_lines(requirements.read_text(encoding="utf-8"))]
    return installs


def named_packages(args: list[str]) -> list[tuple[str, bool]]:
    """``(requirement, editable)`` for every package an install's arguments name."""
    out, skip = [], False
    for i, word in enumerate(args):
        if skip:
            skip = False
            continue
        if word in ("-e", "--editable"):
            out.append((args[i + 1], True))
            skip = True
        elif word in _OPTIONS_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            out.append((word, False))
    return out


def declared_requirements() -> dict[str, list[Requirement]]:
    """Every requirement pyproject declares (dependencies and all extras), by canonical name."""
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in PYPROJECT["project"].get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    by_name: dict[str, list[Requirement]] = {}
    for r in reqs:
        by_name.setdefault(canonicalize_name(r.name), []).append(r)
    return by_name


def test_runtime_python_agrees_with_requires_python() -> None:
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"binder/runtime.txt must read python-X.Y, it reads {runtime!r}"
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert requires.contains(Version(match.group(1))), \
        f"binder/runtime.txt asks for Python {match.group(1)}, pyproject says requires-python {requires}"


def test_binder_installs_only_the_kit_and_its_declared_dependencies() -> None:
    installs = pip_installs()
    assert installs, "binder/postBuild installs nothing"
    declared = declared_requirements()
    extras = set(PYPROJECT["project"].get("optional-dependencies", {}))
    seen_kit = False
    for args in installs:
        for spec, editable in named_packages(args):
            if editable or spec.startswith((".", "/")):
                match = re.fullmatch(r"\.(?:\[([\w,\s-]+)\])?", spec)
                assert match, f"binder installs {spec!r} from a path; only the repository itself ('.') is expected"
                wanted = {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
                assert wanted <= extras, f"binder asks for extras {sorted(wanted - extras)} that pyproject does not define"
                assert {"notebooks", "deepspeed"} <= wanted, "binder should install the kit with [notebooks,deepspeed]"
                seen_kit = True
                continue
            req = Requirement(spec)
            name = canonicalize_name(req.name)
            assert name in declared, f"binder installs {req.name}, which pyproject.toml does not declare"
            pinned = [s.version for s in req.specifier if s.operator == "=="]
            for version in pinned:
                for decl in declared[name]:
                    assert decl.specifier.contains(version, prereleases=True), \
                        f"binder pins {req.name}=={version}, outside pyproject's {decl}"
    assert seen_kit, "binder/postBuild never installs the kit itself (pip install -e '.[...]')"


def test_binder_takes_torch_from_the_cpu_index() -> None:
    # On Binder, torch from PyPI is the CUDA build (gigabytes, no GPU to use it).
    for args in pip_installs():
        names = [canonicalize_name(Requirement(s).name) for s, editable in named_packages(args) if not editable]
        if "torch" in names:
            assert "https://download.pytorch.org/whl/cpu" in args, f"torch is installed without the CPU index: {args}"
            assert any(re.fullmatch(r"torch==[\d.]+", s) for s, _ in named_packages(args)), "pin torch to one version"
            return
    pytest.fail("binder/postBuild does not install a CPU torch before the kit")


def test_postbuild_install_command_installs_the_kit(tmp_path: Path) -> None:
    """Run the kit's install line from postBuild as a dry run: offline, no build isolation, no deps."""
    from importlib.metadata import PackageNotFoundError, version

    for spec in PYPROJECT["build-system"]["requires"]:  # offline, the build backend must already be here
        req = Requirement(spec)
        try:
            have = version(req.name)
        except PackageNotFoundError:
            pytest.skip(f"the build backend {req.name} is not installed, and this test does not download it")
        if not req.specifier.contains(have, prereleases=True):
            pytest.skip(f"{req.name} {have} is installed; the build needs {req}, and this test does not download it")
    kit_install = next(args for args in pip_installs() if any(editable for _, editable in named_packages(args)))
    cmd = [sys.executable, "-m", "pip", "install", *kit_install, "--dry-run", "--no-deps", "--no-index",
           "--no-build-isolation", "--quiet", "--report", str(tmp_path / "report.json")]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{shlex.join(cmd)} failed:\n{result.stderr[-3000:]}"
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (item,) = report["install"]
    assert item["metadata"]["name"] == PYPROJECT["project"]["name"]
    assert {"notebooks", "deepspeed"} <= set(item["metadata"].get("provides_extra", []))


def test_binder_scripts_are_executable_shell_scripts() -> None:
    for name in ("postBuild", "start"):
        path = BINDER / name
        assert os.access(path, os.X_OK), f"binder/{name} must be executable (git update-index --chmod=+x)"
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, f"binder/{name} is not valid bash: {check.stderr}"
    start = (BINDER / "start").read_text(encoding="utf-8")
    assert re.search(r'^exec "\$@"\s*$', start, re.M), "binder/start must end by running the command it is given"
    assert binder_start_environment().get("OMP_NUM_THREADS") == "1"


def test_postbuild_prepares_the_embedded_model() -> None:
    from kit import tiny

    if not (tiny.path() / "config.json").is_file():
        pytest.skip(f"the embedded tiny model is not in {tiny.path()} yet")
    line = next(line for line in _logical_lines((BINDER / "postBuild").read_text(encoding="utf-8"))
                if "resolve_model" in line)
    words = shlex.split(line)
    assert words[0] == "python", line
    result = subprocess.run([sys.executable, *words[1:]], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tiny model ready" in result.stdout


@pytest.mark.notebook
@pytest.mark.slow
def test_notebooks_run_within_binder_memory(demo_executed, experiments) -> None:
    """Every English notebook fits in Binder's 2 GiB: measured on the session's own runs (tests/notebook_runs.py),
    made under binder/start's environment: kit demo (notebooks 00-30) and notebook 40's short sweep, each with the
    memory of its whole process tree (kernels, torchrun, ranks) sampled while it ran.

    No compiler runs inside them: their training is one process, for which the kit tells DeepSpeed not to load
    its shared-memory op (Binder's postBuild no longer compiles it either). A compile inside a run would dominate
    the peak, as it did once (4.07 GiB).
    """
    measured = [*demo_executed.result.notebooks, "40_experiments"]
    every = sorted(p.stem for p in (REPO / "notebooks" / "en").glob("*.ipynb"))
    assert sorted(measured) == every, f"notebooks/en holds {every}, the memory test measures {measured}"
    runs = {"kit demo (notebooks 00-30)": demo_executed, "notebook 40": experiments}
    for what, run in runs.items():
        print(f"{what}: {run.memory.report()}")  # shown with -rP or -s, and in the failure below
        assert run.memory.samples and run.memory.peak > 0, f"{what}: no kernel process was seen; the sampling did not work"
    over = [f"{what}: {run.memory.report()}" for what, run in runs.items() if run.memory.peak >= BINDER_MEMORY_BYTES]
    assert not over, "over Binder's 2 GiB:\n" + "\n".join(over)
