"""What the whole suite shares: the slow tests start first, and botocore's data files are parsed once.

`make test` runs pytest with one worker more than cores (pytest-xdist, `--dist loadscope`: a module's
tests stay on one worker, so its module fixtures and its worker's local stack are made once). A worker
takes the next module when it is free, so the modules marked `slow` (the scaled-down reliability run,
the demo, the built artifact) are put first: started last, one of them would leave a worker busy long
after the others ran out of work.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: each keeps its order


@pytest.fixture(scope="session", autouse=True)
def botocore_data_parsed_once() -> Iterator[None]:
    """One botocore data loader per test process, shared by every boto3 session.

    Each container a test builds makes its own boto3 session and clients, as in Lambda; a new session
    parses botocore's JSON service models and endpoints again (about 175 ms of CPU a container, and the
    suite builds hundreds). The parsed models are read-only data, so sessions share them here; nothing
    else of a session is shared.
    """
    import botocore.loaders
    import botocore.session

    original = botocore.session.create_loader
    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)
    try:
        yield
    finally:
        botocore.session.create_loader = original
