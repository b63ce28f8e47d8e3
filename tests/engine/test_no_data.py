"""No conclusion without data: a checkpoint whose activations are never finite is named at the end of the
study and in the summary, never called invariant; elements without data are left out of aggregates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from augsens.config import StudyConfig
from augsens.data import ImageCache
from augsens.engine.results import NoDataWarning
from augsens.engine.study import Study
from augsens.models import load
from augsens.plot.explorer import explorer_html
from augsens.plot.summary import study_summary


class _FirstChannelsNaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[:, :2] = float("nan")
        return y


class _AllNaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, 8, stride=8))
    net.add_module("part", _FirstChannelsNaN())
    net.add_module("pool", nn.AdaptiveAvgPool2d(2))
    net.add_module("flat", nn.Flatten())
    net.add_module("nan", _AllNaN())
    return net


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> xr.DataTree:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3, 3, 224, 224), generator=gen, dtype=torch.uint8)
    images = ImageCache(x, torch.zeros(3), ["synthetic"], ["a", "b", "c"])
    cfg = StudyConfig.from_dict(
        {
            "study": {"kind": "sobol", "augmentations": ["hflip", "brightness"], "n": 16, "replicates": 2},
            "run": {"device": "cpu"},
        }
    )
    model = load(_net(), checkpoints=["conv", "part", "nan"])
    with pytest.warns(NoDataWarning, match=r"checkpoints 'nan': no finite activation in any sample") as rec:
        out = Study(cfg, model=model, images=images, progress=False).run(tmp_path_factory.mktemp("o"))
    assert all("'conv'" not in str(w.message) and "'part'" not in str(w.message) for w in rec)
    return out


def test_checkpoints_and_elements_without_data_are_recorded(tree):
    assert json.loads(tree.attrs["no_data_checkpoints"]) == ["nan"]
    assert tree["nan"].attrs["no_data_elements"] == tree["nan"].dataset["mean"].size
    part = tree["part"].dataset
    assert part.attrs["no_data_elements"] == part["mean"].isel(channel=[0, 1]).size
    assert tree["conv"].attrs["no_data_elements"] == 0


def test_aggregates_leave_out_elements_without_data(tree):
    part = tree["part"].dataset
    whole = part["ST_checkpoint"].values
    channels = part["ST_channel"].values  # [factor, channel]
    assert np.isnan(channels[:, :2]).all() and np.isfinite(channels[:, 2:]).all()
    # the checkpoint's index is a variance-weighted mean of its channels' indices: between them
    lo, hi = channels[:, 2:].min(axis=1), channels[:, 2:].max(axis=1)
    assert np.isfinite(whole).all()
    assert (whole >= lo - 1e-12).all() and (whole <= hi + 1e-12).all()
    assert np.isnan(tree["nan"].dataset["ST_checkpoint"].values).all()


def test_the_summary_draws_no_conclusion_from_no_data(tree):
    text = study_summary("s", tree)
    assert "no data at nan" in text and "throughout" not in text
    assert "from nan on" not in text  # no invariance claim ending at a checkpoint without data
    only_nan = xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs={**tree.attrs, "checkpoints": json.dumps(["nan"])}),
            "nan": tree["nan"].dataset,
        }
    )
    text = study_summary("s", only_nan)
    assert "No conclusion" in text and "below" not in text and "invariant" not in text


def test_the_explorer_shows_the_checkpoint_without_data(tree):
    page = explorer_html([("s", tree)])
    assert "(all: no data at this checkpoint)" in page
    assert "no data at nan" in page
