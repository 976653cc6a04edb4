"""The local stack: moto in server mode, DynamoDB Local, the fake Polytomic, and Lambda's own parts.

`stack` (`LocalStack`: every server started, wired together, and the environment the handlers read),
`moto_server`, `dynamodb_local`, and what Lambda does around a handler: `lambda_context`,
`lambda_async` (asynchronous invocation with retries and an on-failure destination), `lambda_versions`
(Lambda's Invoke API for a function's published versions), `function_url`,
`cfn_answers` (CloudFormation's answer URL), and `dispatch_pump`: the dispatch queue and the one pump that
plays the SQS event source mapping for it (the demo, the reliability run and the tests), on real time or
on the stack's clock (`StackClock`: the fake Polytomic's clock, which polytrigger then reads too).

`python -m local.stack` (`make stack`, `serve`) keeps a stack up in the foreground for a person to ask
questions of; `python -m local.stack land` / `poll` (`land`) give it something to answer about.

`LocalStack` is imported on first use: `land` and `poll`, which only talk to a running stack, start
without importing moto's server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.stack.stack import MOTO_SERVICES, LocalStack

__all__ = ["MOTO_SERVICES", "LocalStack"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from local.stack import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
