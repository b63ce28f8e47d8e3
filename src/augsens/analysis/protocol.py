"""The analysis protocol: an analysis of results is registered once, and the command line and the report
read the registration.

An :class:`Analysis` names itself (the command ``augsens NAME`` and its section file ``NAME.section.json``),
titles and introduces its report section, and gives one function, ``run``: its annotated parameters are
the command's arguments and options (``typer.Argument`` / ``typer.Option``; one of them is ``out``, the
output folder), and it writes the analysis's tables and figures under ``out`` and returns their paths.
Calling the analysis runs it and saves its :class:`~augsens.plot.sections.Section` beside the files, so
``augsens report`` shows it.  The module that holds an analysis registers it at import with
:func:`register`; :func:`analyses` imports every module of :mod:`augsens.analysis` and returns the
registrations, and the command line (:mod:`augsens.cli`) builds a command from each one when it is named
(so a study run never pays for importing the analyses).  To list the commands (``augsens --help``),
:func:`listings` reads each registration from its module's source without importing it, so a
registration is written with literal ``name`` and ``title`` (``ANALYSIS = register(Analysis("name",
"Title", intro, run))``).  Adding an analysis is adding one module.

Examples
--------
>>> from pathlib import Path
>>> def run(out: Path) -> list[Path]:
...     '''Write nothing.'''
...     return []
>>> example = Analysis("example", "An example", "What the section shows.", run)
>>> example.help
'Write nothing.'
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from augsens.errors import MissingFileError

if TYPE_CHECKING:
    from augsens.plot.sections import Section

__all__ = [
    "Analysis",
    "Listing",
    "register",
    "analyses",
    "listings",
    "get_analysis",
    "list_values",
    "require_results",
    "LIST_HELP",
    "ResultsArgument",
    "OutOption",
]

#: Said after the help of every list option: its values are given comma-separated or by repeating it.
LIST_HELP = " Comma-separated or repeated."
#: The results folders an analysis reads: the command's arguments.
ResultsArgument = Annotated[list[Path], typer.Argument(help="Results folders.")]
#: The folder an analysis writes into: ``--out`` / ``-o``.
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]

_REGISTRY: dict[str, Analysis] = {}


@dataclass(frozen=True)
class Analysis:
    """One analysis of results, as the command line and the report see it.

    Attributes
    ----------
    name : str
        The command (``augsens NAME``) and the stem of the section it saves (``NAME.section.json``).
    title : str
        The heading of its report section.
    intro : str
        One paragraph under the heading: what the section shows and how to read it.
    run : callable
        ``run(**options) -> list of Path``: writes the tables and figures under ``options["out"]`` and
        returns them.  Its annotated parameters are the command's arguments and options, its docstring's
        first paragraph the command's help.
    """

    name: str
    title: str
    intro: str
    run: Callable[..., Sequence[Path]]

    def __post_init__(self) -> None:
        if "out" not in inspect.signature(self.run).parameters:
            raise TypeError(f"analysis {self.name!r}: run must take the output folder as a parameter 'out'")

    @property
    def help(self) -> str:
        """The first paragraph of ``run``'s docstring: the command's help."""
        return (inspect.getdoc(self.run) or self.title).split("\n\n")[0].strip()

    def section(self, files: Sequence[Path]) -> Section:
        """The report section of these files: the PNG figures embedded, the tables named."""
        from augsens.plot.sections import Section

        return Section.from_files(self.name, self.title, list(files), self.intro)

    def __call__(self, **options: Any) -> Section:
        """Run the analysis with these options, save its section into ``options["out"]``, return it."""
        section = self.section(self.run(**options))
        section.save(options["out"])
        return section

    def command(self, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
        """The analysis as a ``click`` command (its options from ``run``), each call passed through ``wrap``
        (the command line's error handling)."""

        def command(**options: Any) -> None:
            section = self(**options)
            typer.echo(f"{self.name}: {len(section.files)} files in {options['out']}", err=True)

        # typer reads the options from the signature, its annotations evaluated in run's module
        signature = inspect.signature(self.run, eval_str=True)
        command.__signature__ = signature  # type: ignore[attr-defined]
        command.__annotations__ = {n: p.annotation for n, p in signature.parameters.items()}
        app = typer.Typer(add_completion=False)
        app.command(name=self.name, help=self.help)(wrap(command))
        return typer.main.get_command(app)


def register(analysis: Analysis) -> Analysis:
    """Add ``analysis`` to the registry (at the import of the module that defines it) and return it."""
    known = _REGISTRY.get(analysis.name)
    if known is not None and known.run.__module__ != analysis.run.__module__:
        raise ValueError(
            f"two analyses are named {analysis.name!r} (in {known.run.__module__} and "
            f"{analysis.run.__module__}): rename one"
        )
    _REGISTRY[analysis.name] = analysis
    return analysis


def _modules() -> list[str]:
    import augsens.analysis as package

    return [
        f"{package.__name__}.{m.name}"
        for m in pkgutil.iter_modules(package.__path__)
        if not m.ispkg and m.name != "protocol"
    ]


def get_analysis(name: str) -> Analysis | None:
    """The analysis registered as ``name``, importing its module (``augsens.analysis.<name>``, with ``-``
    read as ``_``) first, or any module of :mod:`augsens.analysis` if that one does not register it.

    Raises
    ------
    MissingExtraError
        The module needs an extra that is not installed (the message names it).
    """
    if name not in _REGISTRY:
        module = f"augsens.analysis.{name.replace('-', '_')}"
        if module in _modules():
            _import(module)
    if name not in _REGISTRY:
        analyses()
    return _REGISTRY.get(name)


def analyses(missing: dict[str, str] | None = None) -> list[Analysis]:
    """Every registered analysis, by name, importing each module of :mod:`augsens.analysis`.

    A module whose extra is not installed is left out; ``missing``, when given, receives its name and the
    message saying what to install.
    """
    from augsens.extras import MissingExtraError

    for module in _modules():
        try:
            _import(module)
        except MissingExtraError as exc:
            if missing is not None:
                missing[module] = str(exc)
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def _import(module: str) -> None:
    """Import an analysis module; a dependency it lacks is named with the extra that brings it."""
    from augsens.extras import MissingExtraError, missing_extra

    try:
        importlib.import_module(module)
    except MissingExtraError:
        raise
    except ImportError as exc:
        if exc.name is None or exc.name.startswith("augsens"):  # a bug, not a missing package
            raise
        raise missing_extra(exc.name, purpose=f"the analysis {module.rpartition('.')[2]!r}") from exc


@dataclass(frozen=True)
class Listing:
    """An analysis as its module's source declares it: enough to list its command without importing it."""

    name: str
    title: str
    help: str
    module: str


def listings() -> list[Listing]:
    """The registered analyses, by name, read from their modules' source (no module is imported).

    A module whose registration is not written with literal ``name`` and ``title`` is imported instead
    (:func:`analyses`), as is any module when listing it needs more than its source.
    """
    found: dict[str, Listing] = {}
    for module in _modules():
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        listing = _declared(ast.parse(Path(spec.origin).read_text(encoding="utf-8")), module)
        if listing is not None:
            found[listing.name] = listing
        elif "ANALYSIS" in Path(spec.origin).read_text(encoding="utf-8"):
            for a in analyses():
                if a.run.__module__ == module:
                    found[a.name] = Listing(a.name, a.title, a.help, module)
    return [found[name] for name in sorted(found)]


def _declared(tree: ast.Module, module: str) -> Listing | None:
    """The ``ANALYSIS = register(Analysis(name, title, intro, run))`` statement of a module, read."""
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
            continue
        if [t.id for t in statement.targets if isinstance(t, ast.Name)] != ["ANALYSIS"]:
            continue
        inner = statement.value.args[0] if statement.value.args else None
        if not isinstance(inner, ast.Call):
            return None
        fields = dict(zip(("name", "title", "intro", "run"), inner.args, strict=False))
        fields.update({k.arg: k.value for k in inner.keywords if k.arg})
        name, title, run = fields.get("name"), fields.get("title"), fields.get("run")
        if not (isinstance(name, ast.Constant) and isinstance(title, ast.Constant)):
            return None
        doc = (
            ast.get_docstring(functions[run.id])
            if isinstance(run, ast.Name) and run.id in functions
            else None
        )
        return Listing(
            str(name.value), str(title.value), (doc or str(title.value)).split("\n\n")[0].strip(), module
        )
    return None


def list_values(values: Sequence[str] | str | None) -> list[str] | None:
    """A list option's values: each given once or more, and each may hold several separated by commas."""
    items = [values] if isinstance(values, str) else values or []
    out = [t.strip() for item in items for t in item.split(",") if t.strip()]
    return out or None


def require_results(paths: Sequence[Path]) -> None:
    """Name a path that is not a results folder, before an analysis reads anything."""
    from augsens.schema import is_results_dir, unfinished_run

    for p in paths:
        if not is_results_dir(p):
            what = (
                "does not exist" if not p.exists() else "is not an augsens results folder (no results.zarr)"
            )
            raise MissingFileError(
                f"{str(p)!r} {what}: pass the --out folder of a finished run.{unfinished_run(p)}"
            )
