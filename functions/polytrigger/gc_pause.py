"""The garbage collector, paused while a Lambda container initialises.

Why: initialisation allocates a few hundred thousand long-lived objects (the modules, botocore's
service models), and every automatic collection on the way walks all of them again: about 35 ms
of a 280 ms cold start on the development machine, for no garbage worth collecting. Once the
function's flow is built (`bootstrap`), `gc.freeze()` moves everything made so far out of the collector's sight for good,
so later collections only look at what invocations allocate, and the collector is switched on.

Only inside Lambda (LAMBDA_TASK_ROOT is set): tests, the CLI and the demo keep the collector as is.
"""

from __future__ import annotations

import gc
import os

_paused = False


def pause() -> None:
    """At the start of a handler's import, inside Lambda; a collector already off is left to its owner."""
    global _paused  # noqa: PLW0603 - once per container
    if os.environ.get("LAMBDA_TASK_ROOT") and gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Once the container's flow is built (or failed to build): freeze what init made, collect again."""
    global _paused  # noqa: PLW0603
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def paused() -> bool:
    return _paused
