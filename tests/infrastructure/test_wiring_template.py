"""The template's route wiring: what fires comes from the routes (RouteWiring), least privilege throughout."""

from __future__ import annotations

from typing import Any

from polytrigger.routing.deployed import DEPLOYED_ROUTES_KEY

from .cfn import as_list, get_att_arn, grants, key, of_type, role_id, role_statements, rule_for
from .conftest import DLQ_ARN, GROUP_SCHEDULES, S3_FUNCTION, SCHEDULE_FUNCTION, WIRING_FUNCTION


def plan(transformed: dict[str, Any]) -> dict[str, Any]:
    (resource,) = of_type(transformed, "Custom::RouteWiring").values()
    return dict(resource)


def test_no_bucket_or_schedule_is_written_in_the_template(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    schedules = of_type(transformed, "AWS::Scheduler::Schedule")
    assert list(schedules) == ["PollerSchedule"]  # the outcome poller's own; the routes' are RouteWiring's
    assert schedules["PollerSchedule"]["Properties"].get("GroupName", "default") == "default"
    _, rule = rule_for(transformed, S3_FUNCTION)
    assert rule["Properties"]["EventPattern"]["detail"]["bucket"]["name"] == {
        "Fn::Split": [",", {"Fn::GetAtt": ["RouteWiring", "Buckets"]}]
    }
    assert "Events" not in template["Resources"][SCHEDULE_FUNCTION]["Properties"]


def test_route_wiring_runs_the_version_this_deploy_published(transformed: dict[str, Any]) -> None:
    properties = plan(transformed)["Properties"]
    assert properties["ServiceToken"] == get_att_arn(WIRING_FUNCTION)  # CloudFormation refuses a changed token
    version_id = properties["CodeVersion"]["Ref"]
    version = transformed["Resources"][version_id]
    assert version["Type"] == "AWS::Lambda::Version"
    assert version["Properties"]["FunctionName"] == {"Ref": WIRING_FUNCTION}
    assert properties["ScheduleGroup"] == {"Ref": "ScheduleGroup"}
    assert properties["TargetArn"] == get_att_arn(SCHEDULE_FUNCTION)
    assert properties["DeadlineTargetArn"] == get_att_arn("PollerFunction")  # the routes' arrival deadlines
    assert properties["RoleArn"] == get_att_arn("ScheduleInvokeRole")
    assert properties["DeadLetterArn"] == DLQ_ARN
    assert properties["State"] == {"Ref": "SchedulesState"}


def test_route_wiring_waits_for_the_permission_to_hand_a_rollback_to_its_version(transformed: dict[str, Any]) -> None:
    assert "RouteWiringInvokesItsVersions" in as_list(plan(transformed)["DependsOn"])
    policy = transformed["Resources"]["RouteWiringInvokesItsVersions"]["Properties"]
    assert policy["Roles"] == [{"Ref": role_id(transformed, WIRING_FUNCTION)}]
    assert grants(as_list(policy["PolicyDocument"]["Statement"])) == {
        ("lambda:InvokeFunction", key({"Fn::Sub": "${RouteWiringFunction.Arn}:*"}))
    }


def test_the_wiring_function_passes_the_schedules_role_only_to_the_scheduler(transformed: dict[str, Any]) -> None:
    """Its exact grants (its group's schedules, that role, its own versions): test_functions.py."""
    statements = role_statements(transformed["Resources"][role_id(transformed, WIRING_FUNCTION)])
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_schedules_act_as_a_role_that_may_only_invoke_the_schedule_function_the_poller_the_reconciler_and_park(
    transformed: dict[str, Any],
) -> None:
    role = transformed["Resources"]["ScheduleInvokeRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": GROUP_SCHEDULES},  # only this stack's schedules may use it
    }
    assert "ManagedPolicyArns" not in role
    assert grants(role_statements({"Properties": role})) == {
        ("lambda:InvokeFunction", key(get_att_arn(SCHEDULE_FUNCTION))),
        ("lambda:InvokeFunction", key(get_att_arn("PollerFunction"))),  # at the routes' arrival deadlines
        ("lambda:InvokeFunction", key(get_att_arn("ReconcilerFunction"))),  # the routes' reconciliation
        ("sqs:SendMessage", key(DLQ_ARN)),
    }


def test_the_group_belongs_to_the_stack(transformed: dict[str, Any]) -> None:
    (group,) = of_type(transformed, "AWS::Scheduler::ScheduleGroup").values()
    # Named after the stack: two stacks never share a group, and the deployer's policy can scope it.
    assert group["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-schedules"}


def test_outputs_say_what_was_wired(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["WiredBuckets"]["Value"] == {"Fn::GetAtt": ["RouteWiring", "Buckets"]}
    # Counts, not names: CloudFormation refuses an answer over 4 KB, and the routes may define many schedules.
    assert outputs["WiredSchedules"]["Value"] == {"Fn::GetAtt": ["RouteWiring", "ScheduleCount"]}
    assert outputs["SchedulesMadeElsewhere"]["Value"] == {"Fn::GetAtt": ["RouteWiring", "SchedulesMadeElsewhereCount"]}
    assert outputs["ScheduleGroupName"]["Value"] == {"Ref": "ScheduleGroup"}


def test_the_wiring_function_may_write_only_the_deployed_routes_item(transformed: dict[str, Any]) -> None:
    """It records the routes it wired for `status` and `explain`: one item, by its key, never a dedup record."""
    statements = role_statements(transformed["Resources"][role_id(transformed, WIRING_FUNCTION)])
    (table,) = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert as_list(table["Action"]) == ["dynamodb:PutItem"]  # no read, no update, no delete, no index
    assert table["Resource"] == get_att_arn("IdempotencyTable")
    assert table["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [DEPLOYED_ROUTES_KEY]},  # the key the code writes
        "Null": {"dynamodb:LeadingKeys": "false"},  # ForAllValues alone holds for a request naming no key
    }
