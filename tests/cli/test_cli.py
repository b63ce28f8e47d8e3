"""The command line as a user meets it: exit codes, one-line errors, files written."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from augsens.cli import app
from augsens.results import open_results

runner = CliRunner()

TINY = """
[model]
name = "augsens.testing:tiny_cnn"
checkpoints = ["conv", "act", "fc"]
[images]
source = "bundled"
[study]
kind = "{kind}"
augmentations = ["hue", "hflip", "rolling"]
n = 8
replicates = 2
[run]
batch_size = 40
device = "cpu"
"""


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    for kind in ("sobol", "shapley"):
        cfg = root / f"{kind}.toml"
        cfg.write_text(TINY.format(kind=kind))
        res = runner.invoke(app, ["run", str(cfg), "--out", str(root / kind), "--quiet"])
        assert res.exit_code == 0, res.output
    return root


def test_run_writes_results_and_report(studies):
    assert (studies / "sobol" / "report.html").stat().st_size > 10_000
    tree = open_results(studies / "sobol")
    assert list(tree.children) == ["conv", "act", "fc"] and tree.attrs["kind"] == "sobol"
    res = runner.invoke(app, ["report", str(studies)])
    assert res.exit_code == 0, res.output
    page = (studies / "report.html").read_text()
    assert "sobol on" in page and "shapley on" in page  # both studies summarised
    assert "id='augsens-data'" in page and '"name":"sobol"' in page and '"name":"shapley"' in page


def test_bad_config_is_one_clear_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[study]\nsamples = 4\n")
    res = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "unknown key 'samples'" in res.output and "Traceback" not in res.output


def test_unknown_model_and_missing_files(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text('[model]\nname = "resnet19"\n[run]\ndevice = "cpu"\n')
    res = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "resnet18" in res.output
    res = runner.invoke(app, ["gallery", str(tmp_path / "none.jpg")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "no augsens results" in res.output


def test_info_lists_augmentations_and_kinds():
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0
    for word in ("elliptic_local_blur", "shapley-song", "efficientnet_lite0"):
        assert word in res.output


def test_correlation_and_lda_commands(studies, tmp_path):
    res = runner.invoke(
        app, ["correlation", str(studies / "sobol"), str(studies / "shapley"), "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "correlation.section.html").is_file()
    assert list(tmp_path.glob("*.csv"))
    res = runner.invoke(
        app, ["lda", str(studies / "sobol"), "--out", str(tmp_path / "lda"), "--repeats", "2"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "lda" / "lda.section.html").is_file()


def test_mask_command(studies, tmp_path):
    args = ["mask", str(studies / "sobol"), "--out", str(tmp_path), "--model", "augsens.testing:tiny_cnn"]
    args += [
        "--quantiles",
        "0.5,0.9",
        "--alphas",
        "0,1.5",
        "--draws",
        "1",
        "--measure",
        "ST",
        "--device",
        "cpu",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "masking.section.html").is_file()
    assert (tmp_path / "masking_accuracy.csv").is_file()


def test_contrast_command(tmp_path):
    args = [
        "contrast",
        "--out",
        str(tmp_path / "c"),
        "--model",
        "augsens.testing:tiny_cnn",
        "--device",
        "cpu",
    ]
    args += ["--augmentations", "hue,hflip", "--draws", "2", "--n-images", "4"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    tree = open_results(tmp_path / "c")
    assert tree.attrs["kind"] == "contrast" and "p_value_by" in tree["fc"].dataset
    res = runner.invoke(app, ["report", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "treatment-control" in (tmp_path / "c" / "report.html").read_text()


def test_set_overrides_config_keys(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text(TINY.format(kind="sobol"))
    args = ["run", str(cfg), "--out", str(tmp_path / "o"), "-q", "--no-report"]
    res = runner.invoke(app, [*args, "--set", "study.n=16", "--set", 'study.augmentations=["hue"]'])
    assert res.exit_code == 0, res.output
    tree = open_results(tmp_path / "o")
    assert (
        tree.attrs["n"] == 16
        and "hue" in tree.attrs["augmentations"]
        and "hflip" not in tree.attrs["augmentations"]
    )
    res = runner.invoke(app, [*args, "--set", "n=16"])
    assert res.exit_code == 2 and "SECTION.KEY=VALUE" in res.output
    res = runner.invoke(app, [*args, "--set", "study.n=many"])
    assert res.exit_code == 2 and "n must be an integer, got 'many'" in res.output
