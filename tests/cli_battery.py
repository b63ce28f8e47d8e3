"""The command line under bad input and faults: every case a new user might meet, as data.

Each :class:`Case` prepares files in a fresh folder, runs one ``augsens`` command and states what a good
answer is: the exit code, words the message must contain, and a check of what is left on disk.  The same
table drives ``tests/cli/test_cli_faults.py`` (one test per case) and ``benchmarks/cli_faults.py`` (runs the
whole table and counts the answers: clear / correct / traceback / unclear / wrong).

Signal cases run the command in a real subprocess (``tests/cli_signal_driver.py``) that sends itself
SIGTERM or SIGINT at a chosen phase of the run: startup, mid-study, finalisation, writing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

TINY = """
[model]
name = "augsens.testing:tiny_cnn"
checkpoints = ["conv", "fc"]
weights = "{weights}"
[images]
source = "{source}"
strict = {strict}
[study]
kind = "sobol"
augmentations = ["hflip", "grayscale"]
n = {n}
replicates = 2
[run]
batch_size = 24
device = "cpu"
"""


def tiny_config(
    d: Path,
    name: str = "c.toml",
    *,
    weights: str = "default",
    source: str = "bundled",
    strict: bool = False,
    n: int = 8,
    extra: str = "",
) -> Path:
    """A tiny study config (tiny_cnn, two fast augmentations, n base samples) written to ``d/name``."""
    path = d / name
    text = TINY.format(weights=weights, source=source, strict=str(strict).lower(), n=n)
    path.write_text(text + extra)
    return path


def image_folder(d: Path, classes: int = 2, per_class: int = 2, seed: int = 0) -> Path:
    """``d/imgs/<class>/<i>.png``: small random RGB images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = d / "imgs"
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / f"c{c}" / f"{i}.png")
    return root


def partial_run(cfg: Path, out: Path, stop_after: int = 4) -> None:
    """Leave an unfinished run (a saved state) in ``out``."""
    from augsens.config import load_config
    from augsens.engine.study import Study

    Study(load_config(cfg), progress=False).run(out, stop_after=stop_after)


def full_run(cfg: Path, out: Path) -> None:
    from augsens.config import load_config
    from augsens.engine.study import Study

    Study(load_config(cfg), progress=False).run(out)


@dataclass
class Case:
    """One bad input or fault.

    ``setup(d)`` prepares files in the folder ``d`` and returns the command's arguments.  A good answer
    exits with ``code`` (0: the command must succeed), shows every word of ``words`` (case-insensitive)
    and no traceback, and passes ``check(d, output)`` (what is left on disk).  ``during(d)``, when given,
    is a context active while the command runs: another process holding the folder, a disk simulated full.
    """

    name: str
    setup: Callable[[Path], list[str]]
    code: int = 2
    words: tuple[str, ...] = ()
    check: Callable[[Path, str], bool] | None = None
    signal: str | None = None  # "PHASE:SIGNAL" runs in a subprocess that signals itself at PHASE
    slow: bool = False
    during: Callable[[Path], contextlib.AbstractContextManager[None]] | None = None  # active while it runs
    notes: dict[str, Any] = field(default_factory=dict)


def _run(d: Path, cfg: Path, *more: str) -> list[str]:
    return ["run", str(cfg), "--out", str(d / "out"), "-q", "--no-report", *more]


def _no_output(d: Path, _: str) -> bool:
    """Nothing was left in the output folder (it may exist, empty)."""
    out = d / "out"
    return not out.exists() or (out.is_dir() and not any(out.iterdir()))


def _config(text: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        (d / "c.toml").write_text(text)
        return _run(d, d / "c.toml")

    return setup


def _tiny(*more: str, **kw: Any) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        return _run(d, tiny_config(d, **kw), *more)

    return setup


def _tiny_extra(extra: str, *more: str) -> Callable[[Path], list[str]]:
    return _tiny(*more, extra=extra)


def _model(name: str, checkpoints: str = "") -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        cfg = tiny_config(d)
        text = cfg.read_text().replace('"augsens.testing:tiny_cnn"', repr(name).replace("'", '"'))
        if checkpoints:
            text = text.replace('checkpoints = ["conv", "fc"]', f"checkpoints = {checkpoints}")
        cfg.write_text(text)
        return _run(d, cfg)

    return setup


USER_MODELS = """
from torch import nn


def gray():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())


def broken():
    raise RuntimeError("weights server unreachable")
"""


def _user_model(factory: str) -> Callable[[Path], list[str]]:
    """A model factory from a module written into the case folder (put on ``sys.path``)."""

    def setup(d: Path) -> list[str]:
        return _model(_user_factory(d, factory), '["0", "1"]')(d)

    return setup


def _user_factory(d: Path, factory: str) -> str:
    module = f"user_models_{abs(hash(str(d)))}"
    (d / f"{module}.py").write_text(USER_MODELS)
    sys.path.insert(0, str(d))
    return f"{module}:{factory}"


def _weights(make: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        make(d / "w.pt")
        return _run(d, tiny_config(d, weights=str(d / "w.pt")))

    return setup


def _torch_save(obj_fn: Callable[[], Any]) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        import torch

        torch.save(obj_fn(), p)

    return make


def _truncated_weights(p: Path) -> None:
    import torch

    from augsens.testing import tiny_cnn

    torch.save(tiny_cnn().state_dict(), p)
    p.write_bytes(p.read_bytes()[:200])


def _images(make: Callable[[Path], Path | str], *, strict: bool = False, more: tuple[str, ...] = ()):
    def setup(d: Path) -> list[str]:
        return _run(d, tiny_config(d, source=str(make(d)), strict=strict), *more)

    return setup


def _corrupt_one(d: Path) -> Path:
    root = image_folder(d)
    (root / "c0" / "0.png").write_bytes(b"not a png at all")
    return root


def _corrupt_class(d: Path) -> Path:
    root = image_folder(d)
    for f in (root / "c1").iterdir():
        f.write_bytes(b"\x89PNG garbage")
    return root


def _empty_classes(d: Path) -> Path:
    root = d / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "b" / "notes.txt").write_text("x")
    return root


def _skipped_one(d: Path, output: str) -> bool:
    from augsens.results import open_results

    return open_results(d / "out").attrs["skipped_images"] == 1


# ------------------------------------------------------------------ out folder
def _out_is_file(d: Path) -> list[str]:
    (d / "out").write_text("a file, not a folder")
    return _run(d, tiny_config(d))


def _out_through_file(d: Path) -> list[str]:
    (d / "f").write_text("x")
    return ["run", str(tiny_config(d)), "--out", str(d / "f" / "sub"), "-q", "--no-report"]


def _out_unwritable(d: Path) -> list[str]:
    return ["run", str(tiny_config(d)), "--out", "/proc/augsens-out", "-q", "--no-report"]


def _other_results(d: Path) -> list[str]:
    full_run(tiny_config(d, "first.toml"), d / "out")
    return _run(d, tiny_config(d, n=16))


def _other_results_overwrite(d: Path) -> list[str]:
    return [*_other_results(d), "--overwrite"]


def _n_is(n: int) -> Callable[[Path, str], bool]:
    def check(d: Path, _: str) -> bool:
        from augsens.results import open_results

        return open_results(d / "out").attrs["n"] == n

    return check


def _first_kept(d: Path, _: str) -> bool:
    return _n_is(8)(d, _)


def _unfinished(d: Path) -> list[str]:
    partial_run(tiny_config(d, n=16), d / "out")
    return _run(d, tiny_config(d, n=16))


def _state_kept(d: Path, _: str) -> bool:
    return (d / "out" / "state" / "state.pt").is_file()


def _resume_empty(d: Path) -> list[str]:
    return _run(d, tiny_config(d), "--resume")


def _resume_finished(d: Path) -> list[str]:
    full_run(tiny_config(d), d / "out")
    return _run(d, tiny_config(d), "--resume")


def _resume_changed_config(d: Path) -> list[str]:
    partial_run(tiny_config(d, n=16), d / "out")
    cfg = tiny_config(d, n=16)
    cfg.write_text(cfg.read_text().replace('"grayscale"', '"hue"'))
    return _run(d, cfg, "--resume")


def _resume_changed_images(d: Path) -> list[str]:
    root = image_folder(d)
    cfg = tiny_config(d, source=str(root), n=16)
    partial_run(cfg, d / "out")
    image_folder(d, per_class=3, seed=1)  # two images added, the others rewritten
    return _run(d, cfg, "--resume")


def _resume_changed_weights(d: Path) -> list[str]:
    import torch

    from augsens.testing import tiny_cnn

    sd = tiny_cnn().state_dict()
    torch.save(sd, d / "w.pt")
    cfg = tiny_config(d, weights=str(d / "w.pt"), n=16)
    partial_run(cfg, d / "out")
    torch.save({k: v + 1 for k, v in sd.items()}, d / "w.pt")
    return _run(d, cfg, "--resume")


def _resume_state(content: Callable[[bytes], bytes]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        cfg = tiny_config(d, n=16)
        partial_run(cfg, d / "out")
        state = d / "out" / "state" / "state.pt"
        state.write_bytes(content(state.read_bytes()))
        return _run(d, cfg, "--resume")

    return setup


# ------------------------------------------------------------------ report, gallery, others
def _report_on(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        return ["report", str(make(d))]

    return setup


def _no_zmetadata(d: Path) -> Path:
    full_run(tiny_config(d), d / "res")
    (d / "res" / "results.zarr" / ".zmetadata").unlink()
    return d / "res"


def _gallery_on(make: Callable[[Path], Path], *more: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        return ["gallery", str(make(d)), "--out", str(d / "g.png"), *more]

    return setup


def _text_file(d: Path) -> Path:
    (d / "notes.jpg").write_text("just some text")
    return d / "notes.jpg"


def _truncated_jpeg(d: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(d / "x.jpg")
    (d / "x.jpg").write_bytes((d / "x.jpg").read_bytes()[:60])
    return d / "x.jpg"


def _a_photo(d: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(d / "p.png")
    return d / "p.png"


def _no_gallery(d: Path, _: str) -> bool:
    return not (d / "g.png").exists()


CASES: list[Case] = [
    # --------------------------------------------------------- config
    Case("config missing", lambda d: _run(d, d / "none.toml"), words=("none.toml", "does not exist")),
    Case("config is a folder", lambda d: _run(d, d), words=("is a folder",)),
    Case("config not TOML", _config("[study\nn = 4"), words=("c.toml", "not valid TOML")),
    Case("unknown section", _config("[studdy]\nn = 4\n"), words=("'studdy'", "'study'")),
    Case(
        "unknown key keeps its section",
        _config("[run]\nbatchsize = 4\n"),
        words=("[run]", "'batchsize'", "'batch_size'"),
    ),
    Case("wrong type", _config('[study]\nn = "big"\n'), words=("[study]", "n must be an integer", "'big'")),
    Case("n not a power of 2", _config("[study]\nn = 1000\n"), words=("[study] n = 1000", "512 or 1024")),
    Case(
        "replicates not a divisor",
        _config("[study]\nn = 8\nreplicates = 3\n"),
        words=("[study] replicates = 3", "divisor"),
    ),
    Case("unknown kind", _config('[study]\nkind = "sobel"\n'), words=("[study] kind", "'sobel'", "'sobol'")),
    Case(
        "unknown augmentation",
        _tiny("--set", 'study.augmentations=["hue", "rotaton"]'),
        words=("'rotaton'", "'rotation'"),
    ),
    Case(
        "augmentations without list syntax",
        _tiny("--set", "study.augmentations=hue,rotation"),
        words=("study.augmentations", '["hue", "rotation"]'),
    ),
    Case("--set without a section", _tiny("--set", "n=16"), words=("SECTION.KEY=VALUE",)),
    Case("--set unknown key", _tiny("--set", "study.samples=16"), words=("'samples'",)),
    Case("device name wrong", _tiny("--set", 'run.device="gpu"'), words=("[run] device", "'gpu'", "'cpu'")),
    Case("no CUDA", _tiny("--set", 'run.device="cuda"'), words=("[run] device", "cuda", "no CUDA")),
    Case("batch size 0", _tiny("--set", "run.batch_size=0"), words=("[run] batch_size", "positive")),
    Case(
        "checkpoint_every negative",
        _tiny("--set", "run.checkpoint_every=-1"),
        words=("[run] checkpoint_every",),
    ),
    Case("switch_p out of range", _tiny("--set", "study.switch_p=2.0"), words=("[study] switch_p", "[0, 1]")),
    Case("--resume with --ray", _tiny("--resume", "--ray", "local"), words=("--resume", "--ray")),
    # --------------------------------------------------------- model
    Case("unknown model", _model("resnet19"), words=("'resnet19'", "resnet18")),
    Case("factory module missing", _model("nosuchpkg.mod:make"), words=("'nosuchpkg.mod'", "installed")),
    Case("factory attribute missing", _model("augsens.testing:tiny_cn"), words=("tiny_cn", "no attribute")),
    Case("factory not callable", _model("augsens.testing:__all__"), words=("not callable",)),
    Case(
        "factory returns no module",
        _model("augsens.testing:__doc__.strip"),
        words=("augsens.testing:__doc__.strip", "not a torch.nn.Module"),
    ),
    Case("factory raises", _user_model("broken"), words=("user_models_", ":broken", "raised", "unreachable")),
    Case("model rejects the input", _user_model("gray"), words=(":gray", "(1, 3, 224, 224)", "channels")),
    Case(
        "unknown checkpoint",
        _model("augsens.testing:tiny_cnn", '["conv", "fcc"]'),
        words=("'fcc'", "'fc'", "conv, act, pool, flat, fc"),
    ),
    Case("segments file missing", _tiny_extra(""), words=()),  # replaced below
    Case(
        "weights file missing",
        lambda d: _run(d, tiny_config(d, weights=str(d / "none.pt"))),
        words=("none.pt", "not found"),
    ),
    Case(
        "weights file is text",
        _weights(lambda p: p.write_text("hello, I am not a state dict\n")),
        words=("w.pt", "state dict"),
    ),
    Case("weights file truncated", _weights(_truncated_weights), words=("w.pt", "state dict")),
    Case(
        "weights file holds a list",
        _weights(_torch_save(lambda: [1, 2, 3])),
        words=("w.pt", "not a state dict"),
    ),
    Case(
        "weights of another network",
        _weights(_torch_save(lambda: {"features.0.weight": __import__("torch").zeros(2)})),
        words=("w.pt", "do not fit"),
    ),
    Case(
        "weights name unknown",
        lambda d: _run(d, tiny_config(d, weights="imagenett")),
        words=("'imagenett'", "'default'"),
    ),
    # --------------------------------------------------------- images
    Case(
        "image folder missing",
        lambda d: _run(d, tiny_config(d, source=str(d / "nope"))),
        words=("nope", "does not exist"),
        check=_no_output,
    ),
    Case("image folder is a file", _images(lambda d: _text_file(d)), words=("notes.jpg", "not a folder")),
    Case(
        "image folder without class folders",
        _images(lambda d: (d / "flat").mkdir() or d / "flat"),
        words=("no class folders",),
    ),
    Case("class folders without images", _images(_empty_classes), words=("hold no image files", "'a'")),
    Case(
        "corrupt image, strict", _images(_corrupt_one, strict=True), words=("0.png", "unreadable", "strict")
    ),
    Case("corrupt image skipped and counted", _images(_corrupt_one), code=0, check=_skipped_one),
    Case("every image of a class corrupt", _images(_corrupt_class), words=("'c1'", "unreadable")),
    Case(
        "partition2 with bundled",
        _tiny("--set", 'images.partition2="x"'),
        words=("[images] partition2", "bundled"),
    ),
    Case(
        "partition2 missing",
        _images(lambda d: image_folder(d), more=("--set", 'images.partition2="/nope"')),
        words=("/nope", "does not exist"),
    ),
    # --------------------------------------------------------- output folder
    Case("--out is a file", _out_is_file, words=("out", "is a file")),
    Case("--out passes through a file", _out_through_file, words=("f", "not a folder")),
    Case("--out not writable", _out_unwritable, words=("/proc/augsens-out", "cannot")),
    Case("--out holds other results", _other_results, words=("results", "--overwrite"), check=_first_kept),
    Case("--out other results, --overwrite", _other_results_overwrite, code=0, check=_n_is(16)),
    Case("--out holds an unfinished run", _unfinished, words=("unfinished", "--resume"), check=_state_kept),
    Case(
        "--resume with --overwrite",
        _tiny("--resume", "--overwrite"),
        words=("--resume", "--overwrite", "not both"),
    ),
    Case("--resume without state", _resume_empty, words=("--resume", "no saved state")),
    Case("--resume on a finished run", _resume_finished, words=("finished",), check=_first_kept),
    Case(
        "--resume after a config change",
        _resume_changed_config,
        words=("study.augmentations", "changed"),
        check=_state_kept,
    ),
    Case(
        "--resume after images changed",
        _resume_changed_images,
        words=("image", "added", "c0/2.png"),
        check=_state_kept,
    ),
    Case(
        "--resume after weights changed",
        _resume_changed_weights,
        words=("weights", "changed"),
        check=_state_kept,
    ),
    Case(
        "--resume with a garbage state",
        _resume_state(lambda b: b"garbage" * 10),
        words=("state.pt", "--overwrite"),
    ),
    Case(
        "--resume with a truncated state",
        _resume_state(lambda b: b[: len(b) // 2]),
        words=("state.pt", "--overwrite"),
    ),
    Case("--resume with an empty state", _resume_state(lambda b: b""), words=("state.pt", "--overwrite")),
    # --------------------------------------------------------- report, gallery, info, analyses
    Case("report on a missing folder", _report_on(lambda d: d / "nope"), words=("nope", "not")),
    Case("report on a folder without results", _report_on(lambda d: d), words=("no augsens results",)),
    Case(
        "report on results without .zmetadata",
        _report_on(_no_zmetadata),
        words=("res", "not a complete results folder", "rerun"),
    ),
    Case(
        "gallery on a missing file",
        _gallery_on(lambda d: d / "none.jpg"),
        words=("none.jpg", "does not exist"),
    ),
    Case(
        "gallery on a text file",
        _gallery_on(_text_file),
        words=("notes.jpg", "not an image"),
        check=_no_gallery,
    ),
    Case(
        "gallery on a truncated JPEG",
        _gallery_on(_truncated_jpeg),
        words=("x.jpg", "image"),
        check=_no_gallery,
    ),
    Case("gallery on a folder", _gallery_on(lambda d: d), words=("is a folder", "image file")),
    Case("gallery bad mode", _gallery_on(_a_photo, "--mode", "papr"), words=("'papr'", "'paper'")),
    Case(
        "gallery into a missing folder",
        lambda d: ["gallery", str(_a_photo(d)), "--out", str(d / "a" / "g.png")],
        code=0,
        check=lambda d, _: (d / "a" / "g.png").is_file(),
    ),
    Case(
        "info on an unknown model",
        lambda d: ["info", "--model", "resnet19"],
        words=("'resnet19'", "resnet18"),
    ),
    Case(
        "info on a factory that raises",
        lambda d: ["info", "--model", _user_factory(d, "broken")],
        words=(":broken", "raised"),
    ),
    Case(
        "correlation on a missing folder",
        lambda d: ["correlation", str(d / "nope"), "--out", str(d / "o")],
        words=("nope",),
    ),
    Case(
        "mask on a folder without results",
        lambda d: ["mask", str(d), "--out", str(d / "o"), "--model", "augsens.testing:tiny_cnn"],
        words=("not an augsens results folder", "--out folder of a finished run"),
    ),
    Case(
        "contrast with an unknown augmentation",
        lambda d: [
            "contrast",
            "--out",
            str(d / "o"),
            "--model",
            "augsens.testing:tiny_cnn",
            "--augmentations",
            "hue,rotaton",
            "--device",
            "cpu",
        ],
        words=("'rotaton'", "'rotation'"),
    ),
]
# a segments file that does not exist
CASES[[c.name for c in CASES].index("segments file missing")] = Case(
    "segments file missing",
    _tiny("--set", 'model.segments="/nope/seg.json"', "--set", "model.checkpoints=[]"),
    words=("/nope/seg.json",),
)


def _signal_case(phase: str, sig: str) -> Case:
    def setup(d: Path) -> list[str]:
        return _run(d, tiny_config(d, n=16))

    return Case(f"{sig} at {phase}", setup, code=-1, signal=f"{phase}:{sig}", slow=True)


SIGNAL_CASES = [
    _signal_case(phase, sig)
    for phase in ("startup", "mid-study", "finalisation", "writing")
    for sig in ("SIGTERM", "SIGINT")
]


# ------------------------------------------------------------------ running and judging
@dataclass
class Outcome:
    case: str
    verdict: str  # clear | correct | traceback | unclear | wrong
    code: int
    output: str
    seconds: float


def run_inprocess(argv: list[str]) -> tuple[int, str, bool]:
    """Exit code, output, and whether an exception escaped (a traceback) for one CLI call."""
    from typer.testing import CliRunner

    from augsens.cli import app

    res = CliRunner().invoke(app, argv)
    escaped = res.exception is not None and not isinstance(res.exception, SystemExit)
    out = res.output
    if escaped:
        import traceback

        out += "".join(traceback.format_exception(res.exception))
    return res.exit_code, out, escaped


def run_signal_jobs(jobs: list[tuple[str, str, list[str]]], timeout: float = 600) -> list[tuple[int, str]]:
    """Run CLI calls ``(phase, signal, argv)`` in one subprocess that signals itself at each ``phase``;
    one (exit code, output) per job."""
    import json
    import tempfile

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(jobs, f)
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "cli_signal_driver.py"), f.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    finally:
        os.unlink(f.name)
    out: list[tuple[int, str]] = []
    rest = proc.stderr
    for _ in jobs:
        text, sep, rest = rest.partition("=== exit ")
        if not sep:  # the process died: what is left is its last words
            out.append((proc.returncode, text))
            rest = ""
            continue
        code, _, rest = rest.partition("\n")
        out.append((int(code), text))
    return out


def judge_signal(d: Path, code: int, output: str) -> tuple[str, dict[str, bool]]:
    """A signalled run must exit non-zero and say either that its state is saved (and leave it) or that
    its results are complete (and leave them); a resumed run must then finish."""
    state = (d / "out" / "state" / "state.pt").is_file()
    results = (d / "out" / "results.zarr" / ".zmetadata").is_file()
    says_resume = "--resume" in output
    says_complete = "complete" in output.lower()
    says_nothing = "nothing" in output.lower()  # interrupted before anything was computed
    facts = dict(state=state, results=results, resume=says_resume, complete=says_complete)
    if "Traceback" in output:
        return "traceback", facts
    if code == 0 and not (results and says_complete):
        return "wrong", facts
    if (says_resume and state) or (says_complete and results) or (says_nothing and not state and not results):
        return "clear", facts
    if not output.strip():
        return "wrong", facts  # nothing said, and (see above) nothing resumable
    return "unclear", facts


def judge(case: Case, d: Path, code: int, output: str, escaped: bool) -> str:
    if escaped or "Traceback" in output:
        return "traceback"
    if case.code == 0:
        ok = code == 0 and (case.check is None or case.check(d, output))
        return "correct" if ok else "wrong"
    if code == 0:
        return "wrong"
    if case.check is not None and not case.check(d, output):
        return "wrong"
    low = output.lower()
    if code != case.code or not all(w.lower() in low for w in case.words):
        return "unclear"
    return "clear"


def run_case(case: Case, d: Path) -> Outcome:
    t0 = time.monotonic()
    argv = case.setup(d)
    if case.signal:
        phase, sig = case.signal.split(":")
        [(code, out)] = run_signal_jobs([(phase, sig, argv)])
        verdict, _ = judge_signal(d, code, out)
    else:
        with case.during(d) if case.during is not None else contextlib.nullcontext():
            code, out, escaped = run_inprocess(argv)
        verdict = judge(case, d, code, out, escaped)
    return Outcome(case.name, verdict, code, out, time.monotonic() - t0)


def assert_one_clear_answer(case: Case, tmp_path: Path, *, no_new_folder: bool = False) -> None:
    """Run ``case`` in this process and assert the battery's contract: no traceback, the expected exit
    code and words, its own check, and one ``error:`` line when it fails; with ``no_new_folder``, also
    that a failed ``run`` removed the output folder it created."""
    argv = case.setup(tmp_path)
    out_existed = (tmp_path / "out").exists()
    with case.during(tmp_path) if case.during is not None else contextlib.nullcontext():
        code, output, escaped = run_inprocess(argv)
    assert not escaped and "Traceback" not in output, output
    assert code == case.code, output
    for word in case.words:
        assert word.lower() in output.lower(), (word, output)
    if case.check is not None:
        assert case.check(tmp_path, output), output
    if no_new_folder and code != 0 and argv[0] == "run" and not out_existed:
        assert not (tmp_path / "out").exists(), "a failed run left a folder it created"
    if code != 0:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, output  # one message, not a wall of text
