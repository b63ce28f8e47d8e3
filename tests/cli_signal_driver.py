"""Run ``augsens`` commands in this process, each sent SIGTERM or SIGINT at one phase of its study.

``python cli_signal_driver.py JOBS.json`` where the file holds ``[[PHASE, SIGNAL, [ARG, ...]], ...]`` and
PHASE is one of ``startup`` (as the study is being set up), ``mid-study`` (before the second batch),
``finalisation`` (after the last batch, as the results are assembled) or ``writing`` (as the results are
written).  The signal is a real one, delivered by the operating system to this process, so the command's
own handlers answer it exactly as they would a scheduler's SIGTERM or a user's Ctrl-C.  After each job a
line ``=== exit CODE`` goes to stderr; several jobs share one process to pay torch's import once.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import augsens.engine.runner as runner
from augsens.cli import app
from augsens.engine.study import Study


def _signalling(fn: Callable[..., Any], sig: int, at_call: int = 1) -> Callable[..., Any]:
    calls = 0

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == at_call:
            os.kill(os.getpid(), sig)
        return fn(*args, **kwargs)

    return wrapper


# phase -> (object, attribute, call that gets the signal)
_TARGETS: dict[str, tuple[Any, str, int]] = {
    "startup": (Study, "__init__", 1),
    "mid-study": (Study, "forward", 2),
    "finalisation": (Study, "finalize", 1),
    "writing": (runner, "write_results", 1),
}


def run_job(phase: str, name: str, argv: list[str]) -> int:
    owner, attr, at_call = _TARGETS[phase]
    original = getattr(owner, attr)
    setattr(owner, attr, _signalling(original, getattr(signal, name), at_call))
    try:
        app(argv, prog_name="augsens")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        setattr(owner, attr, original)
    return 0


def main() -> None:
    # as in an interactive terminal: a shell without job control starts background jobs with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for phase, name, argv in jobs:
        code = run_job(phase, name, argv)
        sys.stdout.flush()
        print(f"=== exit {code}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
