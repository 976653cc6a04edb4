"""How a policy says that an action failed, and whether a later attempt can fix it.

Both are raised inside the dedup call, so the action is not remembered, and turned into a
`failed` outcome at the dedup boundary (`Starts.once`).
"""

from __future__ import annotations

from polytrigger.core.actions import Action
from polytrigger.core.outcomes import Outcome


class RetryLater(Exception):
    """A later attempt can fix it: the outcome is retryable, so the invocation (or the message) fails and AWS retries."""


class Refused(Exception):
    """Polytomic refused it; retrying cannot help until a person fixes the cause."""


def failed(action: Action, error: RetryLater | Refused) -> Outcome:
    if isinstance(error, RetryLater):
        return retryable(action, str(error))
    return Outcome.of(action, "failed", reason=str(error))


def retryable(action: Action, reason: str) -> Outcome:
    return Outcome.of(action, "failed", reason=f"{reason}; the event will be retried", retryable=True)
