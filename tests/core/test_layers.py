"""The package's layers: what the sensitivity core may import, and that the old module paths are gone.

Each check runs in a fresh interpreter (``sys.executable``, the environment inherited), since imports are
cached per process.  That importing ``augsens`` and ``augsens.cli`` stays light (no torch, xarray, scipy,
timm) is guarded by ``tests/cli/test_cli_faults.py::test_cli_answers_a_bad_config_without_importing_torch``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Packages the core must not load: image and model libraries, and every layer above the core.
FORBIDDEN = (
    "torchvision",
    "PIL",
    "timm",
    "augsens.models",
    "augsens.augment",
    "augsens.data",
    "augsens.engine",
    "augsens.analysis",
    "augsens.plot",
)

#: Removed module paths and the core modules that hold their names now.
SHIMS = {
    "augsens.api": "augsens.core.api",
    "augsens.factors": "augsens.core.factors",
    "augsens.design": "augsens.core.design",
    "augsens.estimate": "augsens.core.estimate",
}

# Imports every module of augsens.core under a meta-path hook that records, for each module loaded for
# the first time, the module whose code asked for it; prints the loaded modules and that map as JSON.
_IMPORT_CORE = textwrap.dedent(
    """
    import json, pkgutil, sys

    importer = {}

    class Recorder:
        # Consulted before the real finders for every module not yet loaded; finds nothing itself.
        def find_spec(self, name, path=None, target=None):
            frame = sys._getframe(1)
            skip = ("importlib", "pkgutil", __name__)
            while frame is not None and (
                frame.f_code.co_filename.startswith("<frozen importlib")
                or frame.f_globals.get("__name__") in skip
            ):
                frame = frame.f_back
            if frame is not None:
                importer.setdefault(name, f"{frame.f_globals.get('__name__')}:{frame.f_lineno}")
            return None

    sys.meta_path.insert(0, Recorder())
    import augsens.core

    walked = [m.name for m in pkgutil.walk_packages(augsens.core.__path__, "augsens.core.")]
    for name in walked:
        __import__(name)
    print(json.dumps({"walked": walked, "modules": sorted(sys.modules), "importer": importer}))
    """
)


def _run(code: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def _chain(name: str, importer: dict[str, str]) -> str:
    """``name <- module:line <- ...``: who imported ``name``, back to the first module of the core."""
    links = [name]
    while name in importer and not name.startswith("augsens.core") and len(links) < 30:
        links.append(importer[name])
        name = importer[name].split(":")[0]
    return " <- ".join(links)


def test_core_imports_no_images_models_or_upper_layers() -> None:
    out = _run(_IMPORT_CORE)
    assert {"augsens.core.api", "augsens.core.design", "augsens.core.factors"} <= set(out["walked"])
    assert "augsens.core.estimate.sobol" in out["walked"]  # subpackages are walked too
    bad = [m for m in out["modules"] if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    # one line per offending top-level package, with the chain of importers that brought it in
    roots = sorted({m for m in bad if not any(m.startswith(o + ".") for o in bad)})
    assert not roots, "augsens.core loaded:\n" + "\n".join(_chain(m, out["importer"]) for m in roots)
    assert not set(SHIMS) & set(out["modules"]), "the core imports a removed module path"


def test_removed_paths_do_not_import() -> None:
    code = textwrap.dedent(
        f"""
        import importlib, json
        report = {{}}
        for old in {list(SHIMS)!r}:
            try:
                importlib.import_module(old)
                report[old] = "imported"
            except ModuleNotFoundError as e:
                report[old] = e.name
        print(json.dumps(report))
        """
    )
    report = _run(code)
    assert report == {old: old for old in SHIMS}, report
