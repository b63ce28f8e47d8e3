"""The explorer page's numbers: reduced maps, summary sentences, several folders, extra sections."""

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from augsens.cli import app
from augsens.config import StudyConfig
from augsens.engine.study import Study
from augsens.plot.explorer_data import study_payload
from augsens.plot.summary import INVARIANCE_THRESHOLD, study_summary
from augsens.results import open_results


def _study(out: Path, kind: str, **study) -> Path:
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["conv", "pool", "fc"]},
            "images": {"source": "bundled"},
            "study": {"kind": kind, "augmentations": ["hue", "hflip"], "n": 16, "replicates": 2, **study},
            "run": {"batch_size": 64, "device": "cpu"},
        }
    )
    Study(cfg, progress=False).run(out)
    return out


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("explorer")
    _study(root / "sobol", "sobol", second_order=True)
    _study(root / "shapley", "shapley")
    return root


def _decode(enc: dict) -> np.ndarray:
    """The page's decoding (explorer.js ``decode``), in numpy."""
    codes = np.frombuffer(base64.b64decode(enc["data"]), dtype="<u2").astype(float)
    scale = (enc["hi"] - enc["lo"]) / 65534 if enc["hi"] > enc["lo"] else 1.0
    return np.where(codes == 65535, np.nan, enc["lo"] + codes * scale)


def test_maps_round_trip_at_full_size(studies):
    tree = open_results(studies / "sobol")
    maps = study_payload("s", tree)["maps"]
    assert maps["conv"]["pool"] == 1 and maps["conv"]["note"] == ""
    for measure, factor in (("ST", "hue"), ("S1", "image"), ("mean", "")):
        enc = maps["conv"]["measures"][measure][factor]
        want = tree["conv"].dataset[measure]
        want = (want.sel(factor=factor) if factor else want).values.ravel()
        resolution = (enc["hi"] - enc["lo"]) / 65534
        np.testing.assert_allclose(_decode(enc), want, atol=resolution, equal_nan=True)
    pairs = set(maps["fc"]["measures"]["S2"])  # interactions: one map per pair of factors
    assert "hue × hflip" in pairs and len(pairs) == 6  # hue, hflip, order, image


def test_budget_pools_maps_as_aggregated_indices_and_says_so(studies):
    tree = open_results(studies / "sobol")
    payload = study_payload("s", tree, budget=6_000)
    conv = payload["maps"]["conv"]
    k = conv["pool"]
    assert k > 1 and f"28×28 maps shown as {28 // k}×{28 // k}" in conv["note"]
    ds = tree["conv"].dataset
    ch = conv["channels"][0]
    got = _decode(conv["measures"]["ST"]["hflip"]).reshape(conv["shape"])[0, 0, 0]
    var = ds["var"].values[ch, :k, :k]
    st = ds["ST"].sel(factor="hflip").values[ch, :k, :k]
    want = (st * var).sum() / var.sum()  # numerators over variances, as for a channel
    enc = conv["measures"]["ST"]["hflip"]
    assert abs(got - want) <= (enc["hi"] - enc["lo"]) / 65534 + 1e-12
    stored = sum(
        len(_decode(e))
        for cp in payload["maps"].values()
        for m in cp["measures"].values()
        for e in m.values()
    )
    assert stored <= 6_000


def _synthetic(st: dict[str, list[float]], conf: float) -> xr.DataTree:
    cps = ["c0", "c1", "c2"]
    factors = list(st)
    nodes = {
        c: xr.Dataset(
            {
                "ST_checkpoint": ("factor", [st[f][i] for f in factors]),
                "ST_conf_checkpoint": ("factor", [conf] * len(factors)),
            },
            coords={"factor": factors},
        )
        for i, c in enumerate(cps)
    }
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs = {"kind": "sobol", "model": "m", "checkpoints": json.dumps(cps)}
    return tree


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def test_summary_says_who_dominates_and_where_invariance_emerges():
    tree = _synthetic({"flip": [0.4, 0.2, 0.01], "hue": [0.1, 0.15, 0.3], "image": [0.9, 0.9, 0.9]}, 0.02)
    text = _text(study_summary("s", tree))
    assert "Largest total index: image at every checkpoint" in text
    assert "Among the augmentations: flip from c0 to c1 (0.40 ± 0.02, 0.20 ± 0.02); hue at c2" in text
    assert (
        f"flip: 0.40 ± 0.02 at c0 → 0.01 ± 0.02 at c2; invariant (below {INVARIANCE_THRESHOLD}) from c2 on"
        in text
    )
    assert "hue: 0.10 ± 0.02 at c0 → 0.30 ± 0.02 at c2" in text and "not separated" not in text
    wide = _text(study_summary("s", _synthetic({"a": [0.3, 0.3, 0.3], "b": [0.2, 0.2, 0.2]}, 0.1)))
    assert "a at every checkpoint" in wide and "not separated from b at this n" in wide


def test_summary_numbers_are_the_results_numbers(studies):
    tree = open_results(studies / "shapley")
    spans = re.findall(r'<span class="num" ([^>]*)>([^<]*)</span>', study_summary("shapley", tree))
    assert len(spans) > 10
    for attrs, text in spans:
        a = dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        name = f"{a['measure']}_conf_checkpoint" if a["role"] == "conf" else f"{a['measure']}_checkpoint"
        value = float(tree[a["checkpoint"]].dataset[name].sel(factor=a["factor"]))
        assert text == f"{value:.2f}"


def test_report_of_several_folders_with_sections(studies, tmp_path):
    (tmp_path / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n-")
    (tmp_path / "extra.section.html").write_text('<h2>Extra analysis</h2><img src="fig.png">')
    out = tmp_path / "r.html"
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(studies / "sobol"), str(studies / "shapley"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    data = json.loads(re.search(r"id='augsens-data'>(.*?)</script>", page).group(1))
    assert [s["name"] for s in data["studies"]] == ["sobol", "shapley"]
    assert '<a href="#section-0">Extra analysis</a>' in page
    assert 'src="data:image/png;base64,' + base64.b64encode(b"\x89PNG\r\n\x1a\n-").decode() in page
    res = runner.invoke(app, ["report", str(studies / "sobol"), str(studies / "shapley")])
    assert res.exit_code == 2 and "--out FILE" in res.output
    res = runner.invoke(app, ["report", str(studies / "sobol"), str(tmp_path), "--out", str(out)])
    assert res.exit_code == 2 and "no augsens results" in res.output
