"""ag.compare / augsens compare: profiles on relative depth, dominant factors, differences with intervals."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import augsens as ag
from augsens.analysis.compare import compare
from augsens.cli import app
from augsens.errors import UserInputError

KW = dict(augmentations=["hflip", "grayscale", "hue"], n=8, replicates=2, device="cpu", progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    images = torch.randint(
        0, 256, (3, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    ag.study("augsens.testing:tiny_cnn", images, checkpoints=["conv", "act", "fc"], out=root / "one", **KW)
    ag.study(
        "augsens.testing:tiny_cnn", images, checkpoints=["act", "pool", "fc"], seed=1, out=root / "two", **KW
    )
    ag.study(
        "augsens.testing:tiny_cnn",
        images,
        checkpoints=["act", "fc"],
        kind="shapley",
        out=root / "three",
        **KW,
    )
    return root


def test_cli_renders_a_page_with_tables(runs, tmp_path):
    res = CliRunner().invoke(
        app, ["compare", str(runs / "one"), str(runs / "two"), "--out", str(tmp_path), "--measures", "S1,ST"]
    )
    assert res.exit_code == 0, res.output
    page = (tmp_path / "compare.html").read_text()
    # a profile and a difference figure per measure (S1, ST), embedded; the CSV tables beside them
    assert page.count("<img") == 4 and "data:image/png;base64," in page
    assert "Dominant factor per checkpoint" in page and "relative depth" in page
    for name in ("profiles", "dominance", "differences"):
        assert (tmp_path / f"{name}.csv").stat().st_size > 100
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "difference_S1.png",
        "difference_ST.png",
        "profile_S1.png",
        "profile_ST.png",
    ]
    # the explorer holds both studies and the comparison as a section, its figures embedded
    explorer = (tmp_path / "explorer.html").read_text()
    assert "Dominant factor per checkpoint" in explorer and explorer.count("data:image/png;base64,") >= 4
    assert 'src="profile_S1.png"' not in explorer and "one" in explorer and "two" in explorer


def test_tables_follow_the_results(runs):
    result = compare([runs / "one", runs / "two"])
    one, two = result.runs["one"], result.runs["two"]
    prof = result.profiles
    # relative depths are the ones the studies recorded, in [0, 1], the output at 1
    depth = json.loads(one.attrs["depth"])
    got = prof[(prof.run == "one")].drop_duplicates("checkpoint").set_index("checkpoint")["depth"].to_dict()
    assert got == depth and depth["fc"] == 1.0
    # the dominant factor is the argmax of the aggregated index
    row = result.dominance.query("run == 'two' and checkpoint == 'pool' and measure == 'ST'").iloc[0]
    st = two["pool"].dataset["ST_checkpoint"]
    augs = st.sel(factor=["hflip", "grayscale", "hue"])
    assert row.augmentation == str(augs["factor"].values[int(np.argmax(augs.values))])
    assert row.factor == str(st["factor"].values[int(np.argmax(st.values))]) and row.value == pytest.approx(
        float(st.max())
    )
    # differences only at shared checkpoints, with half-widths added in quadrature
    diff = result.differences
    assert (
        set(diff.checkpoint) == {"act", "fc"} and len(diff) == 2 * 2 * 5
    )  # checkpoints x measures x factors
    r = diff.query("checkpoint == 'act' and measure == 'S1' and factor == 'hue'").iloc[0]
    a, b = (t["act"].dataset.sel(factor="hue") for t in (one, two))
    assert r.difference == pytest.approx(float(a["S1_checkpoint"] - b["S1_checkpoint"]))
    assert r.conf == pytest.approx(float(np.hypot(a["S1_conf_checkpoint"], b["S1_conf_checkpoint"])))
    assert (diff.significant == (diff.difference.abs() > diff.conf)).all()


def test_trees_labels_and_errors(runs):
    tree = ag.open_results(runs / "one")
    result = compare([tree, runs / "two"], labels=["mine", "theirs"], measures=["ST"])
    assert list(result.runs) == ["mine", "theirs"] and set(result.profiles.measure) == {"ST"}
    model = tree.attrs["model"]  # trees are named by model and kind, numbered when two share a name
    assert list(compare([tree, tree]).runs) == [f"{model} sobol (1)", f"{model} sobol (2)"]
    # a Shapley run beside a Sobol run: each measure among the runs that have it (the exact Shapley
    # estimator gives S1 and ST too), differences only for measures both have
    mixed = compare([runs / "one", runs / "three"], runs / "mixed")
    assert set(mixed.profiles.query("measure == 'shapley'").run) == {"three"}
    assert set(mixed.differences.measure) == {"S1", "ST"} and mixed.page is not None
    assert {"profile_shapley.png", "difference_ST.png"} <= {p.name for p in (runs / "mixed").glob("*.png")}
    assert not (runs / "mixed" / "difference_shapley.png").exists()
    with pytest.raises(UserInputError, match="at least two results"):
        compare([runs / "one"])
    with pytest.raises(UserInputError, match="1 labels for 2 results"):
        compare([runs / "one", runs / "two"], labels=["x"])
    with pytest.raises(
        UserInputError, match=r"no run has the measures \['shapley'\]; these runs have \['S1', 'ST'\]"
    ):
        compare([runs / "one", runs / "two"], measures=["shapley"])
    with pytest.raises(FileNotFoundError, match="no augsens results in"):
        compare([runs / "one", runs / "missing"])
