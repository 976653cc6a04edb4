"""`polytrigger validate --check-buckets` against moto's S3: which routed buckets would never send an event."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from local.stack import LocalStack
from polytrigger.tools.validate import register, run

SYNC = "248df4b7-aa70-47b8-a036-33ac447e668d"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="polytrigger")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def routes_naming(path: Path, *buckets: str) -> Path:
    lines = ["routes:"]
    for bucket in buckets:
        lines += [
            f"  - name: land-{bucket}",
            f"    s3: {{bucket: {bucket}, key: '**'}}",
            f"    syncs: [{{id: {SYNC}}}]",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_bucket_says_whether_its_eventbridge_notifications_are_on(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = local_stack.client("s3")
    for bucket in ("check-on", "check-off"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket="check-on", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    routes = routes_naming(tmp_path / "routes.yaml", "check-on", "check-off", "check-missing")

    assert run(parse(["validate", str(routes), "--check-buckets"])) == 1

    out, err = capsys.readouterr()
    assert "  bucket check-on: EventBridge notifications on" in out.splitlines()
    problems = err.splitlines()
    assert problems[0] == "  bucket check-missing: cannot be checked (NoSuchBucket)"
    assert problems[1].startswith(
        "  bucket check-off: EventBridge notifications OFF, so no upload reaches polytrigger; turn them on: "
        "aws s3api get-bucket-notification-configuration --bucket check-off"
    )
    assert len(problems) == 2


def test_all_buckets_on_exits_0(local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket="check-all-on")
    s3.put_bucket_notification_configuration(
        Bucket="check-all-on", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )

    assert run(parse(["validate", str(routes_naming(tmp_path / "r.yaml", "check-all-on")), "--check-buckets"])) == 0
    assert capsys.readouterr().err == ""


def test_without_credentials_nothing_is_claimed(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)  # a fresh command line: no session from earlier tests

    assert run(parse(["validate", str(routes_naming(tmp_path / "r.yaml", "check-on")), "--check-buckets"])) == 1
    assert capsys.readouterr().err.startswith("--check-buckets could not ask S3: Unable to locate credentials")
