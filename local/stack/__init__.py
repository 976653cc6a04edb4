"""The local stack: moto in server mode, DynamoDB Local, the fake Polytomic, and Lambda's own parts.

`stack` (`LocalStack`: every server started, wired together, and the environment the handlers read),
`moto_server`, `dynamodb_local`, and what Lambda does around a handler: `lambda_context`,
`lambda_async` (asynchronous invocation with retries and an on-failure destination), `lambda_versions`
(Lambda's Invoke API for a function's published versions), `function_url`,
`cfn_answers` (CloudFormation's answer URL), and `dispatch_pump`: the dispatch queue and the one pump that
plays the SQS event source mapping for it (the demo, the reliability run and the tests), on real time or
on the stack's clock (`StackClock`: the fake Polytomic's clock, which polytrigger then reads too).
"""

from local.stack.stack import MOTO_SERVICES, LocalStack

__all__ = ["MOTO_SERVICES", "LocalStack"]
