"""ag.study: every config key as a keyword, in-memory and on-disk results alike, clear input errors."""

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import augsens as ag
from augsens.config import ConfigError, StudyConfig, load_config
from augsens.engine.quick import _config, config_keywords
from augsens.errors import UserInputError
from augsens.results import open_results

TINY = dict(
    augmentations=["hflip", "grayscale"],
    n=8,
    replicates=2,
    device="cpu",
    progress=False,
)


def _changed(value, hint):
    """A valid value of the key's type that differs from its default (the schema walk below)."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return next(v for v in typing.get_args(hint) if v != value)
    if hint is bool:
        return not value
    if hint is int:
        return 2 * value if value else 1
    if hint is float:
        return value / 2 if value else 0.25
    if hint is str:
        return "cpu" if value == "auto" else "random" if value == "default" else "x.json"
    if origin is list:
        (item,) = typing.get_args(hint)
        return [0.5, 0.5, 0.5] if item is float else ["hflip"]
    return ["hflip", "hue"]  # str | list[str]: the augmentation list


def _schema():
    for section in dataclasses.fields(StudyConfig):
        cls = typing.get_type_hints(StudyConfig)[section.name]
        if not dataclasses.is_dataclass(cls):  # [augment]: free-form tables, the ranges= argument
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if (section.name, f.name) not in (("model", "name"), ("images", "source")):
                yield section.name, f.name, getattr(cls(), f.name), hints[f.name]


def _toml(value):
    return tomllib.loads(f"v = {value!r}".replace("True", "true").replace("False", "false"))["v"]


def test_every_config_key_is_a_keyword_and_vice_versa(tmp_path):
    keywords = config_keywords()
    walked = set()
    for section, key, default, hint in _schema():
        walked.add((section, key))
        value = _changed(default, hint)
        names = [f"{section}_{key}"] + ([key] if keywords.get(key) == (section, key) else [])
        # the TOML path: the same value in a config file
        cfg_file = tmp_path / f"{section}-{key}.toml"
        head = "" if section == "model" else '[model]\nname = "m"\n'
        model = 'name = "m"\n' if section == "model" else ""
        line = f"{key} = {value!r}".replace("True", "true").replace("False", "false")
        cfg_file.write_text(f"{head}[{section}]\n{model}{line}\n")
        try:
            expected = load_config(cfg_file)
            failure = None
        except ConfigError as exc:
            expected, failure = None, str(exc).split(": ", 1)[1]
        for name in names:
            if failure is None:
                got = _config("m", "bundled", {name: value})
                assert getattr(getattr(got, section), key) == _toml(value), name
                assert got == expected, name
            else:  # a value the cross-field checks refuse: the same message both ways
                with pytest.raises(ConfigError) as info:
                    _config("m", "bundled", {name: value})
                assert str(info.value).split(": ", 1)[1] == failure, name
    # vice versa: every keyword names a key of the schema, and every key was reachable
    assert set(keywords.values()) == walked
    assert keywords["seed"] == ("study", "seed") and keywords["images_seed"] == ("images", "seed")


def test_keyword_errors_match_the_config_messages():
    with pytest.raises(ConfigError, match=r"n = 100 is not a power of 2.*use n = 64 or 128"):
        ag.study("augsens.testing:tiny_cnn", torch.rand(2, 3, 224, 224), **{**TINY, "n": 100})
    with pytest.raises(ConfigError, match=r"unknown option 'replicate'\. Did you mean 'replicates'\?"):
        ag.study("augsens.testing:tiny_cnn", "bundled", replicate=2)
    with pytest.raises(ConfigError, match=r"kind = 'sobel' is not allowed; choose one of"):
        ag.study("augsens.testing:tiny_cnn", "bundled", kind="sobel")
    with pytest.raises(ConfigError, match="pass the model as the 'model' argument"):
        ag.study("augsens.testing:tiny_cnn", "bundled", name="resnet18")


def _schema_of(tree):
    nodes = {
        name: (sorted(node.dataset.data_vars), dict(node.dataset.sizes), sorted(node.dataset.coords))
        for name, node in tree.children.items()
    }
    return list(tree.children), nodes, sorted(tree.attrs)


def test_in_memory_and_written_results_are_the_same(tmp_path):
    images = torch.randint(0, 256, (3, 3, 224, 224), dtype=torch.uint8)
    kw = dict(TINY, checkpoints=["act", "fc"])
    memory = ag.study("augsens.testing:tiny_cnn", images, **kw)
    disk = ag.study("augsens.testing:tiny_cnn", images, out=tmp_path / "r", **kw)
    again = open_results(tmp_path / "r")
    assert _schema_of(memory) == _schema_of(disk) == _schema_of(again)
    np.testing.assert_allclose(memory["act"].dataset["ST"].values, again["act"].dataset["ST"].values)
    assert memory.attrs["images"] == 3 and "<Tensor [3, 3, 224, 224]>" in memory.attrs["config"]
    assert ag.study is not None and callable(ag.study)  # the function, not a module of that name


class _Block(nn.Module):
    def __init__(self, dict_out: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 8, stride=8)
        self.dict_out = dict_out

    def forward(self, x):
        y = self.conv(x)
        return {"out": y, "aux": y.mean()} if self.dict_out else (y, y.mean())


class _Net(nn.Module):
    """A network whose blocks return a dict and a tuple, as detection and attention blocks do."""

    def __init__(self):
        super().__init__()
        self.encoder = _Block(dict_out=True)
        self.pair = _Block(dict_out=False)
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        a = self.encoder(x)["out"]
        b = self.pair(x)[0]
        return self.pool(a + b).flatten(1)


def test_checkpoints_that_return_a_dict_or_tuple():
    images = torch.rand(2, 3, 224, 224)
    with pytest.raises(TypeError, match=r"module 'encoder' returns dict with keys \{'out': Tensor"):
        ag.study(_Net(), images, checkpoints=["encoder", "pool"], **TINY)
    with pytest.raises(UserInputError, match=r"e\.g\. checkpoint \"encoder\['out'\]\""):
        ag.study(_Net(), images, checkpoints=["encoder"], **TINY)
    tree = ag.study(_Net(), images, checkpoints=["encoder['out']", "pair[0]", "pool"], **TINY)
    assert list(tree.children) == ["encoder['out']", "pair[0]", "pool"]
    assert tree["encoder['out']"].dataset["ST"].dims == ("factor", "channel", "y", "x")
    with pytest.raises(
        ValueError, match=r"'pair' returns tuple of 2 .*, which has no element 5; name an existing"
    ):
        ag.study(_Net(), images, checkpoints=["pair[5]"], **TINY)
    with pytest.raises(UserInputError, match=r"'pool' returns one tensor, so there is no element to name"):
        ag.study(_Net(), images, checkpoints=["pool[0]"], **TINY)


def test_unknown_checkpoint_names_the_fix():
    with pytest.raises(KeyError, match=r"no module named 'ac'.*Close matches: \['act'.*m\.module_names"):
        ag.study("augsens.testing:tiny_cnn", torch.rand(2, 3, 224, 224), checkpoints=["ac"], **TINY)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (
            torch.rand(2, 224, 224, 3),
            r"got \[2, 224, 224, 3\]: move channels to dim 1 with x\.permute\(0, 3, 1, 2\)",
        ),
        (torch.rand(3, 224, 224), r"add the batch dim with x\.unsqueeze\(0\)"),
        (
            torch.zeros(2, 3, 224, 224, dtype=torch.int64),
            r"dtype torch\.int64: give uint8 images .*x\.float\(\) / 255",
        ),
        (torch.rand(2, 3, 224, 224) * 2 - 1, r"must lie in \[0, 1\].*un-normalised"),
        ([], "empty list"),
    ],
)
def test_wrong_images_name_the_fix(images, message):
    with pytest.raises(UserInputError, match=message):
        ag.study("augsens.testing:tiny_cnn", images, **TINY)


def test_empty_folder_names_the_fix(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match=r"holds no image files .*put images in it .*images='bundled'"):
        ag.study("augsens.testing:tiny_cnn", tmp_path, **TINY)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ag.study("augsens.testing:tiny_cnn", tmp_path / "nope", **TINY)


def test_model_of_wrong_type():
    with pytest.raises(ValueError, match="model of type int is not supported"):
        ag.study(3, "bundled", **TINY)


def test_resume_auto_continues_a_saved_run(tmp_path):
    from augsens.config import StudyConfig as Cfg
    from augsens.engine.study import Study

    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    out = tmp_path / "r"
    full = ag.study("augsens.testing:tiny_cnn", images, checkpoints=["fc"], **TINY)
    # stop a run half way (state saved), then ag.study on the same folder finishes it
    cfg = _config(
        "augsens.testing:tiny_cnn",
        "<Tensor [2, 3, 224, 224]>",
        dict(augmentations=["hflip", "grayscale"], n=8, replicates=2, device="cpu", checkpoints=["fc"]),
    )
    from augsens.data.inputs import as_image_cache

    Study(cfg, images=as_image_cache(images), progress=False).run(out, stop_after=4)
    assert (out / "state" / "state.pt").is_file()
    resumed = ag.study("augsens.testing:tiny_cnn", images, out=out, checkpoints=["fc"], **TINY)
    np.testing.assert_allclose(resumed["fc"].dataset["ST"].values, full["fc"].dataset["ST"].values)
    assert isinstance(cfg, Cfg) and not (out / "state").exists()


def test_images_as_paths_pil_numpy_and_dataset(tmp_path):
    from PIL import Image

    from augsens.data.inputs import as_image_cache

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    flat = as_image_cache(tmp_path)
    from_paths = as_image_cache(sorted(tmp_path.glob("*.png")))
    from_pil = as_image_cache([Image.fromarray(a) for a in arrays])
    assert flat.classes == ["images"] and len(flat) == 3 and flat.names == ["0.png", "1.png", "2.png"]
    assert torch.equal(flat.images, from_paths.images) and torch.equal(flat.images, from_pil.images)
    nhwc = as_image_cache(np.stack([a[:224, :224] for a in arrays]))  # numpy's [N, H, W, 3]
    assert torch.equal(nhwc.images[1], torch.from_numpy(arrays[1][:224, :224]).permute(2, 0, 1))

    class Labelled(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.full((3, 224, 224), i / 10), torch.tensor([1, 0, 1, 0][i])

    cache = as_image_cache(Labelled())
    assert cache.classes == ["0", "1"] and cache.class_sizes == [2, 2]
    assert cache.names == ["1", "3", "0", "2"]  # sorted class by class, input order within a class
    assert int(cache.images[0, 0, 0, 0]) == round(0.1 * 255)


def test_folder_of_class_folders_reads_like_a_config_source(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        Image.new("RGB", (256, 256), (10, 20, 30)).save(tmp_path / c / "a.png")
    tree = ag.study("augsens.testing:tiny_cnn", tmp_path, checkpoints=["fc"], **TINY)
    assert tree.attrs["images"] == 2
    assert re.search(r'"source": "[^"]*' + re.escape(Path(tmp_path).name), tree.attrs["config"])
