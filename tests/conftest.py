import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import MODES, Initd  # noqa: E402


@pytest.fixture(params=list(MODES))
def mode(request):
    """Every PID 1 test runs as root PID 1, rootless PID 1 and as a subreaper."""
    return request.param


@pytest.fixture
def initd():
    """Start initd with initd(args, mode=...); everything is killed by pid at the end."""
    started = []

    def start(args, **kwargs):
        proc = Initd(args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def started():
    """A list to append Watched/Initd runs to; every process of theirs is
    killed by pid at the end."""
    runs = []
    yield runs
    for run in runs:
        run.stop()
