"""Configs in the encodings editors save, keys a study kind does not read, and suggestions that are
valid values."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from augsens.config import ConfigError, StudyConfig, load_config

TEXT = '# café crème\n[study]\nkind = "sobol"\nn = 8\nreplicates = 2\n'


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: t.encode("utf-16"),  # with its byte-order mark, as Windows editors save "Unicode"
        lambda t: t.encode("utf-32"),
        lambda t: t.encode("utf-8"),
    ],
    ids=["utf-8 with BOM", "utf-16", "utf-32", "utf-8"],
)
def test_unicode_configs_with_or_without_a_byte_order_mark_are_read(tmp_path: Path, encode) -> None:
    (tmp_path / "c.toml").write_bytes(encode(TEXT))
    cfg = load_config(tmp_path / "c.toml")
    assert (cfg.study.n, cfg.study.replicates) == (8, 2)


def test_a_latin_1_config_is_refused_saying_which_encoding(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_bytes(TEXT.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"c.toml: not a UTF-8 .*0xe9 at line 1, column 6.*Latin-1.*iconv"):
        load_config(tmp_path / "c.toml")


def _study(**keys) -> StudyConfig:
    return StudyConfig.from_dict({"study": keys}, source="c.toml")


@pytest.mark.parametrize(
    "key, value", [("n", 16), ("replicates", 2), ("design", "iid"), ("second_order", True)]
)
def test_shapley_song_refuses_the_keys_it_does_not_read(key: str, value) -> None:
    with pytest.raises(ConfigError, match=rf"\[study\] {key} = .* does not apply to kind = 'shapley-song'"):
        _study(kind="shapley-song", **{key: value})
    _study(kind="shapley-song", song_permutations=2)  # its own keys are fine


def test_song_keys_are_refused_by_the_other_kinds() -> None:
    with pytest.raises(ConfigError, match=r"song_outer = 2 does not apply to kind = 'sobol'.*'shapley-song'"):
        _study(kind="sobol", song_outer=2)


def _powers_suggested(message: str) -> list[int]:
    import re

    return [int(v) for v in re.findall(r"replicates = (\d+)", message.split("use", 1)[1].split(", or n")[0])]


@pytest.mark.parametrize(
    "n, replicates, design", [(64, 3, "sobol"), (8, 3, "sobol"), (1024, 5, "sobol"), (64, 3, "sobol-lms")]
)
def test_suggested_replicates_and_n_pass_validation(n: int, replicates: int, design: str) -> None:
    with pytest.raises(ConfigError, match="divisor") as info:
        _study(n=n, replicates=replicates, design=design)
    message = str(info.value)
    suggested = _powers_suggested(message)
    assert suggested and all(r != replicates for r in suggested)
    for r in suggested:
        _study(n=n, replicates=r, design=design)  # every suggested value is valid
    import re

    for m in re.findall(r"n = (\d+) with", message):
        _study(n=int(m), replicates=replicates, design=design)
    if design == "sobol":
        assert "n = " not in message.split("use", 1)[1]  # n must stay a power of 2: no other n offered
