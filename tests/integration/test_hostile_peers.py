"""Hostile peers (tests/hostile/peers.py) against `sockit serve`, one test per
configuration: zero sanitizer reports, the server alive, fds back to the
baseline, the good client always answered exactly.

The full run (about 12 s per configuration) is for the sanitizer build, where
memory errors show; the normal build runs a short version (2 s) of the same
checks. The seed is printed (and in the failure message): replay with
`tests/hostile/peers.py --config NAME --seed N`; HOSTILE_SEED fixes it here."""
import os
import random
import sys

import pytest

from conftest import SANITIZED, SOCKIT

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "hostile"))
import peers  # noqa: E402

SAN_BUILD = SANITIZED or os.environ.get("SOCKIT_BUILD", "").rstrip("/").endswith("/san")
SECONDS = float(os.environ.get("HOSTILE_SECONDS", 12 if SAN_BUILD else 2))
SEED = int(os.environ.get("HOSTILE_SEED", random.randrange(1 << 32)))


@pytest.mark.parametrize("config", list(peers.CONFIGS))
def test_hostile_peers(config):
    try:
        sessions, exchanges = peers.run(SOCKIT, config, SECONDS, SEED)
    except peers.Failure as e:
        pytest.fail(str(e), pytrace=False)
    assert sessions > 0 and exchanges > 0
