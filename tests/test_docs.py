"""The documentation site's generated parts: the command-line reference lists every command, the paper page
names every preset, and the reproduction table has a row per experiment, produced by its script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from augsens.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("augsens_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_has_every_command_with_its_options():
    page = _hooks().cli_reference()
    names = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]
    assert len(names) >= 12
    for name in names:
        assert f"## augsens {name}\n" in page
    assert "--preset" in page and "--measures" in page and "--version" in page


def test_reproduction_table_has_a_row_per_experiment():
    data = json.loads((DOCS / "reproduce" / "results.json").read_text())
    experiments = {(r["experiment"], r["set"]) for r in data["rows"]}
    presets = sorted((DOCS.parent / "configs" / "paper").glob("alexnet-*.toml"))
    assert {(p.stem.rsplit("exp", 1)[1], p.stem.split("-")[1]) for p in presets} <= experiments
    assert ("1.1", "set1+set2") in experiments
    for row in data["rows"]:
        assert (row["kind"] == "contrast" or row["forwards"] > 0) and set(row["headline"]) == set(
            data["checkpoints"]
        )
        if row["figure"]:
            assert (DOCS / "reproduce" / row["figure"]).stat().st_size > 1000
    table = _hooks().reproduce_table()
    assert table.count("\n| 1.") == len(data["rows"])
