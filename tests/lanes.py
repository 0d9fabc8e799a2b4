"""Two lanes for `make test`: pytest-xdist runs the tiers in two worker processes at once, each
on a stack of its own, because one lane alone leaves a core idle about a third of the time
(kernels starting, streams waiting for a trigger, services answering).

    lane a  unit, jars, spark, services
    lane b  notebooks, browser, faults

The first worker's stack is at LAKEHOUSE_TEST_PORT_OFFSET (state in .lakehouse/test), the second's
LANE_OFFSET ports further (state in .lakehouse/test-500); either worker may take either lane.

`make test` asks for them (`-n 2`): the scheduler below hands each worker one lane whole, its
tiers in order, so a lane pays each start-up once. A plain `pytest` runs everything in one
process, on the first stack, as before.
The faults tier restarts and kills only its own lane's services; the published outputs (the
faults table, the browser's screenshots) go to the first stack's folder whatever lane wrote them.
"""

from __future__ import annotations

import os
from pathlib import Path

LANES = {"unit": "a", "jars": "a", "spark": "a", "services": "a", "notebooks": "b", "browser": "b", "faults": "b"}
# Past every port of the first stack (19000-19102, 11527, 14041) and clear of the offsets the
# docs suggest for a second checkout (1000, 2000, 3000).
LANE_OFFSET = 500


def lane_of(tier: str) -> str:
    return LANES[tier]


def lane_of_test(nodeid: str) -> str:
    from tests.tiers import tier_of

    return lane_of(tier_of(Path(nodeid.split("::", 1)[0])) or "unit")


def make_scheduler(config, log):
    """pytest-xdist's scheduler by scope, with a lane for a scope: one worker takes all of it."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane_of_test(nodeid)

    return LaneScheduling(config, log)


def worker_index(environ=os.environ) -> int:
    """0 outside pytest-xdist and in its first worker ("gw0"), 1 in the second ("gw1"), ..."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def port_offset(environ=os.environ) -> int:
    """This process's port offset: the user's LAKEHOUSE_TEST_PORT_OFFSET, moved per lane."""
    return int(environ.get("LAKEHOUSE_TEST_PORT_OFFSET", "0") or 0) + LANE_OFFSET * worker_index(environ)


def base_offset(environ=os.environ) -> int:
    """The first lane's offset: where the suite's published outputs go."""
    return int(environ.get("LAKEHOUSE_TEST_PORT_OFFSET", "0") or 0)
