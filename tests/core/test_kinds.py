"""The study-kind registry (``augsens.core.kinds.KINDS``): every reader of a kind takes it from there."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from augsens.config import STUDY_KINDS, ConfigError, StudyConfig
from augsens.core.kinds import KINDS, SENSITIVITY_KEYS, foreign_keys, kinds_where


def _section_keys(section: str) -> set[str]:
    return {f.name for f in dataclasses.fields(type(getattr(StudyConfig(), section)))}


def test_the_config_kinds_are_the_registry_and_every_key_a_kind_reads_is_a_config_key():
    assert STUDY_KINDS == tuple(KINDS)
    for k in KINDS.values():
        for section, keys in k.reads.items():
            assert set(keys) <= _section_keys(section), (k.name, section)


def test_every_method_of_a_kind_is_registered_and_its_options_are_keys_the_kind_reads():
    from augsens.core.methods import METHODS

    for k in kinds_where(sensitivity=True):
        for name in KINDS[k].methods.values():
            assert METHODS[name].name == name
            assert set(METHODS[name].options.values()) <= set(KINDS[k].reads["study"]), name
    # every registered method is a kind's; the contrast kind's method is built by its study
    named = {m for k in KINDS.values() for m in k.methods.values()}
    assert set(METHODS) <= named
    from augsens.core.methods.contrast import Contrast

    assert KINDS["contrast"].method() == Contrast.name and not Contrast.sensitivity


def test_flags_select_the_kinds_that_have_them():
    assert kinds_where(rounds=True) == ("sobol", "shapley")
    assert kinds_where(sensitivity=False) == ("contrast",)
    assert kinds_where(shards=False) == ("contrast",)
    assert "n" not in KINDS["shapley-song"].reads["study"] and "n" in KINDS["morris"].reads["study"]
    assert not set(SENSITIVITY_KEYS["run"]) & set(KINDS["contrast"].reads.get("run", ()))


@pytest.mark.parametrize("name", list(KINDS))
def test_a_key_only_another_kind_reads_is_refused_naming_its_readers(name):
    foreign = foreign_keys(name, "study")
    assert foreign, name  # every kind leaves some other kind's key unread
    key, readers = next(iter(foreign.items()))
    value = _non_default(key)
    with pytest.raises(ConfigError, match=rf"\[study\] {key} = .* does not apply to kind = '{name}'") as info:
        StudyConfig.from_dict({"study": {"kind": name, key: value}})
    if not KINDS[name].unread:
        assert f"read only by kind = {readers[0]!r}" in str(info.value)
    # the same key is accepted by a kind that reads it
    StudyConfig.from_dict({"study": {"kind": readers[0], key: value, **_valid_with(readers[0], key)}})


def _non_default(key: str):
    default = getattr(StudyConfig().study, key)
    choices = {
        "design": "iid",
        "sobol_method": "janon_2014",
        "shapley_method": "permutation",
        "pairing": "image",
        "switches": "all",
    }
    if key in choices:
        return choices[key]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default * 2 if key != "n" else 2 * default
    if isinstance(default, float):
        return 0.5 if key == "switch_p" else default + 1.0
    raise AssertionError(key)  # pragma: no cover - a new key type needs a value here


def _valid_with(kind: str, key: str) -> dict:
    """Other keys a config needs for ``key`` to be valid under ``kind``."""
    extra: dict = {}
    if key in ("max_n", "time_limit"):
        extra["precision"] = 0.02
    if key == "swap_effect_names":
        extra["mode"] = "paper"
    if key == "design" or (key == "n" and KINDS[kind].sized):
        extra["replicates"] = 1
    return extra


def test_augsens_info_lists_every_kind_with_its_summary():
    from augsens.cli import app

    res = CliRunner().invoke(app, ["info"])
    assert res.exit_code == 0, res.output
    for k in KINDS.values():
        assert f"{k.name}: {k.summary}" in " ".join(res.output.split())


def test_every_list_of_kinds_in_the_docs_names_the_registry():
    """The commented ``kind = "sobol"  # a | b | ...`` lines of the config reference, the README and the
    shipped example config list the kinds of the registry, in its order."""
    from pathlib import Path

    import augsens.config

    root = Path(__file__).parents[2]
    texts = {
        "augsens.config": augsens.config.__doc__ or "",
        "README.md": (root / "README.md").read_text(encoding="utf-8"),
        "configs/study.toml": (root / "configs" / "study.toml").read_text(encoding="utf-8"),
    }
    for where, text in texts.items():
        lines = [
            line for line in text.splitlines() if line.strip().startswith('kind = "sobol"') and "|" in line
        ]
        assert lines, where
        for line in lines:
            assert [k.strip() for k in line.split("#", 1)[1].split("|")] == list(KINDS), where
