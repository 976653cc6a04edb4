"""Shared fixtures of the infrastructure tests, and the table of the template's functions.

template.yaml raw and SAM-transformed: tests/infrastructure/cfn.py. A check that holds for every
function (or every function with some property) is written once, in test_functions.py or where
its subject lives, and parametrized over FUNCTIONS with `each_function`: a new function is one
row here, and test_functions.py fails until it has one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from .cfn import (
    NO_VALUE,
    PARAMETER_VALUES,
    REGION,
    ROOT,
    TEMPLATE_PATH,
    get_att_arn,
    key,
    load_template,
    plain,
    transform,
)

__all__ = ["PARAMETER_VALUES", "REGION", "ROOT", "TEMPLATE_PATH", "plain"]

S3_FUNCTION = "S3TriggerFunction"
SCHEDULE_FUNCTION = "ScheduleTriggerFunction"
DISPATCHER_FUNCTION = "DispatcherFunction"
WIRING_FUNCTION = "RouteWiringFunction"  # the deploy-time custom resource: schedules only
POLLER_FUNCTION = "PollerFunction"
RECONCILER_FUNCTION = "ReconcilerFunction"
WEBHOOK_FUNCTION = "WebhookFunction"

METRICS_NAMESPACE = "Polytrigger"  # Globals' POWERTOOLS_METRICS_NAMESPACE: where the functions' metrics go
SERVICE = "polytrigger"  # Globals' POWERTOOLS_SERVICE_NAME: Powertools' one default dimension, `service`

Grant = tuple[str, str]  # (action, resource as cfn.key writes it)


def grant(action: str, resource: Any) -> Grant:
    return (action, key(resource))


API_KEY_SECRET = {"Ref": "PolytomicSecretArn"}
WEBHOOK_SECRET = {"Ref": "PolytomicWebhookSecretArn"}
DLQ_ARN = get_att_arn("DeadLetterQueue")
DISPATCH_QUEUE_ARN = get_att_arn("DispatchQueue")
DISPATCH_DLQ_ARN = get_att_arn("DispatchDeadLetterQueue")
GROUP_SCHEDULES = {
    "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*"
}
RUN_EVENT_BUS_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${RunEventBusName}"
}

READ_API_KEY = grant("secretsmanager:GetSecretValue", API_KEY_SECRET)
# The dedup records and debounce windows; the run ledger's runs, open runs and the poller's cursor.
USE_TABLE = frozenset(
    grant(f"dynamodb:{action}", get_att_arn("IdempotencyTable"))
    for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
)
# What failed for good is parked in the dead-letter queue: by the function itself (Sid ParkEvents)
# and by SAM's grant for Globals' on-failure destination, which every function has.
PARK = grant("sqs:SendMessage", DLQ_ARN)
# Deferred (after a 409) and debounced starts, and chained routes' starts.
ENQUEUE_STARTS = grant("sqs:SendMessage", DISPATCH_QUEUE_ARN)
PUBLISH_RUN_EVENTS = grant("events:PutEvents", RUN_EVENT_BUS_ARN)

TRIGGER_GRANTS = frozenset({READ_API_KEY, *USE_TABLE, PARK, ENQUEUE_STARTS})
# Gates: a manifest's entries written and looked up in batches; the manifests themselves read, and
# only they (RouteWiring answers their buckets and key prefixes from the routes).
READ_MANIFESTS = grant("s3:GetObject", {"Fn::Split": [",", {"Fn::GetAtt": ["RouteWiring", "ManifestObjects"]}]})
GATE_BATCHES = frozenset(
    grant(f"dynamodb:{action}", get_att_arn("IdempotencyTable")) for action in ("BatchWriteItem", "BatchGetItem")
)
S3_TRIGGER_GRANTS = TRIGGER_GRANTS | {READ_MANIFESTS, *GATE_BATCHES}
# The reconciler acts as the S3 function does on what it finds, and lists the reconciled buckets (only
# they: RouteWiring answers them from the routes). Its bucket grants are a policy of its own
# (ReconcilerListsRoutedBuckets): RouteWiring needs the function's ARN for its schedules.
LIST_RECONCILED = grant("s3:ListBucket", {"Fn::Split": [",", {"Fn::GetAtt": ["RouteWiring", "ReconciledBuckets"]}]})
RECONCILER_GRANTS = S3_TRIGGER_GRANTS | {LIST_RECONCILED}
# The dispatcher consumes the dispatch queue (the SQS poller of its event source mapping: what SAM's
# AWSLambdaSQSQueueExecutionRole grants on "*"), re-queues what must wait longer and parks expired
# deferrals in the dispatch dead-letter queue itself.
DISPATCHER_GRANTS = (
    TRIGGER_GRANTS
    | {
        grant(f"sqs:{action}", DISPATCH_QUEUE_ARN)
        for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
    }
    | {grant("sqs:SendMessage", DISPATCH_DLQ_ARN)}
)
# No secret: the wiring never calls Polytomic. It manages its group's schedules, passes them their
# role, hands a rollback's request to the version it names, and writes one item of the table (the
# routes as deployed; only that item: test_wiring_template.py).
WIRING_GRANTS = frozenset(
    {
        grant("dynamodb:PutItem", get_att_arn("IdempotencyTable")),
        grant("scheduler:ListSchedules", "*"),  # the Scheduler's List actions take no resource
        grant("scheduler:GetScheduleGroup", get_att_arn("ScheduleGroup")),
        *(
            grant(f"scheduler:{action}", GROUP_SCHEDULES)
            for action in ("GetSchedule", "CreateSchedule", "UpdateSchedule", "DeleteSchedule")
        ),
        grant("iam:PassRole", get_att_arn("ScheduleInvokeRole")),
        grant("lambda:InvokeFunction", {"Fn::Sub": "${RouteWiringFunction.Arn}:*"}),
        PARK,  # SAM's, for Globals' on-failure destination (on the alias)
    }
)
# The poller reads the API key, the webhook (which takes unauthenticated requests) only its own
# signing secret; both record endings, start chained routes and park what fails for good. They
# reach the run ledger's items only, never a dedup record (the items: test_outcomes_template.py).
USE_LEDGER = frozenset(
    grant(f"dynamodb:{action}", get_att_arn("IdempotencyTable")) for action in ("GetItem", "PutItem", "UpdateItem")
)
# The poller alone deletes (a promise once checked) and queries the table's `due` index (what it must
# look at, and only that).
QUERY_DUE = grant("dynamodb:Query", {"Fn::Sub": "${IdempotencyTable.Arn}/index/due"})
DELETE_PROMISES = grant("dynamodb:DeleteItem", get_att_arn("IdempotencyTable"))
# the poller also releases held starts (the dispatch queue) and parks those held past their limit
POLLER_GRANTS = frozenset(
    {
        READ_API_KEY,
        *USE_LEDGER,
        DELETE_PROMISES,
        QUERY_DUE,
        ENQUEUE_STARTS,
        PARK,
        grant("sqs:SendMessage", DISPATCH_DLQ_ARN),
        READ_MANIFESTS,  # a gate's timeout report names the manifest's missing entries
        grant("dynamodb:BatchGetItem", get_att_arn("IdempotencyTable")),
    }
)
WEBHOOK_GRANTS = frozenset({grant("secretsmanager:GetSecretValue", WEBHOOK_SECRET), *USE_LEDGER, ENQUEUE_STARTS, PARK})


@dataclass(frozen=True)
class Function:
    """A function of the template and what sets it apart; each default is what most functions have."""

    name: str  # its logical id
    handler: str
    log: str  # its log group's name after /aws/lambda/${AWS::StackName}/
    grants: frozenset[Grant]  # what its role may do, exactly, when no run event bus is given
    parks: bool = True  # parks what failed for good in DeadLetterQueue by its own policy (Sid ParkEvents)
    environment: Mapping[str, Any] = field(default_factory=dict)  # its variables beyond Globals'
    timeout: int = 60  # Globals'
    reserved: Any = None  # ReservedConcurrentExecutions as the template declares it; None: no reservation
    async_retries: int = 2  # Globals.EventInvokeConfig's: a failed asynchronous invocation's retries
    qualifier: str = "$LATEST"  # what its EventInvokeConfig applies to
    condition: str | None = None  # the template condition it exists under
    publishes: bool = False  # re-publishes run outcomes to RunEventBusName when one is given
    errors_alarm: bool = True  # an alarm on its Lambda Errors
    any_resource: frozenset[str] = frozenset()  # actions it may take on Resource "*" (they take no other)

    @property
    def log_group(self) -> str:
        return self.name.removesuffix("Function") + "LogGroup"


FUNCTIONS = (
    # S3TriggerConcurrency bounds bursts of uploads; 0 deploys without a reservation.
    Function(
        S3_FUNCTION,
        "polytrigger.handlers.s3.handler",
        "s3-trigger",
        S3_TRIGGER_GRANTS,
        reserved={"Fn::If": ["ReserveS3TriggerConcurrency", {"Ref": "S3TriggerConcurrency"}, NO_VALUE]},
    ),
    Function(SCHEDULE_FUNCTION, "polytrigger.handlers.schedule.handler", "schedule-trigger", TRIGGER_GRANTS),
    # Invoked by its SQS mapping (bounded by the mapping's MaximumConcurrency); parks in the dispatch DLQ.
    Function(
        DISPATCHER_FUNCTION, "polytrigger.handlers.dispatcher.handler", "dispatcher", DISPATCHER_GRANTS, parks=False
    ),
    # CloudFormation invokes its published version once per deploy; a failure shows on the stack's events.
    Function(
        WIRING_FUNCTION,
        "polytrigger.handlers.route_wiring.handler",
        "route-wiring",
        WIRING_GRANTS,
        parks=False,
        timeout=300,
        qualifier="live",
        errors_alarm=False,
        any_resource=frozenset({"scheduler:ListSchedules"}),
    ),
    # One poll at a time (the cursor is read and advanced by one invocation); a failed poll is not
    # retried but parked: the next firing polls again from the same cursor.
    Function(
        POLLER_FUNCTION,
        "polytrigger.handlers.poller.handler",
        "poller",
        POLLER_GRANTS,
        environment={
            "RUN_EVENT_BUS_NAME": {"Ref": "RunEventBusName"},
            "RUN_RECONCILE_AFTER_SECONDS": {"Ref": "RunReconcileAfterSeconds"},
        },
        reserved=1,
        async_retries=0,
        publishes=True,
    ),
    # One firing per reconciled route per period; a route's lease in the table keeps two from listing
    # it at once. A failed pass is not retried: the next firing goes on from the route's cursor.
    Function(
        RECONCILER_FUNCTION,
        "polytrigger.handlers.reconciler.handler",
        "reconciler",
        RECONCILER_GRANTS,
        timeout=300,
        async_retries=0,
    ),
    # Only with WebhookReceiver Enabled. Answered quickly or not at all (Polytomic waits); a flood of
    # unauthenticated requests runs at most WebhookConcurrency at once, never the account's pool.
    Function(
        WEBHOOK_FUNCTION,
        "polytrigger.handlers.webhook.handler",
        "webhook",
        WEBHOOK_GRANTS,
        environment={
            "POLYTOMIC_WEBHOOK_SECRET_ID": WEBHOOK_SECRET,
            "WEBHOOK_SIGNATURE": {"Ref": "WebhookSignatureEncoding"},
            "RUN_EVENT_BUS_NAME": {"Ref": "RunEventBusName"},
        },
        timeout=10,
        reserved={"Ref": "WebhookConcurrency"},
        condition="HasWebhook",
        publishes=True,
    ),
)
BY_NAME = {function.name: function for function in FUNCTIONS}


def each_function(where: Callable[[Function], bool] = lambda function: True) -> pytest.MarkDecorator:
    """Parametrize a test over the functions `where` holds for, each case named by its logical id."""
    chosen = [function for function in FUNCTIONS if where(function)]
    return pytest.mark.parametrize("function", chosen, ids=[function.name for function in chosen])


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml as written, parsed by cfn-lint's loader (understands !Ref, !GetAtt, ...)."""
    return load_template()


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """template.yaml after the SAM transform: plain CloudFormation, as deployed."""
    return transform(template)
