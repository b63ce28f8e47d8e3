"""mkdocs hook: the command-line reference page, generated from the commands' own help."""

from __future__ import annotations

import os
from typing import Any

from mkdocs.structure.files import File, Files


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
    names = sorted(c.name or c.callback.__name__ for c in app.registered_commands if c.callback)
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
