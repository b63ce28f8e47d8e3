"""Command line: ``augsens demo | init | run | screen | report | verify | compare | info | analyses |
gallery | mask | contrast``, then the analyses of results (``correlation | lda | segments | dominance``...).

The analyses' commands come from their registrations (:mod:`augsens.analysis.protocol`), built when
named.  Every user mistake ends in one
message naming what to fix (exit code 2; ``--debug`` adds the traceback), checked before torch is
imported wherever it can be; any other error is a bug and shows its traceback.  Ctrl-C or SIGTERM during
a run saves its state (exit code 130 or 143) and ``--resume`` finishes it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from augsens.core.kinds import KINDS, kinds_where
from augsens.errors import MissingFileError, UserInputError, is_out_of_memory

__all__ = ["app"]

Mode = Literal["clean", "paper"]
# Every list option takes its values either comma-separated or by repeating the option (or both).
_LIST = " Comma-separated or repeated."


class _Commands(TyperGroup):
    """The commands below, then every registered analysis (:mod:`augsens.analysis.protocol`), listed from
    its module's source: a study run never imports the analyses, and ``--help`` imports none of them."""

    def list_commands(self, ctx: Any) -> list[str]:  # ctx: the click Context typer vendors
        from augsens.analysis.protocol import listings

        own = super().list_commands(ctx)
        return [*own, *(item.name for item in listings() if item.name not in own)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        from augsens.analysis.protocol import listings

        found = [item for item in listings() if item.name == cmd_name]
        return _AnalysisCommand(found[0].name, found[0].help) if found else None


class _AnalysisCommand(TyperCommand):
    """A registered analysis in the list of commands (name and help read from its module); the command
    itself, with its options, is built from the registration when it runs or shows its help."""

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help=help, short_help=help)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        from augsens.analysis.protocol import get_analysis

        try:
            analysis = get_analysis(str(self.name))
        except UserInputError as exc:  # an analysis whose extra is not installed
            _say("red", f"error: {exc}")
            raise typer.Exit(2) from None
        if analysis is None:  # its module declares it but did not register it on import
            raise RuntimeError(f"augsens.analysis declares {self.name!r} but registers no such analysis")
        return analysis.command(_friendly).make_context(info_name, args, parent=parent, **extra)


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="augsens: which parts of a network react to which image changes, and how much.",
)
console = Console(stderr=True, soft_wrap=True)  # never break a path or message mid-word


_debug = False  # set by --debug: user errors keep their traceback too


def _version(value: bool) -> None:
    if value:
        from augsens import __version__

        print(f"augsens {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="AUGSENS_DEBUG", help="Show the traceback of user errors too (for bug reports)."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """augsens: which parts of a network react to which image changes, and how much."""
    global _debug
    _debug = debug


def _say(style: str, text: str) -> None:
    # escape: messages name config sections ("[run]"), which Rich would otherwise read as markup and drop
    console.print(f"[{style}]{escape(text)}[/{style}]")


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a user's mistake (:class:`~augsens.errors.UserInputError`) as one line (exit 2) and a stop by
    Ctrl-C or SIGTERM as one line saying what was kept (exit 128 + signal); anything else is a bug and
    keeps its traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from augsens.interrupts import StudyInterrupted, signal_label, sigterm_interrupts
        from augsens.wording import cli_words

        try:
            with sigterm_interrupts(), cli_words():
                return fn(*args, **kwargs)
        except StudyInterrupted as exc:
            _say("yellow", str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # outside a study's loop: at startup, or a command without state
            signum = getattr(exc, "signum", int(signal.SIGINT))
            what = (
                "before the study started: nothing was computed, and a saved state or results in --out are "
                "unchanged"
                if fn.__name__ == "run"
                else "before the command finished"
            )
            _say("yellow", f"stopped by {signal_label(signum)} {what}. Run the same command again.")
            raise typer.Exit(128 + signum) from None
        except UserInputError as exc:
            if _debug:
                raise
            _say("red", f"error: {exc}")
            raise typer.Exit(2) from None
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _say(  # pragma: no cover - needs a GPU running out of memory
                "red",
                f"out of memory: {exc}. Lower [run] batch_size (state was saved if the run had started; "
                "rerun with --resume).",
            )
            raise typer.Exit(3) from None

    return wrapper


def _overrides(items: list[str]) -> dict[str, Any]:
    """``["study.n=4096", 'study.augmentations=["hue"]']`` -> ``{"study.n": 4096, ...}`` (values as TOML,
    anything that is not a TOML value as a string)."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise UserInputError(f"--set {item!r}: write SECTION.KEY=VALUE, e.g. --set study.n=4096")
        try:
            out[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            if "," in text:  # a list written without its brackets and quotes
                items_ = ", ".join(f'"{part.strip()}"' for part in text.split(","))
                raise UserInputError(
                    f"--set {item!r}: {text!r} is not a TOML value. Write a list in brackets with quoted "
                    f"strings: --set '{key}=[{items_}]' (or a string with commas in quotes: "
                    f"--set '{key}=\"{text}\"')"
                ) from None
            out[key] = text
    return out


@app.command()
@_friendly
def run(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Results folder.")],
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace the run (results or unfinished state) that --out holds.")
    ] = False,
    report: Annotated[bool, typer.Option(help="Write report.html into --out when done.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ray: Annotated[str | None, typer.Option("--ray", help="Run on Ray: local | auto | ADDRESS.")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: all GPUs, else CPUs).")] = None,
    shards: Annotated[int | None, typer.Option(help="Ray shards (default: 4 per worker).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key, e.g. --set study.n=4096 (repeatable; TOML values)."
        ),
    ] = None,
) -> None:
    """Run a study: CONFIG -> sensitivity maps in OUT/results.zarr (+ OUT/report.html)."""
    from augsens.config import load_config
    from augsens.preflight import check_out_outside_images, check_paths

    # everything that can be checked without torch is checked first, so a mistake answers in a second
    cfg = load_config(config, overrides=_overrides(set_ or []))
    check_paths(cfg)
    check_out_outside_images(out, cfg)
    if ray is not None and resume:
        raise UserInputError(
            "--resume cannot be combined with --ray (failed shards are retried automatically)"
        )
    kind = KINDS[cfg.study.kind]
    if ray is not None and not kind.shards:
        raise UserInputError(
            f'a kind = "{kind.name}" study runs in one process: drop --ray ({kind.one_process})'
        )
    from augsens.outlock import own_out

    with own_out(out):  # refuses a folder another run writes into, before anything is written
        _run_into(
            cfg,
            Path(out),
            resume=resume,
            overwrite=overwrite,
            report=report,
            quiet=quiet,
            ray=ray,
            workers=workers,
            shards=shards,
        )


def _run_into(
    cfg: Any,
    out: Path,
    *,
    resume: bool,
    overwrite: bool,
    report: bool,
    quiet: bool,
    ray: str | None,
    workers: int | None,
    shards: int | None,
) -> None:
    """The body of ``augsens run`` once it holds ``out``."""
    from augsens.preflight import prepare_out

    prepare_out(out, resume=resume, overwrite=overwrite)
    if ray is not None:
        from augsens.engine.distributed import run_distributed

        run_distributed(cfg, out, address=ray, workers=workers, shards=shards, progress=not quiet)
    else:
        from augsens.engine.quick import run_study

        run_study(cfg, out, resume=resume, overwrite=overwrite, progress=not quiet)
    try:
        console.print(f"results: {escape(str(out / 'results.zarr'))}")
        if report:
            from augsens.plot.report import write_report

            console.print(f"report:  {escape(str(write_report(out)))}")
    except KeyboardInterrupt as exc:  # the results are complete; at most the report page is missing
        from augsens.interrupts import signal_label

        signum = getattr(exc, "signum", int(signal.SIGINT))
        page = f" (the report was not written: augsens report {out})" if report else ""
        _say("yellow", f"stopped by {signal_label(signum)}; the results are complete in {out}{page}.")
        raise typer.Exit(128 + signum) from None


@app.command()
@_friendly
def screen(
    config: Annotated[
        Path,
        typer.Argument(
            help=f"The study to run after screening (TOML, kind {' or '.join(kinds_where(rounds=True))})."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder: OUT/screen, OUT/quantify, report.")],
    trajectories: Annotated[int, typer.Option(help="Morris trajectories of the screening.")] = 32,
    cutoff: Annotated[
        float, typer.Option(help="Keep augmentations whose mu_star reaches this share of the leader's.")
    ] = 0.1,
    overwrite: Annotated[bool, typer.Option(help="Replace results already in OUT.")] = False,
    report: Annotated[bool, typer.Option(help="Write OUT/report.html when done.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set study.n=256 (repeatable)."),
    ] = None,
) -> None:
    """Screen the augmentations with elementary effects, then run CONFIG's study on those that matter."""
    from augsens.config import load_config
    from augsens.preflight import check_paths

    cfg = load_config(config, overrides=_overrides(set_ or []))
    check_paths(cfg)
    from augsens.engine.screen import screen_then_quantify

    screen_then_quantify(
        cfg, out, trajectories=trajectories, cutoff=cutoff, overwrite=overwrite, progress=not quiet
    )
    console.print(f"screening: {escape(str(out / 'screening.json'))}")
    if report:
        from augsens.plot.report import write_report

        console.print(f"report:    {escape(str(write_report(out)))}")


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo-out"),
    full: Annotated[
        bool, typer.Option("--full", help="The four studies: sets 1 and 2, Sobol and Shapley (longer).")
    ] = False,
    n: Annotated[int, typer.Option(help="Base samples per Sobol study of --full (a power of 2).")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """The embedded default: EfficientNet-Lite0 on the bundled photos. A quick Sobol study of hue, flip
    and rotation (a few minutes on a laptop), or with --full augmentation sets 1 and 2 with Sobol indices
    and Shapley effects; writes results and OUT/report.html."""
    from augsens.demo import run_demo

    report = run_demo(out, full=full, n=n, device=device, progress=not quiet)
    console.print(f"report: {escape(str(report))}")
    if not full:
        console.print(
            "Open it in a browser. Next: [bold]augsens demo --full --out "
            f"{escape(str(out))}[/bold] adds augmentation sets 1 and 2 (all twelve augmentations), "
            "Shapley effects and all eight checkpoints: four studies, 14,336 forwards at the default --n "
            "(see the README for timings)."
        )


@app.command()
@_friendly
def init(
    path: Annotated[Path, typer.Argument(help="Config file to write.")] = Path("study.toml"),
    preset: Annotated[
        str | None, typer.Option(help="A paper preset instead of the starter (--list shows them).")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the paper presets and exit.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write a commented study config (the quick demo study, every key explained) or a paper preset."""
    from augsens.starter import presets, write_config

    if list_:
        Console().print("\n".join(presets()))
        return
    written = write_config(path, preset, overwrite=overwrite)
    console.print(f"config: {escape(str(written))}. Next: augsens run {escape(str(written))} --out results")


@app.command()
@_friendly
def report(
    results: Annotated[
        list[Path], typer.Argument(help="Results folders, or folders of results folders (one or more).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file (default RESULTS/report.html for one folder)."),
    ] = None,
) -> None:
    """Write the HTML explorer (one self-contained file) for any set of results folders."""
    for folder in results:
        if not folder.exists():
            raise MissingFileError(
                f"{str(folder)!r} does not exist: pass a results folder (the --out of a run)"
            )
    from augsens.plot.report import write_report

    console.print(f"report: {escape(str(write_report(results, out)))}")


@app.command()
@_friendly
def verify(
    results: Annotated[
        list[Path], typer.Argument(help="Results folders, or folders of results folders (one or more).")
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="Only check that every node, variable and file is there.")
    ] = False,
) -> None:
    """Check results against the manifest written with them: nodes, variables, shapes, files, checksums."""
    from augsens.manifest import check_tree, verify_store
    from augsens.results import RESULTS_NAME, find_results, open_results, unfinished_run

    for folder in results:
        found = find_results(folder)
        if not found:
            raise MissingFileError(
                f"no augsens results under {str(folder)!r} (expected {RESULTS_NAME} in it or its "
                f"sub-folders).{unfinished_run(folder)}"
            )
        for d in found:
            files = verify_store(d / RESULTS_NAME, full=not quick)
            tree = open_results(d, verify="none")
            check_tree(tree, d / RESULTS_NAME)
            if not files:  # written before manifests: reading every value is the check left
                tree.load()
                console.print(
                    f"ok: {escape(str(d))} opens and reads (no manifest: written by an earlier augsens)"
                )
                continue
            how = "sizes" if quick else "sizes and checksums"
            console.print(f"ok: {escape(str(d))} ({len(tree.children)} nodes, {files} files, {how} match)")


@app.command()
@_friendly
def compare(
    results: Annotated[
        list[Path], typer.Argument(help="Two or more results folders (or folders of results folders).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (compare.html, explorer.html, PNG, CSV).")
    ],
    labels: Annotated[list[str] | None, typer.Option(help="Run names (default: folders)." + _LIST)] = None,
    measures: Annotated[list[str] | None, typer.Option(help="S1, ST, shapley." + _LIST)] = None,
) -> None:
    """Several studies on one page: depth profiles on a relative-depth axis, dominant factors, differences."""
    from augsens.analysis.compare import compare as compare_runs
    from augsens.plot.explorer import write_explorer
    from augsens.schema import find_results

    result = compare_runs(results, out, labels=_csv(labels), measures=_csv(measures))
    assert result.section is not None and result.page is not None  # written because out is given
    console.print(f"comparison: {escape(str(result.page))} ({len(result.files)} figures and tables in {out})")
    # the same comparison as a section of the explorer, beside every compared study's maps
    folders = list(dict.fromkeys(d for r in results for d in find_results(r)))
    explorer = write_explorer(
        folders, out / "explorer.html", sections=[result.section], title="augsens comparison"
    )
    console.print(f"explorer:   {escape(str(explorer))}")


@app.command()
@_friendly
def info(
    model: Annotated[str | None, typer.Option(help="Also list this model's checkpoints and shapes.")] = None,
    size: Annotated[
        int, typer.Option(min=1, help="Image side: the model's shapes and the paper's pixel bounds at it.")
    ] = 224,
) -> None:
    """List models, augmentations (parameters, bounds, identity, where from) and study kinds."""
    from rich.table import Table

    from augsens.augment import available
    from augsens.augment.scaling import at_size
    from augsens.models import available_models

    out = Console()
    out.print("[bold]models:[/bold] " + ", ".join(available_models()) + ", or 'package.module:factory'")
    out.print("[bold]study kinds:[/bold] " + ", ".join(KINDS))
    for k in KINDS.values():
        out.print(f"  {k.name}: {escape(k.summary)}")
    from augsens.extras import installed_extras

    out.print(
        "[bold]extras:[/bold] "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in installed_extras().items())
    )
    table = Table(title="augmentations")
    for col in ("name", "set", "parameter", "low", "high", "identity"):
        table.add_column(col, no_wrap=col == "name")
    sources: dict[str, list[str]] = {}
    for name, declared in available().items():
        spec = at_size(declared, size, size)
        sources.setdefault(spec.source, []).append(name)
        group = "" if spec.set is None else str(spec.set)
        if not spec.params:
            table.add_row(name, group, "(switch only)", "", "", "")
        for i, p in enumerate(spec.params):
            lo, hi = p.bounds()
            ident = "" if p.identity is None else f"{p.identity:g}"
            table.add_row(name if i == 0 else "", group, p.name, f"{lo:g}", f"{hi:g}", ident)
    out.print(table)
    if size != 224:
        out.print(f"pixel bounds at {size} x {size} (the paper's are for 224 x 224)")
    for source, names in sources.items():  # where each augmentation comes from
        out.print(f"[bold]from {escape(source)}:[/bold] " + ", ".join(names))
    out.print("and 'package.module:name' for one of yours")
    if model:
        from augsens.models import load

        shape = (3, size, size)
        m = (
            load(model, weights="random", input_shape=shape)
            if ":" not in model
            else load(model, input_shape=shape)
        )
        shapes = m.output_shapes()
        t = Table(title=f"{m.name}: default checkpoints ({size} x {size} images)")
        t.add_column("checkpoint")
        t.add_column("shape")
        for c, s in shapes.items():
            t.add_row(c, "×".join(map(str, s)))
        out.print(t)


@app.command()
@_friendly
def analyses() -> None:
    """List the analyses of results: each one's command and report section (see `augsens NAME --help`)."""
    from rich.table import Table

    from augsens.analysis.protocol import analyses as registered

    missing: dict[str, str] = {}
    table = Table("command", "report section", "what it does")
    for analysis in registered(missing):
        table.add_row(analysis.name, analysis.title, analysis.help)
    Console(soft_wrap=False).print(table)
    for module, message in missing.items():
        _say("yellow", f"{module}: {message}")


@app.command()
@_friendly
def gallery(
    image: Annotated[Path, typer.Argument(help="A photo (any format PIL reads).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("gallery.png"),
    mode: Annotated[str, typer.Option(help="clean or paper.")] = "clean",
    seed: Annotated[int, typer.Option(help="Seed of the random combinations.")] = 0,
    config: Annotated[
        Path | None, typer.Option(help="A study config: show its augmentations at its [augment] ranges.")
    ] = None,
) -> None:
    """Show one photo under each augmentation and a few simultaneous combinations (paper Fig. 2)."""
    if image.is_dir():
        raise UserInputError(f"{str(image)!r} is a folder: pass one image file (any format PIL reads)")
    if not image.is_file():
        raise MissingFileError(f"image file {str(image)!r} does not exist")
    if mode not in ("clean", "paper"):
        raise UserInputError(f"--mode {mode!r}: choose 'clean' or 'paper'")
    from augsens.plot.gallery import gallery as make_gallery

    options: dict[str, Any] = {}
    if config is not None:
        from augsens.config import load_config

        study = load_config(config)
        options = {"augmentations": study.study.augmentations, "ranges": study.augment}
    made = make_gallery(image, out, mode=cast(Mode, mode), seed=seed, **options)
    console.print(f"gallery: {escape(str(made))}")


def _model_and_images(model: str, weights: str, images: str, per_class: int, device: str) -> tuple[Any, Any]:
    """The network and images as a study with these ``[model]`` and ``[images]`` settings loads them."""
    from augsens.config import ImagesConfig, ModelConfig
    from augsens.engine.inputs import load_images, load_model
    from augsens.engine.study import resolve_device

    dev = resolve_device(device)
    source = "bundled" if images in ("bundled", "photos") else images
    return (
        load_model(ModelConfig(name=model, weights=weights), device=dev),
        load_images(ImagesConfig(source=source, per_class=per_class), device=dev),
    )


def _csv(values: list[str] | str | None) -> list[str] | None:
    """A list option's values: each given once or more, and each may hold several separated by commas."""
    items = [values] if isinstance(values, str) else values or []
    out = [t.strip() for item in items for t in item.split(",") if t.strip()]
    return out or None


def _floats(text: list[str] | str, option: str) -> list[float]:
    try:
        values = [float(t) for t in _csv(text) or []]
    except ValueError as exc:
        raise UserInputError(f"{option} {text!r}: give comma-separated numbers, e.g. 0.5,0.9") from exc
    if not values:
        raise UserInputError(f"{option} is empty: give comma-separated numbers, e.g. 0.5,0.9")
    return values


ModelOpt = Annotated[str, typer.Option(help="Model name (see `augsens info`) or package.module:factory.")]
WeightsOpt = Annotated[str, typer.Option(help="default, imagenet, random, or a state-dict path.")]
ImagesOpt = Annotated[str, typer.Option(help="'bundled' (the bundled photos) or an ImageFolder directory.")]
PerClassOpt = Annotated[int, typer.Option(help="Images per class from a folder (0 = all).")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]


@app.command()
@_friendly
def mask(
    results: Annotated[list[Path], typer.Argument(help="Results folders computed with this model.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (CSV, PNG, report section).")],
    model: ModelOpt = "efficientnet_lite0",
    weights: WeightsOpt = "default",
    images: ImagesOpt = "bundled",
    per_class: PerClassOpt = 0,
    measures: Annotated[
        list[str] | None, typer.Option("--measures", "--measure", help="S1, ST or shapley." + _LIST)
    ] = None,
    quantiles: Annotated[
        list[str] | None, typer.Option(help="Quantiles q (default 0.5,0.6,0.7,0.8,0.9)." + _LIST)
    ] = None,
    alphas: Annotated[
        list[str] | None, typer.Option(help="Multipliers α (default 0,0.5,1.5)." + _LIST)
    ] = None,
    soft: Annotated[bool, typer.Option(help="Also the soft masks S and 1 - S.")] = True,
    checkpoints: Annotated[
        list[str] | None, typer.Option("--checkpoints", "--checkpoint", help="Masked checkpoints." + _LIST)
    ] = None,
    draws: Annotated[int, typer.Option(help="Parameter draws per image and augmentation.")] = 3,
    seed: int = 0,
    batch_size: int = 16,
    k: Annotated[int, typer.Option(help="Top-k for accuracy and the single-class analysis.")] = 5,
    device: DeviceOpt = "auto",
) -> None:
    """Guided masking of activations by their sensitivity, and single-class analysis."""
    from augsens.analysis.protocol import require_results

    require_results(results)
    from augsens.analysis.masking import guided_masking_report, mask_configs

    qs = _floats(quantiles or "0.5,0.6,0.7,0.8,0.9", "--quantiles")
    alphas_ = _floats(alphas or "0,0.5,1.5", "--alphas")
    mask_configs(qs, alphas_, soft=soft)  # refuses a quantile or alpha out of range before the model loads
    m, imgs = _model_and_images(model, weights, images, per_class, device)
    rep = guided_masking_report(
        results,
        m,
        imgs,
        out,
        measures=_csv(measures),
        quantiles=qs,
        alphas=alphas_,
        soft=soft,
        checkpoints=_csv(checkpoints),
        draws=draws,
        seed=seed,
        batch_size=batch_size,
        k=k,
    )
    from augsens.plot.sections import Section

    files = (*rep.tables.values(), *rep.figures.values())
    Section("Guided masking and single-class analysis", rep.html, "masking", files).save(out)
    console.print(f"masking: {len(rep.tables)} tables, {len(rep.figures)} figures in {out}")


@app.command()
@_friendly
def contrast(
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder.")],
    model: ModelOpt = "efficientnet_lite0",
    weights: WeightsOpt = "default",
    images: ImagesOpt = "bundled",
    per_class: PerClassOpt = 0,
    augmentations: Annotated[list[str] | None, typer.Option(help="Names (default: all 12)." + _LIST)] = None,
    draws: Annotated[int, typer.Option(help="Parameter draws per image.")] = 10,
    n_images: Annotated[int | None, typer.Option(help="Use the first N images.")] = None,
    checkpoints: Annotated[
        list[str] | None, typer.Option("--checkpoints", "--checkpoint", help="Checkpoints." + _LIST)
    ] = None,
    seed: int = 0,
    pairing: Annotated[str | None, typer.Option(help="draw (the authors') or image.")] = None,
    batch_size: int = 64,
    mode: Annotated[str, typer.Option(help="clean or paper.")] = "clean",
    device: DeviceOpt = "auto",
) -> None:
    """Treatment-control study: each augmentation alone vs the original (Wilcoxon, effect sizes, BY)."""
    from augsens.analysis.contrast import contrast_report
    from augsens.engine.contrast import contrast_study

    m, imgs = _model_and_images(model, weights, images, per_class, device)
    contrast_study(
        m,
        imgs,
        augmentations=_csv(augmentations),
        draws=draws,
        n_images=n_images,
        checkpoints=_csv(checkpoints),
        seed=seed,
        pairing=pairing,  # type: ignore[arg-type]
        batch_size=batch_size,
        mode=mode,  # type: ignore[arg-type]
        out=out,
    )
    files = contrast_report([out], out / "contrast-report")
    console.print(f"results: {out / 'results.zarr'}; {len(files)} report files in {out / 'contrast-report'}")
