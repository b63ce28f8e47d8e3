"""``kind = "contrast"``: the treatment–control study run from a config (``augsens run``) and by
``ag.study``, through the one path every study takes, equal to calling the study itself."""

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from typer.testing import CliRunner

import augsens as ag
from augsens.cli import app
from augsens.config import ConfigError, ImagesConfig, ModelConfig, load_config
from augsens.engine.contrast import contrast_study
from augsens.engine.inputs import load_images, load_model
from augsens.engine.quick import run_study
from augsens.errors import UserInputError
from augsens.results import open_results

runner = CliRunner()

MODEL = "augsens.testing:tiny_cnn"
CHECKPOINTS = ["conv", "fc"]
AUGMENTATIONS = ["hue", "hflip"]
# non-default seed and pairing, so that a key the runner dropped would change the numbers
SETTINGS = dict(draws=2, n_images=3, seed=3, pairing="draw")

CONFIG = f"""
[model]
name = "{MODEL}"
checkpoints = {CHECKPOINTS!r}
[study]
kind = "contrast"
augmentations = {AUGMENTATIONS!r}
draws = 2
n_images = 3
seed = 3
pairing = "draw"
[run]
batch_size = 8
device = "cpu"
"""


def _assert_same(a: xr.DataTree, b: xr.DataTree) -> None:
    assert list(a.children) == list(b.children) == CHECKPOINTS
    for c in CHECKPOINTS:
        da, db = a[c].dataset, b[c].dataset
        assert sorted(da.data_vars) == sorted(db.data_vars)
        for v in da.data_vars:
            assert da[v].dims == db[v].dims, v
            np.testing.assert_array_equal(da[v].values, db[v].values, err_msg=f"{c}/{v}")
    assert a.attrs["config"] == b.attrs["config"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contrast-kind")
    (root / "c.toml").write_text(CONFIG)
    res = runner.invoke(app, ["run", str(root / "c.toml"), "--out", str(root / "out"), "--quiet"])
    assert res.exit_code == 0, res.output
    return root


@pytest.fixture(scope="module")
def direct() -> xr.DataTree:
    device = torch.device("cpu")
    model = load_model(ModelConfig(name=MODEL, checkpoints=CHECKPOINTS), device=device)
    images = load_images(ImagesConfig(), device=device)
    return contrast_study(model, images, augmentations=AUGMENTATIONS, batch_size=8, **SETTINGS)


def test_run_of_a_contrast_config_equals_contrast_study(cli_run, direct):
    tree = open_results(cli_run / "out")
    assert tree.attrs["kind"] == "contrast" and tree["conv"]["n_pairs"].values.tolist() == [6, 3]
    _assert_same(tree, direct)
    page = (cli_run / "out" / "report.html").read_text()  # the explorer summarises contrast trees
    assert "treatment-control" in page


def test_ag_study_kind_contrast_is_the_same_tree(direct):
    tree = ag.study(
        MODEL,
        "bundled",
        AUGMENTATIONS,
        kind="contrast",
        checkpoints=CHECKPOINTS,
        device="cpu",
        batch_size=8,
        progress=False,
        **SETTINGS,
    )
    _assert_same(tree, direct)


def test_a_contrast_run_refuses_another_runs_folder_unless_overwrite(cli_run):
    args = ["run", str(cli_run / "c.toml"), "--out", str(cli_run / "out"), "-q", "--no-report"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "already holds results" in res.output
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 2 and "nothing to resume" in res.output
    res = runner.invoke(app, [*args, "--overwrite", "--set", "study.seed=4"])
    assert res.exit_code == 0, res.output
    assert '"seed": 4' in open_results(cli_run / "out").attrs["config"]
    # a saved state is not the contrast study's to resume, even when one is there
    cfg = load_config(cli_run / "c.toml")
    with pytest.raises(UserInputError, match="keeps no state to resume"):
        run_study(cfg, cli_run / "out", resume=True)


def test_keys_a_contrast_study_does_not_use_are_refused(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG + "checkpoint_every = 10.0\n")
    res = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "[run] checkpoint_every = 10.0 does not apply to kind = 'contrast'" in res.output
    assert not (tmp_path / "o").exists()
    res = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--set", "study.precision=0.02"])
    assert res.exit_code == 2 and "precision = 0.02" in res.output
    cfg.write_text(CONFIG)
    res = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--ray", "local"])
    assert res.exit_code == 2 and "drop --ray" in res.output
    with pytest.raises(ConfigError, match=r"\[study\] n = 8 does not apply to kind = 'contrast'"):
        ag.study(MODEL, "bundled", kind="contrast", n=8, device="cpu", progress=False)
