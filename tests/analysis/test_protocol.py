"""The analysis protocol: one registration gives the command (its options) and the report section."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer

from augsens.analysis.protocol import Analysis, analyses, get_analysis, listings, register


def test_the_migrated_analyses_are_registered():
    names = {a.name for a in analyses()}
    assert {"correlation", "lda", "segments"} <= names
    assert get_analysis("no-such-analysis") is None


def _count(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    word: Annotated[str, typer.Option(help="A word to write.")] = "hello",
) -> list[Path]:
    """Write one word to a file."""
    path = out / "word.csv"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(word)
    return [path]


def test_a_registration_is_a_command_that_saves_its_section(tmp_path, capsys):
    analysis = Analysis("word", "One word", "The word written.", _count)
    assert analysis.help == "Write one word to a file."
    calls = []

    def wrap(fn):  # as the command line's error handling wraps a command
        @functools.wraps(fn)
        def wrapper(**kwargs):
            calls.append(sorted(kwargs))
            return fn(**kwargs)

        return wrapper

    command = analysis.command(wrap)
    command.main(["--out", str(tmp_path), "--word", "bonjour"], standalone_mode=False)
    assert calls == [["out", "word"]] and (tmp_path / "word.csv").read_text() == "bonjour"
    assert "word: 1 files in" in capsys.readouterr().err
    section = (tmp_path / "word.section.json").read_text()
    assert '"title": "One word"' in section and "The word written." in section and "word.csv" in section


def test_a_registration_needs_an_output_folder_and_a_free_name():
    with pytest.raises(TypeError, match="'out'"):
        Analysis("bad", "Bad", "", lambda results: [])
    with pytest.raises(ValueError, match="two analyses are named 'lda'"):
        register(Analysis("lda", "Another", "", _count))


def test_an_analysis_whose_package_is_missing_is_named_with_its_extra(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None  # import sklearn now fails as if it were not installed\n"
        "from augsens.cli import app\n"
        "for args in (['analyses'], ['lda', 'x', '--out', 'y']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as exc:\n"
        "        print('exit', args[0], exc.code)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert "exit analyses 0" in res.stdout and "exit lda 2" in res.stdout, res.stdout + res.stderr
    assert "augsens.analysis.lda: the analysis 'lda' needs 'sklearn'" in res.stderr.replace("\n", " ")
    assert "pip install 'augsens[" in res.stderr and "Traceback" not in res.stderr


def test_the_listing_read_from_the_sources_equals_the_registrations():
    read = {(item.name, item.title, item.help) for item in listings()}
    assert read == {(a.name, a.title, a.help) for a in analyses()}


def test_the_command_list_imports_no_analysis():
    code = (
        "import sys\n"
        "from augsens.cli import app\n"
        "try:\n    app(['--help'])\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'scipy', 'sklearn', 'matplotlib', 'augsens.analysis.lda')"
        " if m in sys.modules)\n"
        "print('heavy', heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "heavy []" in res.stdout, res.stdout + res.stderr
    for name in ("correlation", "lda", "segments", "analyses"):
        assert name in res.stdout
