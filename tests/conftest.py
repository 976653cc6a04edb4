"""What the whole suite shares: the slow tests start first.

`make test` runs pytest on every core (pytest-xdist, `--dist loadscope`: a module's tests stay on one
worker, so its module fixtures and its worker's local stack are made once). A worker takes the next
module when it is free, so the modules marked `slow` (the scaled-down reliability run, the demo, the
built artifact) are put first: started last, one of them would leave a worker busy long after the
other ran out of work.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: each keeps its order
