"""docs/walkthrough.py runs end to end at a small n, and its check of the learned hflip invariance holds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "walkthrough.py"


@pytest.mark.slow
def test_walkthrough_runs(tmp_path):
    env = {**os.environ, "AUGSENS_WALKTHROUGH_N": "16", "AUGSENS_WALKTHROUGH_OUT": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the script asserts the trained network's hflip index falls with depth and the random one's does not
    assert "hflip ST, output / first checkpoint: trained" in done.stdout
    assert (tmp_path / "compare" / "compare.html").stat().st_size > 50_000
    assert {"maps_blocks3.png", "depth_trained.png"} <= {p.name for p in tmp_path.glob("*.png")}
    assert (tmp_path / "trained" / "results.zarr").is_dir() and (
        tmp_path / "random" / "results.zarr"
    ).is_dir()
