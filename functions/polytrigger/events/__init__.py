"""Raw Lambda events → `Trigger`s: pure functions, no AWS calls, one exception type for every bad shape.

`s3` covers the S3 handler's shapes (notification, EventBridge, SNS, SQS bodies); `schedule` the schedule
handler's (Scheduler Input, "Scheduled Event" envelopes); `groups` groups an event's triggers as the functions
do; `correlation` and `describe` read a delivery's id and a one-line description without parsing it.
See `events/README.md` for samples of each.
"""

from polytrigger.events._common import UnsupportedEvent
from polytrigger.events.groups import trigger_groups
from polytrigger.events.s3 import is_sqs_batch, s3_triggers, sqs_body_triggers
from polytrigger.events.schedule import schedule_trigger

__all__ = ["UnsupportedEvent", "is_sqs_batch", "s3_triggers", "schedule_trigger", "sqs_body_triggers", "trigger_groups"]
