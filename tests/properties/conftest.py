"""Hypothesis settings for the property-based fault tests: a fixed number of examples, a deadline per
example and a fixed seed, so that the suite takes the same bounded time on every run (well under a minute
on a laptop).  ``HYPOTHESIS_PROFILE=long`` explores more."""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=timedelta(seconds=5),  # generous for shared CI machines; a hang still fails
    derandomize=True,  # the same examples every run: a CI failure replays locally
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("long", max_examples=500, deadline=timedelta(seconds=20))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
