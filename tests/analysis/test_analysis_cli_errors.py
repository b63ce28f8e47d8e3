"""The analysis commands under bad input: one clear line and exit code 2, never a traceback.

Each case runs ``augsens mask | contrast | correlation | lda | segments`` in process on a tiny real
study (``augsens.testing:tiny_cnn``, two augmentations, n = 8), made once for the module, with one mistake
a user can make: an option value out of range, a name that is not in the results, results of another
network, a segment file that does not fit.  The answer must exit with 2, print one ``error:`` line with
the key words (the bad value and what is allowed) and no traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from augsens.cli import app

TINY = """
[model]
name = "augsens.testing:tiny_cnn"
checkpoints = ["conv", "fc"]
[images]
source = "bundled"
[study]
kind = "sobol"
augmentations = ["hflip", "grayscale"]
n = 8
replicates = 2
[run]
batch_size = 24
device = "cpu"
"""

# tiny_cnn on the bundled photos, on the CPU: every case that gets as far as loading the model is cheap
NET = ["--model", "augsens.testing:tiny_cnn", "--device", "cpu"]
HSV = ("hue", "saturation", "value")


@dataclass(frozen=True)
class Folders:
    """The module's inputs: a real results folder, results of another network, results of a segment
    bank (segment ``first``, channels 0 and 2 of ``conv``, S1 only) with the study's factors and with
    other factors, a scratch folder."""

    results: Path
    other_net: Path
    bank: Path
    other_bank: Path
    root: Path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Folders:
    import warnings

    from augsens.config import load_config
    from augsens.engine.study import Study

    root = tmp_path_factory.mktemp("analysis-errors")
    cfg = root / "tiny.toml"
    cfg.write_text(TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-sample warning of n = 8 is expected here
        Study(load_config(cfg), progress=False).run(root / "study")
    # Results of another network: same checkpoint name and factors, other channels and positions.
    rng = np.random.default_rng(0)
    factors = ["hflip", "grayscale"]
    nodes = {
        "/": xr.Dataset(attrs={"config": "{}"}),
        "conv": xr.Dataset(
            {"S1": (("factor", "channel", "y", "x"), rng.random((2, 3, 5, 5)))}, coords={"factor": factors}
        ),
    }
    other = root / "other-net"
    xr.DataTree.from_dict(nodes).to_zarr(other / "results.zarr", zarr_format=2, consolidated=True)
    from augsens.results import open_results

    study_factors = [str(f) for f in open_results(root / "study")["conv"]["factor"].values]
    for name, names in (("bank", study_factors), ("other-bank", factors)):
        maps = (("factor", "channel", "y", "x"), rng.random((len(names), 2, 28, 28)))
        branches = {f"first_{ch}": xr.Dataset({"S1": maps}, coords={"factor": names}) for ch in HSV}
        xr.DataTree.from_dict({"/": xr.Dataset(attrs={"config": "{}"}), **branches}).to_zarr(
            root / name / "results.zarr", zarr_format=2, consolidated=True
        )
    return Folders(root / "study", other, root / "bank", root / "other-bank", root)


def _segment_file(root: Path, name: str, entries: object) -> str:
    path = root / name
    path.write_text(json.dumps(entries) if not isinstance(entries, str) else entries)
    return str(path)


def _conv_segment(root: Path, modules: list[str], channels: tuple[int, ...] = (0, 2)) -> str:
    """A segment file of tiny_cnn (4 channels at ``conv``): ``channels`` of ``conv``, through ``modules``."""
    neurons = {"conv": {str(c): [] for c in channels}}
    entry = {"unit_name": "first", "modules_names": modules, "neurons": neurons}
    stem = "-".join([*modules, *map(str, channels)])
    return _segment_file(root, f"seg-{stem}.json", {"segments": [entry]})


@dataclass(frozen=True)
class Case:
    """One mistake: ``argv(folders, out)`` gives the command line; ``words`` must all be in the message."""

    name: str
    argv: Callable[[Folders, Path], list[str]]
    words: tuple[str, ...]


def _mask(*more: str) -> Callable[[Folders, Path], list[str]]:
    return lambda f, out: ["mask", str(f.results), "--out", str(out), *NET, "--draws", "1", *more]


def _contrast(*more: str) -> Callable[[Folders, Path], list[str]]:
    return lambda f, out: ["contrast", "--out", str(out), *NET, "--augmentations", "hflip", *more]


def _correlation(*more: str) -> Callable[[Folders, Path], list[str]]:
    return lambda f, out: ["correlation", str(f.results), "--out", str(out), *more]


def _lda(*more: str) -> Callable[[Folders, Path], list[str]]:
    return lambda f, out: ["lda", str(f.results), "--out", str(out), "--repeats", "2", *more]


def _segments(segment_file: Callable[[Path], str], *more: str) -> Callable[[Folders, Path], list[str]]:
    return lambda f, out: [
        "segments",
        str(f.results),
        str(f.results),
        "--segments",
        segment_file(f.root),
        "--out",
        str(out),
        *more,
    ]


CASES = [
    # mask: option values, names not in the results, results of another network
    Case("mask-quantile-above-1", _mask("--quantiles", "0.5,1.5"), ("quantile=1.5", "[0, 1]")),
    Case("mask-quantile-negative", _mask("--quantiles", "-0.1"), ("quantile=-0.1", "[0, 1]")),
    Case("mask-alphas-unparsable", _mask("--alphas", "0,half"), ("--alphas", "'0,half'", "numbers")),
    Case("mask-alpha-not-finite", _mask("--alphas", "nan"), ("alpha=nan", "finite")),
    Case("mask-draws-zero", _mask("--draws", "0"), ("draws=0", "positive integer")),
    Case("mask-k-zero", _mask("--k", "0"), ("k=0", "positive integer")),
    Case("mask-negative-seed", _mask("--seed", "-1"), ("seed=-1", "non-negative integer")),
    Case("mask-unknown-checkpoint", _mask("--checkpoint", "conv2"), ("unknown checkpoint 'conv2'", "'conv'")),
    Case("mask-unknown-measure", _mask("--measure", "S2"), ("measure 'S2'", "available", "'S1'")),
    Case(
        "mask-results-of-another-model",
        lambda f, out: [
            "mask",
            str(f.results),
            "--out",
            str(out),
            "--model",
            "augsens.testing:image_statistics",
            "--device",
            "cpu",
            "--draws",
            "1",
        ],
        ("unknown module 'conv'", "the model the results were computed with"),
    ),
    Case(
        "mask-maps-of-another-network-shape",
        lambda f, out: ["mask", str(f.other_net), "--out", str(out), *NET, "--draws", "1"],
        ("checkpoint 'conv' outputs (4, 28, 28)", "(3, 5, 5)", "the model the results were computed with"),
    ),
    # contrast: augmentation names and option values
    Case(
        "contrast-unknown-augmentation",
        lambda f, out: ["contrast", "--out", str(out), *NET, "--augmentations", "hflp,grayscale"],
        ("unknown augmentation 'hflp'", "did you mean", "hflip"),
    ),
    Case("contrast-bad-mode", _contrast("--mode", "papr"), ("'papr'", "'clean' or 'paper'")),
    Case("contrast-bad-pairing", _contrast("--pairing", "pixel"), ("'pixel'", "'draw' or 'image'")),
    Case("contrast-draws-zero", _contrast("--draws", "0"), ("draws", ">= 1", "0")),
    Case("contrast-too-many-images", _contrast("--n-images", "999"), ("n_images", "999")),
    Case("contrast-unknown-checkpoint", _contrast("--checkpoint", "conv9"), ("'conv9'",)),
    # correlation: names not in the results, results of two different networks
    Case("correlation-unknown-factor", _correlation("--factors", "hflip,vflip"), ("['vflip']", "available")),
    Case("correlation-unknown-measure", _correlation("--measures", "S2"), ("['S2']", "measures")),
    Case(
        "correlation-results-of-two-networks",
        lambda f, out: [
            "correlation",
            str(f.results),
            str(f.other_net),
            "--out",
            str(out),
            "--measures",
            "S1",
        ],
        ("share channels and positions", "same network"),
    ),
    Case(
        "correlation-not-a-results-folder",
        lambda f, out: ["correlation", str(f.root), "--out", str(out)],
        ("no results.zarr", "--out folder of a finished run"),
    ),
    # lda: factors, folds, measures
    Case("lda-one-factor", _lda("--factors", "hflip"), ("at least two factors", "['hflip']")),
    Case("lda-unknown-factor", _lda("--factors", "hflip,vflip"), ("['vflip']", "available")),
    Case("lda-one-split", _lda("--splits", "1"), ("n_splits", ">= 2", "1")),
    Case("lda-more-splits-than-samples", _lda("--splits", "1000"), ("n_splits=1000", "exceeds")),
    Case("lda-negative-seed", _lda("--seed", "-1"), ("seed", "[0, 2**32)", "-1")),
    Case("lda-no-spatial-measure", _lda("--measures", "S2"), ("no spatial maps", "['S2']")),
    # segments: segment file name and content, results that do not fit the file
    Case(
        "segments-unknown-example",
        _segments(lambda root: "vgg16"),
        ("'vgg16'", "does not exist", "alexnet", "resnet18"),
    ),
    Case(
        "segments-file-not-json",
        _segments(lambda root: _segment_file(root, "broken.json", "{'segments': [")),
        ("not valid json",),
    ),
    Case(
        "segments-entry-lacks-keys",
        _segments(
            lambda root: _segment_file(root, "nokeys.json", [{"unit_name": "a", "modules_names": ["conv"]}])
        ),
        ("lacks keys", "['neurons']"),
    ),
    Case(
        "segments-unknown-channel",
        _segments(lambda root: _conv_segment(root, ["conv"]), "--channels", "hue,hew"),
        ("['hew']", "'saturation'"),
    ),
    Case(
        "segments-output-not-a-checkpoint",
        _segments(lambda root: _conv_segment(root, ["conv", "act"])),
        ("lack checkpoint 'act'", "available", "'conv'"),
    ),
    Case(
        "segments-channels-beyond-the-network",
        _segments(lambda root: _conv_segment(root, ["conv"], channels=(1, 7))),
        ("channels [7]", "4 channels of 'conv'"),
    ),
    Case(
        "segments-ending-at-a-dense-layer",
        _segments(lambda root: _conv_segment(root, ["conv", "act", "pool", "flat", "fc"])),
        ("ends at 'fc'", "no 'channel' dim", "convolutional module"),
    ),
    Case(
        "segments-measure-in-neither-study",
        lambda f, out: [
            "segments",
            str(f.bank),
            str(f.results),
            "--segments",
            _conv_segment(f.root, ["conv"]),
            "--out",
            str(out),
            "--measures",
            "shapley",
        ],
        ("['shapley']", "both", "S1"),
    ),
    Case(
        "segments-studies-with-different-factors",
        lambda f, out: [
            "segments",
            str(f.other_bank),
            str(f.results),
            "--segments",
            _conv_segment(f.root, ["conv"]),
            "--out",
            str(out),
            "--measures",
            "S1",
        ],
        ("segment results have factors ['hflip', 'grayscale']", "same study"),
    ),
    Case(
        "segments-network-results-as-segment-results",
        _segments(lambda root: _conv_segment(root, ["conv"])),
        ("lack branch 'first_hue'", "segment bank"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_analysis_command_refuses_bad_input_in_one_line(case: Case, folders: Folders, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, case.argv(folders, tmp_path / "out"))
    escaped = res.exception is not None and not isinstance(res.exception, SystemExit)
    assert not escaped, f"{type(res.exception).__name__}: {res.exception}"
    assert "Traceback" not in res.output, res.output
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    # rich may wrap a long message: compare the words against the output with line breaks removed
    flat = " ".join(res.output.split()).lower()
    for word in case.words:
        assert word.lower() in flat, (word, res.output)


def test_segment_bank_fixture_fits_with_a_measure_both_studies_hold(folders: Folders, tmp_path: Path) -> None:
    """The counterpart of ``segments-measure-in-neither-study``: the same folders and file with S1 work,
    so that case fails for the measure alone."""
    import pandas as pd

    out = tmp_path / "out"
    segment_file = _conv_segment(folders.root, ["conv"])
    argv = ["segments", str(folders.bank), str(folders.results), "--segments", segment_file]
    res = CliRunner().invoke(app, [*argv, "--out", str(out), "--measures", "S1"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "segments_summary.csv")
    assert set(table["source"]) == {*HSV, "network"} and set(table["measure"]) == {"S1"}
