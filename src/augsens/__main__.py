"""``python -m augsens``: the command line (:mod:`augsens.cli`)."""

from augsens.cli import app

if __name__ == "__main__":  # not when imported (pytest's doctest collection imports every module)
    app(prog_name="augsens")
