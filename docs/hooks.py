"""mkdocs hook: the command-line reference page, generated from the commands' own help."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

#: Where docs/reproduce_paper.py writes its numbers and figures, and the marker its table replaces.
REPRODUCE = Path(__file__).parent / "reproduce"
MARKER = "<!-- reproduce-table -->"


def _help(*args: str) -> str:
    from typer.testing import CliRunner

    from augsens.cli import app

    result = CliRunner().invoke(app, [*args, "--help"], prog_name="augsens", env={"COLUMNS": "100"})
    if result.exit_code != 0:
        raise RuntimeError(f"augsens {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip()


def cli_reference() -> str:
    """The page: ``augsens --help``, then one section per command."""
    from augsens.cli import app

    os.environ.setdefault("TERM", "dumb")  # plain text: no colour codes in the page
    from augsens.analysis.protocol import listings

    own = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    names = sorted(own | {a.name for a in listings()})  # the analyses' commands come from their registrations
    parts = [
        "# Command line\n",
        "Generated from the commands (`augsens COMMAND --help` prints the same). Every list option takes its "
        "values comma-separated or by repeating the option.\n",
        f"```text\n{_help()}\n```\n",
    ]
    parts += [f"## augsens {name}\n\n```text\n{_help(name)}\n```\n" for name in names]
    return "\n".join(parts)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    return files


def _cell(entry: list[Any]) -> str:
    what, value, half = entry
    return f"{what} {value:.3f}" + ("" if half is None else f" ± {half:.3f}")


def reproduce_table() -> str:
    """The table of ``docs/reproduce/results.json`` (written by ``docs/reproduce_paper.py``)."""
    data = json.loads((REPRODUCE / "results.json").read_text())
    first, last = data["checkpoints"][0], data["checkpoints"][-1]
    lines = [
        f"Written by `python docs/reproduce_paper.py --n {data['n']}` (Sobol' base samples; other sizes in "
        "the script); each cell names the factor with the largest whole-checkpoint index and its value "
        "(± 95 % half-width where the estimator gives one).\n",
        f"| experiment | set | kind | forwards | `{first}` | `{last}` | depth profile |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(data["rows"], key=lambda r: (r["experiment"], r["set"])):
        figure = f"![{row['experiment']} {row['set']}](reproduce/{row['figure']})" if row["figure"] else ""
        lines.append(
            f"| {row['experiment']} | {row['set']} | {row['kind']} | "
            f"{'–' if row['forwards'] is None else format(row['forwards'], ',')} | "
            f"{_cell(row['headline'][first])} | {_cell(row['headline'][last])} | {figure} |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, reproduce_table())
    return markdown
