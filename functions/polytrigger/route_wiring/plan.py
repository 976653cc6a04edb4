"""What a deployment must wire for its routes to fire: the buckets to listen to and the schedules to create.

The routes file is the one place this is written. The stack's route wiring function
(`flows/on_wiring_request.py`) reconciles it on every deploy, `polytrigger validate` prints it, and
the build (`tools/routes_build.py`) refuses routes no deployment could wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from polytrigger.route_wiring.deadline_schedules import deadline_problems
from polytrigger.route_wiring.reconcile_schedules import reconcile_problems, reconciled_buckets
from polytrigger.routing.model import Routes
from polytrigger.routing.schedules import ScheduleSpec, known_zone

# EventBridge's default limit on a rule's event pattern (characters; a quota increase allows 4096);
# the S3 rule lists every bucket in one.
MAX_PATTERN_CHARS = 2048
MAX_ANSWER_BYTES = 4096  # CloudFormation's limit on a custom resource's answer
# The answer beside its Data at their longest: status, reason, the stack's, request's and resource's ids.
ANSWER_ENVELOPE_BYTES = 1024
_DIGEST_CHARS = 64  # SHA-256 hex
_PATTERN_OVERHEAD = len(
    json.dumps(
        {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"], "detail": {"bucket": {"name": []}}}
    )
)


@dataclass(frozen=True, slots=True)
class Plan:
    buckets: tuple[str, ...]  # sorted
    schedules: tuple[ScheduleSpec, ...]  # the stack creates these, sorted by name
    elsewhere: tuple[str, ...]  # schedules routes name but do not define: made outside the stack, sorted
    manifests: tuple[str, ...] = ()  # `bucket/prefix*` of every gate's manifest: what the functions may read, sorted
    reconciled: tuple[str, ...] = ()  # the buckets some route reconciles: what the reconciler may list, sorted


def plan(routes: Routes) -> Plan:
    specs = {route.schedule_spec.name: route.schedule_spec for route in routes.routes if route.schedule_spec}
    named = {route.schedule for route in routes.routes if route.schedule}
    manifests = {
        f"{route.bucket}/{route.gate.manifest.key.split('{', 1)[0]}*"
        for route in routes.routes
        if route.gate is not None and route.gate.manifest is not None
    }
    return Plan(
        buckets=tuple(sorted({route.bucket for route in routes.routes if route.bucket} | _gate_buckets(routes))),
        schedules=tuple(specs[name] for name in sorted(specs)),
        elsewhere=tuple(sorted(named - set(specs))),
        manifests=tuple(sorted(manifests)),
        reconciled=reconciled_buckets(routes),
    )


def _gate_buckets(routes: Routes) -> set[str]:
    """Other buckets a gate lists keys in: their objects must reach the S3 function too."""
    return {item.bucket for route in routes.routes if route.gate is not None for item in route.gate.keys if item.bucket}


def plan_problems(routes: Routes) -> list[str]:
    """What no deployment could wire although each route is valid on its own: an unknown time zone (where a
    time zone database is at hand: the build, `validate`, the wiring; never a cold start), a schedule named
    as a route's arrival deadline schedule is, too many buckets
    for the S3 rule's pattern, or for the wiring's answer to CloudFormation."""
    found = plan(routes)
    problems: list[str] = []
    checked: set[str] = set()
    for route in routes.routes:
        spec = route.schedule_spec
        if spec is None or spec.name in checked:
            continue
        checked.add(spec.name)
        if not known_zone(spec.timezone):
            problems.append(
                f"route '{route.name}': schedule.timezone: {spec.timezone!r} is not a time zone the IANA database knows"
            )
    problems.extend(deadline_problems(routes, {spec.name for spec in found.schedules}))
    problems.extend(reconcile_problems(routes, {spec.name for spec in found.schedules}))
    size = _PATTERN_OVERHEAD + sum(len(json.dumps(bucket)) + 2 for bucket in found.buckets)
    if size > MAX_PATTERN_CHARS:
        problems.append(
            f"the routes name {len(found.buckets)} buckets; EventBridge's S3 rule can list about"
            f" {len(found.buckets) * MAX_PATTERN_CHARS // size} of them in its {MAX_PATTERN_CHARS}-character"
            " event pattern: deploy a second stack for the rest"
        )
    else:
        answer = ANSWER_ENVELOPE_BYTES + len(json.dumps(answer_data(found, "0" * _DIGEST_CHARS, "")).encode())
        if answer > MAX_ANSWER_BYTES:
            problems.append(
                f"the routes name {len(found.buckets)} buckets, so the wiring's answer to CloudFormation would be"
                f" about {answer} bytes, over its limit of {MAX_ANSWER_BYTES}: deploy a second stack for some of them"
            )
    return problems


def answer_data(found: Plan, schedules_digest: str, changes: str, partition: str = "aws") -> dict[str, str]:
    """What the wiring answers CloudFormation (`Fn::GetAtt RouteWiring.<name>`): the buckets, which the S3
    rule needs by name (their length is bounded by its pattern), the manifests' objects the functions may
    read (ARNs), and of the schedules only counts and a digest, so the answer stays within CloudFormation's
    4 KB however many schedules the routes define."""
    return {
        "Buckets": bucket_list(found),
        "ManifestObjects": ",".join(f"arn:{partition}:s3:::{where}" for where in found.manifests)
        or f"arn:{partition}:s3:::{NO_MANIFEST}",
        "ReconciledBuckets": ",".join(f"arn:{partition}:s3:::{bucket}" for bucket in found.reconciled)
        or f"arn:{partition}:s3:::{NO_BUCKET}",
        "ScheduleCount": str(len(found.schedules)),
        "SchedulesMadeElsewhereCount": str(len(found.elsewhere)),
        "SchedulesDigest": schedules_digest,
        "Changes": changes,
    }


NO_MANIFEST = "no-manifest.invalid/none"  # an ARN the policy can name when no gate reads a manifest
NO_BUCKET = "no-bucket.invalid"  # ... and when no route reconciles a bucket
BUCKETS_NONE = ""  # what the rule is given when no route names a bucket: no bucket has an empty name


def bucket_list(found: Plan) -> str:
    """The buckets as the template's rule takes them (`Fn::Split` on commas)."""
    return ",".join(found.buckets) if found.buckets else BUCKETS_NONE
