"""The local stack: moto in server mode, DynamoDB Local, the fake Polytomic, and Lambda's own parts.

`stack` (`LocalStack`: every server started, wired together, and the environment the handlers read),
`moto_server`, `dynamodb_local`, and what Lambda does around a handler: `lambda_context`,
`lambda_async` (asynchronous invocation with retries and an on-failure destination), `function_url`,
`cfn_answers` (CloudFormation's answer URL), `dispatch_pump` (the SQS event source mapping).
"""

from local.stack.stack import MOTO_SERVICES, LocalStack

__all__ = ["MOTO_SERVICES", "LocalStack"]
