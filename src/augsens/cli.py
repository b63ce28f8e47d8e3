"""Command line: ``augsens demo | run | report | info | gallery``.

Every user mistake ends in one message naming what to fix (exit code 2); Ctrl-C during a run saves its
state (exit code 130) and ``--resume`` finishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["app"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="augsens: which parts of a network react to which image changes, and how much.",
)
console = Console(stderr=True)


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user errors into one clear line (exit 2) instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from augsens.engine import StudyInterrupted

        try:
            return fn(*args, **kwargs)
        except StudyInterrupted as exc:
            console.print(f"[yellow]{exc}[/yellow]")
            raise typer.Exit(130) from None
        except (ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            console.print(f"[red]error:[/red] {msg}")
            raise typer.Exit(2) from None
        except torch_oom() as exc:  # pragma: no cover - needs a GPU running out of memory
            console.print(
                f"[red]out of memory:[/red] {exc}. Lower [run] batch_size (state was saved if the run had "
                "started; rerun with --resume)."
            )
            raise typer.Exit(3) from None

    return wrapper


def torch_oom() -> type[BaseException]:
    import torch

    return getattr(torch, "OutOfMemoryError", MemoryError)


@app.command()
@_friendly
def run(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder.")],
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    report: Annotated[bool, typer.Option(help="Write report.html into --out when done.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a study: CONFIG -> sensitivity maps in OUT/results.zarr (+ OUT/report.html)."""
    from augsens.config import load_config
    from augsens.engine import Study

    cfg = load_config(config)
    Study(cfg, progress=not quiet).run(out, resume=resume)
    console.print(f"results: {out / 'results.zarr'}")
    if report:
        from augsens.plot.report import write_report

        console.print(f"report:  {write_report(out)}")


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo-out"),
    n: Annotated[int, typer.Option(help="Base samples per Sobol study (a power of 2).")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """The embedded default: EfficientNet-Lite0 on the bundled photos, augmentation sets 1 and 2,
    Sobol indices and Shapley effects; writes results and OUT/report.html."""
    from augsens.demo import run_demo

    report = run_demo(out, n=n, device=device, progress=not quiet)
    console.print(f"report: {report}")


@app.command()
@_friendly
def report(
    results: Annotated[Path, typer.Argument(help="A results folder, or a folder of results folders.")],
    out: Annotated[Path | None, typer.Option(help="HTML file (default RESULTS/report.html).")] = None,
) -> None:
    """Rebuild the HTML report from a results folder."""
    from augsens.plot.report import write_report

    console.print(f"report: {write_report(results, out)}")


@app.command()
@_friendly
def info(
    model: Annotated[str | None, typer.Option(help="Also list this model's checkpoints and shapes.")] = None,
) -> None:
    """List models, augmentations (parameters, bounds, identity) and study kinds."""
    from rich.table import Table

    from augsens.augment import AUGMENTATIONS
    from augsens.config import STUDY_KINDS
    from augsens.models import available_models

    out = Console()
    out.print("[bold]models:[/bold] " + ", ".join(available_models()) + ", or 'package.module:factory'")
    out.print("[bold]study kinds:[/bold] " + ", ".join(STUDY_KINDS))
    table = Table(title="augmentations")
    for col in ("name", "set", "parameter", "low", "high", "identity"):
        table.add_column(col)
    for name, spec in AUGMENTATIONS.items():
        if not spec.params:
            table.add_row(name, str(spec.set), "(switch only)", "", "", "")
        for i, p in enumerate(spec.params):
            table.add_row(
                name if i == 0 else "", str(spec.set), p.name, f"{p.low:g}", f"{p.high:g}", f"{p.identity:g}"
            )
    out.print(table)
    if model:
        from augsens.models import load

        m = load(model, weights="random") if ":" not in model else load(model)
        shapes = m.output_shapes()
        t = Table(title=f"{m.name}: default checkpoints")
        t.add_column("checkpoint")
        t.add_column("shape")
        for c, s in shapes.items():
            t.add_row(c, "×".join(map(str, s)))
        out.print(t)


@app.command()
@_friendly
def gallery(
    image: Annotated[Path, typer.Argument(help="A photo (any format PIL reads).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("gallery.png"),
    mode: Annotated[str, typer.Option(help="clean or paper.")] = "clean",
    seed: Annotated[int, typer.Option(help="Seed of the random combinations.")] = 0,
) -> None:
    """Show one photo under each augmentation and a few simultaneous combinations (paper Fig. 2)."""
    from augsens.plot.gallery import gallery as make_gallery

    if not image.is_file():
        raise FileNotFoundError(f"image {str(image)!r} does not exist")
    console.print(f"gallery: {make_gallery(image, out, mode=mode, seed=seed)}")
