"""Fuzzed configs and study keywords: one clear ConfigError or a config that holds exactly what was given.

The contract of every input path is the same: a mistake is a :class:`~augsens.errors.UserInputError` with a
one-line message (the command line prints it and exits 2), never another exception, a hang or a value
silently changed."""

from __future__ import annotations

import codecs
import dataclasses
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from augsens.config import ConfigError, StudyConfig, load_config
from augsens.engine.quick import _config, config_keywords  # imported here: torch loads once, not in a test
from augsens.errors import UserInputError

# the typed sections (the free-form [augment] table of ranges has keys of the user's choosing)
SECTIONS = {
    f.name: f.type
    for f in dataclasses.fields(StudyConfig)
    if dataclasses.is_dataclass(getattr(StudyConfig(), f.name))
}
KEYS = {name: [f.name for f in dataclasses.fields(type(getattr(StudyConfig(), name)))] for name in SECTIONS}

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["sobol", "shapley", "shapley-song", "moments", "contrast", "iid", "sobel", "set1", "cpu"]
    ),
)
values = st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3))


@st.composite
def raw_configs(draw) -> dict:
    """Nested dicts: mostly real sections and keys, some misspelt, with values of any TOML type."""
    data: dict = {}
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "studdy", "Run"]), max_size=4, unique=True)):
        keys = KEYS.get(section, ["n"]) + ["batchsize", "N"]
        data[section] = draw(st.dictionaries(st.sampled_from(keys), values, max_size=4))
    return data


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


@given(raw_configs())
def test_any_config_is_refused_in_one_line_or_holds_what_was_given(data: dict) -> None:
    try:
        cfg = StudyConfig.from_dict(data, source="c.toml")
    except ConfigError as exc:
        _one_line(exc)
        assert str(exc).startswith("c.toml")
        return
    for section, keys in data.items():
        for key, value in keys.items():
            got = getattr(getattr(cfg, section), key)
            # ints are widened to float where the key is a number; nothing else changes
            assert got == value or (isinstance(value, int) and got == float(value)), (section, key)
    assert StudyConfig.from_dict(cfg.to_dict()) == cfg  # what a results folder records reloads the same


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252", "utf-16-le"]


@given(st.text(max_size=40), st.sampled_from(ENCODINGS), st.booleans())
def test_any_bytes_in_any_encoding_are_read_or_refused_saying_why(
    tmp_path_factory, comment: str, encoding: str, bom: bool
) -> None:
    text = f"# {comment!r}\n[study]\nn = 8\nreplicates = 2\n"
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        return
    if bom and encoding == "utf-8":
        raw = codecs.BOM_UTF8 + raw
    path = Path(tmp_path_factory.mktemp("cfg")) / "c.toml"
    path.write_bytes(raw)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        _one_line(exc)
        assert "UTF-8" in str(exc) or "TOML" in str(exc)
        return
    assert (cfg.study.n, cfg.study.replicates) == (8, 2)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "n",
                "replicates",
                "seed",
                "design",
                "batch_size",
                "second_order",
                "state_dtype",
                "song_inner",
                "per_class",
                "mode",
                "kind",
                "replicate",
                "samples",
            ]
        ),
        values,
        max_size=4,
    )
)
def test_study_keywords_are_refused_in_one_line_or_reach_the_config(options: dict) -> None:
    try:
        cfg = _config("augsens.testing:tiny_cnn", "bundled", options)
    except UserInputError as exc:
        _one_line(exc)
        return
    keywords = config_keywords()
    for key, value in options.items():
        section, name = keywords[key]
        got = getattr(getattr(cfg, section), name)
        assert got == value or (isinstance(value, int) and got == float(value)), key
