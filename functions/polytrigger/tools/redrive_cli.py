"""`polytrigger redrive`'s command line: which queues, which functions, what the dedup TTL is.

With ``--stack NAME`` everything comes from the stack (``describe_stacks``): the functions that may
be invoked (outputs ``S3TriggerFunctionArn``, ``ScheduleTriggerFunctionArn``), both dead-letter
queues, the dispatch queue and the dedup TTL (parameter ``IdempotencyTtlSeconds``). Without it,
``--queue-url`` and ``--function`` say the same; with neither stack nor function it refuses to run.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlparse

from polytrigger.tools.redrive import (
    FORCE_MEANS,
    LambdaApi,
    Policy,
    SqsApi,
    Summary,
    error_text,
    redrive,
)
from polytrigger.tools.redrive_sources import (
    DEFAULT_DEDUP_TTL,
    CloudFormationApi,
    Stack,
    StackError,
    read_stack,
    same_function,
)


def queue_region(queue_url: str) -> str | None:
    """The region in an SQS queue URL (``https://sqs.eu-west-1.amazonaws.com/...``), if it shows one."""
    match = re.match(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.", urlparse(queue_url).hostname or "")
    return match.group(1) if match else None


def default_clients(queue_url: str) -> tuple[SqsApi, LambdaApi]:
    """boto3 clients from the usual credential chain; the region defaults to the queue's."""
    import boto3

    session = boto3.session.Session()
    region = session.region_name or queue_region(queue_url)
    sqs: Any = session.client("sqs", region_name=region)
    lambda_api: Any = session.client("lambda", region_name=region)
    return sqs, lambda_api


def default_cloudformation() -> CloudFormationApi:
    """A boto3 CloudFormation client from the usual credential chain and the configured region."""
    import boto3

    client: CloudFormationApi = boto3.session.Session().client("cloudformation")
    return client


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1 (got {text!r})")
    return int(text)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``redrive`` subcommand to the CLI's subparsers; returns it (for its usage errors)."""
    command: argparse.ArgumentParser = commands.add_parser(
        "redrive",
        help="send what the dead-letter queues hold back where it belongs",
        description=(
            "Invoke each parked event again, asynchronously, on one of the stack's functions, and send each "
            "parked dispatch message back to the dispatch queue; delete a message once that is done. "
            "Unreadable messages, refused invocations, events for other functions and events older than the "
            "dedup TTL stay in the queue. Example: polytrigger redrive --stack polytrigger --dry-run"
        ),
    )
    command.add_argument(
        "--stack",
        metavar="NAME",
        help="the polytrigger stack: its functions are the only ones invoked; its outputs give the queues "
        "(both dead-letter queues unless --queue-url) and its IdempotencyTtlSeconds the dedup TTL",
    )
    command.add_argument("--queue-url", help="re-drive only this queue (e.g. the stack output DeadLetterQueueUrl)")
    command.add_argument(
        "--function",
        action="append",
        metavar="NAME_OR_ARN",
        help="re-drive only the messages for this function (repeatable); without --stack, the only functions "
        "that may be invoked. A message naming no function goes to it when it is the only one; dispatch "
        "messages go back to the dispatch queue all the same",
    )
    command.add_argument(
        "--dispatch-queue-url", help="where dispatch messages go back to (default: the stack output DispatchQueueUrl)"
    )
    command.add_argument(
        "--dedup-ttl",
        type=_positive,
        metavar="SECONDS",
        help=f"events older than this stay in the queue (default: the stack's IdempotencyTtlSeconds, else "
        f"{DEFAULT_DEDUP_TTL})",
    )
    command.add_argument(
        "--force", action="store_true", help=f"re-drive events older than the dedup TTL too: {FORCE_MEANS}"
    )
    command.add_argument("--max", type=_positive, metavar="N", help="handle at most N messages")
    command.add_argument("--dry-run", action="store_true", help="list the messages; invoke, send and delete nothing")
    return command


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not args.stack and not args.queue_url:
        return "which queue? pass --stack NAME (both dead-letter queues) or --queue-url URL"
    if not args.stack and not args.function:
        return (
            "redrive invokes only the stack's own functions, so it must know them: pass --stack NAME "
            "(recommended), or --function NAME_OR_ARN for each function it may invoke"
        )
    return None


def _plan(args: argparse.Namespace, stack: Stack | None) -> tuple[list[tuple[str, str]], Policy]:
    """The queues to re-drive (label, URL) and what the run may do."""
    only = tuple(args.function or ())
    if stack is None:
        policy = Policy(only, only, args.dispatch_queue_url, args.dedup_ttl or DEFAULT_DEDUP_TTL, args.force)
        return [("queue", args.queue_url)], policy
    policy = Policy(
        stack.functions,
        only,
        args.dispatch_queue_url or stack.dispatch_queue_url,
        args.dedup_ttl or stack.dedup_ttl,
        args.force,
        stack.name,
    )
    if args.queue_url:
        return [("queue", args.queue_url)], policy
    queues = [("DeadLetterQueueUrl", stack.dead_letter_queue_url)]
    queues.append(("DispatchDeadLetterQueueUrl", stack.dispatch_dead_letter_queue_url))
    return [(label, url) for label, url in queues if url], policy


def run(
    args: argparse.Namespace,
    *,
    clients: Callable[[str], tuple[SqsApi, LambdaApi]] | None = None,
    cloudformation: Callable[[], CloudFormationApi] | None = None,
    usage_error: Callable[[str], NoReturn] | None = None,
) -> int:
    """0: every message handled was re-driven (or would be, or skipped); 1: some stay in the queue; 2: error."""
    from botocore.exceptions import BotoCoreError, ClientError

    def usage(problem: str) -> int:
        if usage_error is not None:
            usage_error(problem)  # argparse: prints the usage and exits 2
        print(f"polytrigger redrive: {problem}", file=sys.stderr)
        return 2

    if problem := _usage_problem(args):
        return usage(problem)
    stack = None
    if args.stack:
        try:
            stack = read_stack((cloudformation or default_cloudformation)(), args.stack)
        except (BotoCoreError, ClientError, StackError) as error:
            print(f"polytrigger: cannot read the stack {args.stack}: {error_text(error)}", file=sys.stderr)
            return 2
        strangers = [name for name in args.function or () if not any(same_function(f, name) for f in stack.functions)]
        if strangers:
            return usage(f"--function {strangers[0]} is not one of stack {stack.name}'s functions")
    queues, policy = _plan(args, stack)
    if not queues:
        print(f"polytrigger: stack {args.stack} has no dead-letter queue output", file=sys.stderr)
        return 2
    summary, started = Summary(), time.time()
    try:
        sqs, lambda_api = (clients or default_clients)(queues[0][1])
        for label, url in queues:
            if len(queues) > 1:
                print(f"{label}: {url}")
            left = None if args.max is None else args.max - len(summary.results)
            if left is not None and left < 1:
                break
            part = redrive(
                url,
                sqs=sqs,
                lambda_api=lambda_api,
                policy=policy,
                max_messages=left,
                dry_run=args.dry_run,
                clock=lambda: started,  # one start for both queues: what either run parks waits for the next
            )
            summary.results.extend(part.results)
    except (BotoCoreError, ClientError) as error:
        print(f"polytrigger: cannot read the queue: {error_text(error)}", file=sys.stderr)
        return 2
    print(summary.render() + (" (dry run: nothing invoked, sent or deleted)" if args.dry_run else ""))
    return 0 if summary.clean else 1
