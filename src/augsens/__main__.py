"""``python -m augsens``: the command line (:mod:`augsens.cli`)."""

from augsens.cli import app

app(prog_name="augsens")
