"""The package as a user meets it: SALib problems and numpy functions, tidy tables, summaries, the command
line's --version / init, MPS in device="auto", and the message naming a missing extra."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from SALib.test_functions import Ishigami
from typer.testing import CliRunner

import augsens as ag
from augsens.cli import app
from augsens.config import load_config
from augsens.extras import MissingExtraError

SALIB = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-math.pi, math.pi]] * 3}
PROBLEM = ag.Problem([ag.Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])


def _ishigami(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0]) + 7 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])


def _numpy_ishigami(x: torch.Tensor) -> np.ndarray:
    return Ishigami.evaluate(x.numpy())


@pytest.mark.parametrize(
    ("estimate", "names"),
    [
        (lambda f, p: ag.sobol(f, p, n=1024, seed=3), ("S1", "ST", "S1_conf")),
        (lambda f, p: ag.shapley(f, p, n=256, seed=3), ("shapley", "S1", "shapley_interaction")),
        (lambda f, p: ag.moments(f, p, n=1024, seed=3), ("mean", "var")),
    ],
)
def test_salib_problem_and_numpy_f_equal_the_augsens_equivalents(estimate, names):
    ours = estimate(_ishigami, PROBLEM)
    theirs = estimate(_numpy_ishigami, SALIB)
    for name in names:  # same design, same rows: only the last bits of sin and pow may differ
        np.testing.assert_allclose(theirs[name].values, ours[name].values, rtol=1e-9, atol=1e-12)
    assert list(theirs.coords.get("factor", [])) == list(ours.coords.get("factor", []))


def test_salib_groups_round_trip_and_refusals():
    spec = {"names": ["a", "b", "c"], "bounds": [[0, 1], [0, 2], [1, 3]], "groups": ["g", "c", "g"]}
    problem = ag.Problem.from_salib(spec)
    assert problem.group_names == ["g", "c"] and problem.to_salib()["groups"] == ["g", "c", "g"]
    assert ag.Problem.from_salib(problem.to_salib()).to_salib() == problem.to_salib()
    with pytest.raises(ValueError, match=r"distributions \['norm'\] are not supported"):
        ag.Problem.from_salib({**spec, "dists": ["unif", "norm", "unif"]})
    with pytest.raises(ValueError, match="num_vars=4 but 3 names"):
        ag.Problem.from_salib({**spec, "num_vars": 4})
    with pytest.raises(ValueError, match=r"not Uniform"):
        ag.Problem([ag.Switch("s")]).to_salib()


def test_to_dataframe_and_summary_of_a_sobol_result():
    ds = ag.sobol(_ishigami, PROBLEM, n=1024)
    table = ag.to_dataframe(ds)
    s1 = table.query("measure == 'S1'").set_index("factor")
    np.testing.assert_array_equal(s1.loc[["x1", "x2", "x3"], "value"], ds["S1"].values)
    np.testing.assert_array_equal(s1.loc[["x1", "x2", "x3"], "conf"], ds["S1_conf"].values)
    html = ds.augsens._repr_html_()
    assert all(f"<td>{name}</td>" in html for name in ("x1", "x2", "x3"))
    assert "saltelli_2010" in repr(ag.summary(ds))


@pytest.mark.filterwarnings("ignore::augsens.core.design.QMCSmallSampleWarning")  # a tiny study on purpose
def test_to_dataframe_of_a_study_has_every_value(tmp_path):
    tree = ag.study(
        "augsens.testing:tiny_cnn", "bundled", augmentations=["hue", "hflip"], n=16, replicates=2,
        checkpoints=["conv", "fc"], device="cpu", progress=False,
    )  # fmt: skip
    table = ag.to_dataframe(tree, measures=["ST"])
    for c in ("conv", "fc"):
        node = tree[c].to_dataset()
        rows = table.query("checkpoint == @c")
        assert len(rows) == sum(
            node[v].size for v in node.data_vars if v.startswith("ST") and "_conf" not in v
        )
    summary = repr(tree.augsens)
    assert "conv" in summary and "hflip" in summary
    assert "<iframe srcdoc=" in ag.show(tree)._repr_html_()


def test_cli_version_and_init(tmp_path):
    done = subprocess.run([sys.executable, "-m", "augsens", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"augsens {ag.__version__}"
    runner = CliRunner()
    target = tmp_path / "study.toml"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    assert load_config(target).study.augmentations == ["hue", "hflip", "rotation"]
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == 2 and "exists" in again.output
    preset = runner.invoke(app, ["init", str(tmp_path / "p.toml"), "--preset", "alexnet-set1-exp13"])
    assert preset.exit_code == 2 and "alexnet-set1-exp1.3" in preset.output
    assert (
        runner.invoke(app, ["init", str(tmp_path / "p.toml"), "--preset", "alexnet-set1-exp1.3"]).exit_code
        == 0
    )
    assert load_config(tmp_path / "p.toml").model.name == "alexnet"


def test_device_auto_picks_mps_when_there_is_no_cuda(monkeypatch):
    from augsens.engine.study import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"


def test_a_missing_extra_is_named(monkeypatch):
    from augsens.models import registry

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'augsens\[vision\]'"):
        registry.MODELS["efficientnet_lite0"].build()


def test_torchvision_weights_file_names():
    import torchvision.models as tvm

    from augsens.models.registry import _HUB_FILES

    for arch, enum in (
        ("alexnet", "AlexNet_Weights"),
        ("vgg11", "VGG11_Weights"),
        ("resnet18", "ResNet18_Weights"),
    ):
        assert _HUB_FILES[arch] == getattr(tvm, enum).IMAGENET1K_V1.url.rsplit("/", 1)[-1]


def test_plotting_helpers_reachable_from_ag():
    from augsens.plot.maps import depth_profile

    assert ag.plot.depth_profile is depth_profile
