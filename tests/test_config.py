"""Config validation: every bad key, type or value fails with one message naming it."""

from pathlib import Path

import pytest

from augsens.config import ConfigError, StudyConfig, load_config

PRESETS = sorted((Path(__file__).parents[1] / "configs").rglob("*.toml"))


def test_defaults_are_valid():
    cfg = StudyConfig.from_dict({})
    assert cfg.model.name == "efficientnet_lite0"
    assert cfg.study.kind == "sobol" and cfg.study.n == 1024


def test_round_trip_json():
    cfg = StudyConfig.from_dict({"study": {"kind": "shapley", "n": 64, "augmentations": ["hue", "hflip"]}})
    assert '"augmentations": ["hue", "hflip"]' in cfg.to_json()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"studdy": {}}, r"unknown section 'studdy'\. Did you mean 'study'\?"),
        ({"study": {"nn": 4}}, r"\[study\]: unknown key 'nn'\. Did you mean 'n'\?"),
        ({"study": {"n": "many"}}, r"\[study\] n must be an integer, got 'many'"),
        ({"study": {"n": True}}, r"n must be an integer, got True"),
        ({"study": {"kind": "sobel"}}, r"kind = 'sobel' is not allowed; choose one of \['sobol'"),
        ({"study": {"n": 1000}}, r"n = 1000 is not a power of 2.*use n = 512 or 1024"),
        ({"study": {"n": 0}}, r"n must be a positive integer"),
        ({"study": {"n": 64, "replicates": 3}}, r"replicates = 3 must be a positive divisor of n = 64"),
        ({"run": {"batch_size": 0}}, r"batch_size must be a positive integer"),
        ({"run": {"dtype": "float16"}}, r"dtype = 'float16' is not allowed"),
        ({"model": {"checkpoints": "features.2"}}, r"checkpoints must be a list"),
        ({"model": {"checkpoints": [1]}}, r"checkpoints\[0\] must be a string"),
        ({"study": "sobol"}, r"\[study\] must be a table"),
        ({"study": {"switch_p": 2.0}}, r"switch_p must lie in \[0, 1\]"),
        (
            {"study": {"kind": "contrast", "precision": 0.02}},
            r"\[study\] precision = 0.02 does not apply to kind = 'contrast' \(.*\); remove it",
        ),
        (
            {"study": {"kind": "contrast", "n": 64, "replicates": 2}, "run": {"dtype": "bfloat16"}},
            r"\[study\] n = 64, \[study\] replicates = 2, \[run\] dtype = 'bfloat16' do not apply",
        ),
        ({"study": {"draws": 3}}, r"\[study\] draws = 3 does not apply to kind = 'sobol'"),
        ({"study": {"kind": "contrast", "draws": 0}}, r"\[study\] draws must be >= 1, got 0"),
        ({"study": {"kind": "contrast", "pairing": "pair"}}, r"pairing = 'pair' is not allowed"),
        ({"study": {"kind": "contrast", "swap_effect_names": True}}, r"needs mode = \"paper\""),
    ],
)
def test_bad_configs_name_the_problem(data, match):
    with pytest.raises(ConfigError, match=match):
        StudyConfig.from_dict(data)


def test_iid_design_accepts_any_n():
    assert StudyConfig.from_dict({"study": {"n": 1000, "design": "iid", "replicates": 1}}).study.n == 1000


def test_load_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nn = 4")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text('[study]\nkind = "moments"\nn = 16\n')
    cfg = load_config(good, overrides={"study.n": 32})
    assert cfg.study.kind == "moments" and cfg.study.n == 32


def test_presets_exist_and_validate():
    names = {p.name for p in PRESETS}
    for net in ("alexnet", "vgg11", "resnet18"):
        for aug in ("set1", "set2"):
            for exp in ("1.2", "1.3", "1.4", "1.5"):
                assert f"{net}-{aug}-exp{exp}.toml" in names
    for p in PRESETS:
        cfg = load_config(p)
        assert cfg.study.augmentations in ("set1", "set2") or isinstance(cfg.study.augmentations, list)


def test_paper_sobol_sample_sizes():
    cfg = load_config(next(p for p in PRESETS if p.name == "alexnet-set1-exp1.3.toml"))
    assert (cfg.study.kind, cfg.study.n, cfg.study.second_order, cfg.study.mode) == (
        "sobol",
        131072,
        True,
        "paper",
    )
    song = load_config(next(p for p in PRESETS if p.name == "vgg11-set2-exp1.5.toml")).study
    assert (song.song_permutations, song.song_outer, song.song_inner) == (128, 32, 8)
