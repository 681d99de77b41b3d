"""Fault injection on every path, sampled: for each scenario of
tests/torture/torture.py, the k-th wrapped call (malloc, socket, send,
fsync, SSL_read_ex, ...) fails for k = 1..40 and then every 7th k up to N.
Needs build/fault-san/sockit (`make FAULT=1 SANITIZE=1`; `make test` builds
it): without it the test fails, it is never skipped. `make torture` runs
every k."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torture"))
import torture  # noqa: E402

CAP, STRIDE = 40, 7


@pytest.mark.parametrize("scenario", torture.scenarios(), ids=lambda s: s.name)
def test_torture_sample(scenario):
    assert os.access(torture.SOCKIT, os.X_OK), (
        f"{torture.SOCKIT} is missing: build it with make FAULT=1 SANITIZE=1")
    n, ks, fired, bad = torture.torture(scenario, CAP, STRIDE, jobs=2)
    assert not bad, "\n".join(torture.describe(scenario.name, r) for r in bad)
    assert n > 0 and ks, "the counting run made no wrapped call"
    assert fired > 0, "no k made a call fail: the shim is not linked in"
