"""Run the command line's fault battery (``tests/cli_battery.py``) and count the answers.

Each case is judged: *clear* (non-zero exit, one message with the expected words, no traceback, nothing
partial left), *correct* (a case that must succeed did, with the right result), *traceback*, *unclear*
(an error that does not say what to fix) or *wrong* (silently did the wrong thing).  Prints one line per
case and the counts; ``--verbose`` also prints each answer.

    python benchmarks/cli_faults.py [--signals] [--verbose] [--only SUBSTRING] [--table NAME]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import cli_battery  # noqa: E402
import cli_battery_inputs  # noqa: E402
import cli_battery_runs  # noqa: E402

TABLES = {
    "basic": cli_battery.CASES,
    "inputs": cli_battery_inputs.INPUT_CASES,
    "runs": cli_battery_runs.RUN_CASES,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", action="store_true", help="also the SIGTERM/SIGINT subprocess cases")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument(
        "--table",
        choices=("all", *TABLES),
        default="all",
        help="run one table: the basic cases, odd inputs, or whole runs",
    )
    args = parser.parse_args()
    cases = [c for name, table in TABLES.items() if args.table in ("all", name) for c in table]
    cases += cli_battery.SIGNAL_CASES if args.signals and args.table in ("all", "basic") else []
    cases = [c for c in cases if args.only in c.name]
    counts: collections.Counter[str] = collections.Counter()
    t0 = time.monotonic()
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outcome = cli_battery.run_case(case, Path(tmp))
            except Exception as exc:  # a setup that fails is reported, not fatal to the battery
                outcome = cli_battery.Outcome(case.name, "setup-failed", -1, repr(exc), 0.0)
        counts[outcome.verdict] += 1
        last = outcome.output.strip().splitlines()[-1] if outcome.output.strip() else ""
        print(f"{outcome.verdict:10s} {outcome.code:4d} {outcome.seconds:6.1f}s  {case.name}: {last[:150]}")
        if args.verbose:
            print("    " + outcome.output.strip().replace("\n", "\n    "))
    print(
        f"{len(cases)} cases in {time.monotonic() - t0:.0f} s: "
        + ", ".join(f"{k} {v}" for k, v in counts.most_common())
    )


if __name__ == "__main__":
    main()
