"""Shared fixtures of the infrastructure tests: template.yaml raw and SAM-transformed (tests/infrastructure/cfn.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .cfn import PARAMETER_VALUES, REGION, ROOT, TEMPLATE_PATH, load_template, plain, transform

__all__ = ["PARAMETER_VALUES", "REGION", "ROOT", "TEMPLATE_PATH", "plain"]

S3_FUNCTION = "S3TriggerFunction"
SCHEDULE_FUNCTION = "ScheduleTriggerFunction"
DISPATCHER_FUNCTION = "DispatcherFunction"
TRIGGER_FUNCTIONS = (S3_FUNCTION, SCHEDULE_FUNCTION)  # invoked by events; enqueue deferred starts
FUNCTIONS = (*TRIGGER_FUNCTIONS, DISPATCHER_FUNCTION)  # the runtime: Polytomic, the secret, the table
WIRING_FUNCTION = "RouteWiringFunction"  # the deploy-time custom resource: schedules only
# Run outcomes (tests/infrastructure/test_outcomes_template.py): not in FUNCTIONS, whose tests hold
# the trigger and dispatch path to its grants; the poller reads the API key, the webhook only its
# own secret, and the webhook exists only with WebhookReceiver Enabled.
POLLER_FUNCTION = "PollerFunction"
WEBHOOK_FUNCTION = "WebhookFunction"
OUTCOME_FUNCTIONS = (POLLER_FUNCTION, WEBHOOK_FUNCTION)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml as written, parsed by cfn-lint's loader (understands !Ref, !GetAtt, ...)."""
    return load_template()


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """template.yaml after the SAM transform: plain CloudFormation, as deployed."""
    return transform(template)
