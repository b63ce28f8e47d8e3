"""Interaction maps of an exact-Shapley study: per element, per channel and per checkpoint in the results
tree, and as factor × factor heat maps in the report (beside a second-order Sobol study's S2; a study
without pairwise indices gets no such section)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from augsens.config import StudyConfig
from augsens.engine.study import Study
from augsens.plot.explorer import explorer_html
from augsens.plot.interactions import interaction_heatmaps, pair_measures
from augsens.plot.report import write_report
from augsens.results import open_results

PAIRS = ("S2", "shapley_interaction")


def _study(out: Path, **study) -> Path:
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["conv", "pool", "fc"]},
            "images": {"source": "bundled"},
            "study": {"augmentations": ["hue", "hflip"], "n": 16, "replicates": 2, **study},
            "run": {"batch_size": 64, "device": "cpu"},
        }
    )
    Study(cfg, progress=False).run(out)
    return out


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interactions")
    _study(root / "shapley", kind="shapley", shapley_method="exact")
    _study(root / "sobol", kind="sobol", second_order=True)
    return root


def test_exact_shapley_study_has_interaction_maps_at_every_level(studies):
    tree = open_results(studies / "shapley")
    factors = ["hue", "hflip", "order", "image"]
    off = ~np.eye(len(factors), dtype=bool)
    levels = {
        "conv": {"": ("channel", "y", "x"), "_channel": ("channel",), "_checkpoint": ()},
        "pool": {"": ("channel", "y", "x"), "_channel": ("channel",), "_checkpoint": ()},
        "fc": {"": ("unit",), "_checkpoint": ()},
    }
    for cp, suffixes in levels.items():
        ds = tree[cp].dataset
        assert list(ds["factor2"].values) == factors
        for name in PAIRS:
            assert cp != "fc" or f"{name}_channel" not in ds  # a vector of units has no channel aggregate
            for suffix, out_dims in suffixes.items():
                for var in (f"{name}{suffix}", f"{name}_conf{suffix}"):
                    da = ds[var]
                    assert da.dims == ("factor", "factor2", *out_dims), (cp, var)
                    v = da.values
                    np.testing.assert_array_equal(v, np.swapaxes(v, 0, 1))  # symmetric
                    assert np.isnan(v[~off]).all()
            agg = ds[f"{name}_checkpoint"].values
            assert (
                np.isfinite(agg[off]).all() and np.isfinite(ds[f"{name}_conf_checkpoint"].values[off]).all()
            )
            # hue and hflip commute and there is nothing else to order: the order factor interacts with
            # nothing (the hybrids cancel exactly)
            np.testing.assert_allclose(
                ds[f"{name}_checkpoint"].sel(factor="order").values[[0, 1, 3]], 0, atol=1e-12
            )
        # the checkpoint's aggregate is numerators over variances like ST and S1, so a row of the pairwise
        # Shapley interaction sums to the factor's ST - S1 at checkpoint level too
        rows = np.nansum(ds["shapley_interaction_checkpoint"].values, axis=1)
        np.testing.assert_allclose(rows, ds["ST_checkpoint"] - ds["S1_checkpoint"], atol=1e-10)
    assert "interaction_method" in tree["conv"].dataset.attrs


def test_report_shows_interaction_heat_maps_with_the_results_numbers(studies):
    page = write_report(studies).read_text()
    assert '<a href="#interactions">Interactions</a>' in page
    heads = re.findall(r'<h3 class="interaction" data-study="([^"]+)" data-measure="([^"]+)">', page)
    assert heads == [("shapley", "shapley_interaction"), ("shapley", "S2"), ("sobol", "S2")]
    section = page[page.index('<section id="interactions">') : page.index('<section id="provenance">')]
    assert section.count('<img alt="shapley: ') == 2 and section.count('<img alt="sobol: ') == 1
    tree = open_results(studies / "shapley")
    fig = interaction_heatmaps(tree, "shapley_interaction")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["conv", "pool", "fc"]
    for ax in panels:
        ds = tree[ax.get_title()].dataset
        value, conf = (
            ds["shapley_interaction_checkpoint"].values,
            ds["shapley_interaction_conf_checkpoint"].values,
        )
        texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
        assert len(texts) == 12  # every pair, not the diagonal
        for (i, j), text in texts.items():
            assert text == f"{value[i, j]:.2f}\n±{conf[i, j]:.2f}"


def test_report_without_pairwise_indices_has_no_interaction_section(studies):
    tree = open_results(studies / "sobol")
    assert pair_measures(tree) == ["S2"]
    with pytest.raises(KeyError, match=r"no aggregated 'shapley_interaction'.*present: \['S2'\]"):
        interaction_heatmaps(tree, "shapley_interaction")
    first_order = tree.map_over_datasets(
        lambda ds: ds.drop_vars([v for v in ds.data_vars if v.startswith("S2")])
    )
    assert pair_measures(first_order) == []
    page = explorer_html([("sobol", first_order)])
    assert 'id="interactions"' not in page and "Map viewer" in page
