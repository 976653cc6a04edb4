"""Raw Lambda events → `Trigger`s: pure functions, no AWS calls, one exception type for every bad shape.

`s3_objects` covers the S3 function's shapes (notification, EventBridge, SNS, SQS bodies);
`schedule_firings` the schedule function's (Scheduler Input, "Scheduled Event" envelopes);
`function_url` the webhook's (a Function URL request: the body as sent, and its signature checked);
`groups` groups an event's triggers as the functions do; `correlation` and `describe` read a
delivery's id and a one-line description without parsing it; `readers` are the careful field
readers the parsers share. See `events/README.md` (repository root) for samples of each shape.
"""

from polytrigger.events.groups import trigger_groups
from polytrigger.events.readers import UnsupportedEvent
from polytrigger.events.s3_objects import is_sqs_batch, s3_triggers, sqs_body_triggers
from polytrigger.events.schedule_firings import schedule_trigger

__all__ = ["UnsupportedEvent", "is_sqs_batch", "s3_triggers", "schedule_trigger", "sqs_body_triggers", "trigger_groups"]
