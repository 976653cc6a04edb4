"""`polytrigger explain`: a dry run that needs no stack, no credentials and no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polytrigger.tools.cli import explain, main

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROUTES = ROOT / "functions" / "routes.yaml"


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POLYTOMIC_SECRET_ID", "IDEMPOTENCY_TABLE", "ROUTES_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTES", str(ROUTES))  # named, as a user names theirs: no note about the bundled example


def test_explain_lists_the_actions_a_schedule_would_take(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(EVENTS / "scheduler-input-nightly.json")]) == 0

    out = capsys.readouterr().out
    assert out.startswith("schedule nightly @ 2026-11-23T02:00:00Z\n")
    assert "route nightly-full: activate model sync 248df4b7-aa70-47b8-a036-33ac447e668d" in out
    assert 'route nightly-full: start model sync 248df4b7-aa70-47b8-a036-33ac447e668d {"resync": true}' in out


def test_explain_mirrors_the_handler_one_action_per_sync_per_event() -> None:
    event = json.loads((EVENTS / "s3-notification-multi.json").read_text(encoding="utf-8"))

    rows = explain(event, ROUTES)

    actions = [(row["route"], row["sync_id"]) for row in rows if row["route"]]
    assert len(actions) == len(set(actions)) == 3
    assert [row["trigger"] for row in rows if row["route"] is None] == [
        "s3://acme-landing/orders/2026/11/23/orders-0003+fix.csv (created)"
    ]
    assert all(len(row["idempotency_key"]) == 64 for row in rows if row["route"])


def test_explain_json_output_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", str(EVENTS / "sqs-s3-notifications.json")]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert {row["route"] for row in rows} == {"orders-landing", "customer-exports", "snapshot-removed"}


def test_explain_reports_an_unsupported_event_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(EVENTS / "unsupported-event.json")]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("polytrigger: event error: unsupported event shape")


def test_explain_reports_a_bad_routes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: x\n    schedule: nightly\n    syncs: [{id: not-a-uuid}]\n", encoding="utf-8")

    assert main(["explain", "--routes", str(routes), str(EVENTS / "scheduler-input-nightly.json")]) == 2

    assert "route 'x': syncs[0].id: must be a sync UUID (got 'not-a-uuid')" in capsys.readouterr().err


def test_explain_reports_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "no-such-event.json"]) == 2
    assert "cannot read no-such-event.json" in capsys.readouterr().err


def test_explain_an_s3_url_shows_the_actions_of_an_upload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "s3://acme-landing/exports/customers/Kunden März 2026 (final).csv"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("s3://acme-landing/exports/customers/Kunden März 2026 (final).csv (created)\n")
    assert "route customer-exports: start model sync 3c1f0e5d-9a2b-4c7d-8e6f-1a2b3c4d5e6f" in out
    assert "placeholder sequencer" in out


def test_explain_an_s3_url_deleted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", "s3://acme-landing/snapshots/s.parquet", "--deleted"]) == 0

    [row] = json.loads(capsys.readouterr().out)
    assert (row["trigger"], row["route"]) == ("s3://acme-landing/snapshots/s.parquet (deleted)", "snapshot-removed")


def test_explain_an_s3_url_no_route_matches_lists_near_misses_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "s3://acme-landing/snapshots/s.parquet"]) == 1

    out = capsys.readouterr().out
    assert "  -> no route matches: nothing would happen\n     closest routes:\n" in out
    assert "     - route snapshot-removed: event kind `created` not subscribed (events: deleted)\n" in out


def test_explain_a_schedule_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--schedule", "nightly", "--time", "2026-11-23T02:00:00Z"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("schedule nightly @ 2026-11-23T02:00:00Z\n")
    assert 'route nightly-full: start model sync 248df4b7-aa70-47b8-a036-33ac447e668d {"resync": true}' in out
    assert (
        "note: the stack creates schedule `nightly` from the routes file: cron(0 2 ? * TUE-FRI *) Europe/Berlin\n"
        in out
    )


def test_explain_a_schedule_made_elsewhere_says_polytrigger_does_not_create_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n  - name: by-hand\n    schedule: made-by-hand\n    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]\n"
    )

    assert main(["explain", "--routes", str(routes), "--schedule", "made-by-hand"]) == 0

    out = capsys.readouterr().out
    assert "note: `made-by-hand` is named bare (`schedule: made-by-hand`): polytrigger does not create it" in out
    assert '{"schedule": "made-by-hand", "time": "<aws.scheduler.scheduled-time>"}' in out


def test_explain_a_schedule_by_name_gives_the_same_keys_as_its_event(capsys: pytest.CaptureFixture[str]) -> None:
    main(["explain", "--json", "--schedule", "nightly", "--time", "2026-11-23T02:00:00Z"])
    by_name = json.loads(capsys.readouterr().out)
    main(["explain", "--json", str(EVENTS / "scheduler-input-nightly.json")])

    assert by_name == json.loads(capsys.readouterr().out)


def test_explain_a_schedule_defaults_to_now(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--schedule", "freeze"]) == 0

    assert capsys.readouterr().out.startswith("schedule freeze @ 20")


def test_explain_a_misspelt_schedule_offers_the_close_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--schedule", "nighty"]) == 1

    assert (
        "     - route nightly-full: schedule `nightly`, not `nighty` (did you mean nightly?)\n"
        in capsys.readouterr().out
    )


def test_explain_an_event_file_no_route_matches_lists_near_misses_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"schedule": "thaws", "time": "2026-11-23T02:00:00Z"}), encoding="utf-8")

    assert main(["explain", str(event)]) == 1

    out = capsys.readouterr().out
    assert "route weekend-thaw: schedule `thaw`, not `thaws` (did you mean thaw?)" in out
    assert "note:" not in out  # the event says what it is: nothing was made up


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give one of EVENT_FILE, s3://BUCKET/KEY, --schedule NAME or --route NAME --expect"),
        (["s3://acme-landing/x", "--schedule", "nightly"], "give one of"),
        (["events/s3-notification-created.json", "--deleted"], "--deleted goes with an s3:// URL"),
        (["s3://acme-landing/x", "--time", "2026-11-23T02:00:00Z"], "--time goes with --schedule"),
    ],
)
def test_explain_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["explain", *argv])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["s3://acme-landing/"], "s3://acme-landing/ names no object"),
        (["s3://acme-landing/" + "k" * 2000], "the key is 2000 bytes long; S3 keys are at most 1024 bytes"),
        (["s3://" + "b" * 2000 + "/k"], "not an S3 bucket name: 'bbbb"),
        (["--schedule", "nightly\n" + "x" * 2000], "not a schedule name"),
        (["--schedule", "nightly", "--time", "t" * 2000], "--time must be an ISO-8601 time"),
    ],
)
def test_explain_bad_input_is_one_short_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", *argv]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("polytrigger: argument error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert len(captured.err) < 200


def test_explain_a_hostile_key_is_taken_verbatim_and_shown_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "s3://acme-landing/orders/../x.csv"]) == 0  # S3 keys are not paths: no `..` resolving
    assert "route orders-landing" in capsys.readouterr().out

    assert main(["explain", "s3://acme-landing/../../etc/passwd\n\x1b[2J" + "a" * 900]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("s3://acme-landing/../../etc/passwd\\n\\x1b[2Jaaa")
    assert "\x1b" not in "".join(lines)
    assert all(len(line) < 300 for line in lines[1:])
    assert "(`..` vs `orders`)" in lines[3]


def test_explain_a_percent_escape_is_not_decoded_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "s3://acme-landing/exports/customers/a%20b.csv"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("s3://acme-landing/exports/customers/a%20b.csv (created)\n")
    assert "`%XX` is not decoded" in out


def test_explain_help_documents_the_forms_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["explain", "--help"])

    out = capsys.readouterr().out
    assert "s3://BUCKET/KEY [--deleted]" in out
    assert "--schedule NAME [--time T]" in out
    assert "exit status: 0 some action would be taken, 1 nothing would happen, 2 bad input" in out


def test_validate_is_a_subcommand_of_polytrigger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from polytrigger.settings import BUNDLED_ROUTES

    bad = tmp_path / "routes.yaml"
    bad.write_text("routes: []\n", encoding="utf-8")

    assert main(["validate", str(BUNDLED_ROUTES)]) == 0
    assert "7 routes" in capsys.readouterr().out
    assert main(["validate", str(bad)]) == 1
    assert "nothing would ever fire" in capsys.readouterr().err


SCHEDULES = """\
routes:
  - name: nightly-full
    schedule: {name: nightly, cron: "30 2 * * ? *", timezone: Europe/Berlin}
    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]
  - name: hourly-refresh
    schedule: {name: hourly, rate: 1h, flexible_window: 5m, timezone: Europe/Berlin}
    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]
  - name: launch
    schedule: {name: launch, at: "2026-12-24T18:00:00", timezone: America/New_York}
    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]
  - name: by-hand
    schedule: month-end
    syncs: [{id: 248df4b7-aa70-47b8-a036-33ac447e668d}]
"""


@pytest.fixture
def schedules(tmp_path: Path) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(SCHEDULES, encoding="utf-8")
    return str(path)


def test_explain_next_lists_firings_in_the_zone_and_in_utc_across_spring_forward(
    schedules: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --time without an offset is read in the schedule's zone; the night clocks skip 02:30 has no firing."""
    argv = ["explain", "--routes", schedules, "--schedule", "nightly", "--next", "3", "--time", "2026-03-28T00:00"]
    assert main(argv) == 0

    assert capsys.readouterr().out.splitlines() == [
        "schedule nightly: cron(30 2 * * ? *) Europe/Berlin (routes: nightly-full)",
        "the next 3 firings after Sat 2026-03-28 00:00 CET (+01:00) = 2026-03-27T23:00:00Z:",
        "  Sat 2026-03-28 02:30 CET (+01:00) = 2026-03-28T01:30:00Z",
        "  Sun 2026-03-29 02:30 does not exist in Europe/Berlin (clocks spring forward): the Scheduler skips it",
        "  Mon 2026-03-30 02:30 CEST (+02:00) = 2026-03-30T00:30:00Z",
        "  Tue 2026-03-31 02:30 CEST (+02:00) = 2026-03-31T00:30:00Z",
    ]


def test_explain_next_fires_once_when_clocks_fall_back_and_takes_a_time_with_its_offset(
    schedules: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", "--routes", schedules, "--schedule", "nightly", "--next", "2", "--time", "2026-10-24T12:00Z"]
    assert main(argv) == 0

    assert capsys.readouterr().out.splitlines()[1:] == [
        "the next 2 firings after Sat 2026-10-24 14:00 CEST (+02:00) = 2026-10-24T12:00:00Z:",
        "  Sun 2026-10-25 02:30 CEST (+02:00) = 2026-10-25T00:30:00Z",
        "  Mon 2026-10-26 02:30 CET (+01:00) = 2026-10-26T01:30:00Z",
    ]


def test_explain_next_of_a_rate_counts_from_the_start_and_says_so(
    schedules: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", "--routes", schedules, "--schedule", "hourly", "--next", "2", "--time", "2026-03-29T01:30"]
    assert main(argv) == 0

    assert capsys.readouterr().out.splitlines() == [
        "schedule hourly: rate(1 hour) Europe/Berlin (routes: hourly-refresh)",
        "  a rate counts from when the stack created the schedule, not from a clock time: shown from --time",
        "  each firing may come up to 5 minutes later (flexible window)",
        "the next 2 firings after Sun 2026-03-29 01:30 CET (+01:00) = 2026-03-29T00:30:00Z:",
        "  Sun 2026-03-29 03:30 CEST (+02:00) = 2026-03-29T01:30:00Z",
        "  Sun 2026-03-29 04:30 CEST (+02:00) = 2026-03-29T02:30:00Z",
    ]


def test_explain_next_as_json(schedules: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--routes", schedules, "--schedule", "launch", "--next", "5", "--time", "2026-12-01", "--json"]
    assert main(argv) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["after"] == "2026-12-01T05:00:00Z"  # midnight in New York
    assert document["firings"] == [{"local": "2026-12-24T18:00:00-05:00", "utc": "2026-12-24T23:00:00Z", "zone": "EST"}]


@pytest.mark.parametrize(
    ("schedule", "time", "first_line"),
    [
        ("launch", "2027-01-01T00:00:00Z", "at(2026-12-24T18:00:00) does not fire after 2027-01-01T00:00:00Z"),
        ("month-end", None, "schedule month-end is named bare (schedule: month-end): it is made elsewhere,"),
        ("nighty", None, "no route names schedule nighty"),
    ],
)
def test_explain_next_of_a_schedule_with_no_times_to_list_exits_1(
    schedules: str, schedule: str, time: str | None, first_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", "--routes", schedules, "--schedule", schedule, "--next", "3"]
    assert main(argv + (["--time", time] if time else [])) == 1

    out = capsys.readouterr().out
    assert first_line in out
    if schedule == "nighty":
        assert "     - route nightly-full: schedule `nightly`, not `nighty` (did you mean nightly?)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["s3://acme-landing/x", "--next", "3"], "--next goes with --schedule"),
        (["--schedule", "nightly", "--next", "0"], "must be a whole number from 1 to 1000 (got '0')"),
        (["--schedule", "nightly", "--next", "many"], "must be a whole number from 1 to 1000 (got 'many')"),
    ],
)
def test_explain_next_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["explain", *argv])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_explain_a_firing_at_a_time_without_offset_reads_it_in_the_schedules_zone(
    schedules: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "--routes", schedules, "--schedule", "nightly", "--time", "2026-11-23T02:30:00"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("schedule nightly @ 2026-11-23T01:30:00Z\n")
    assert out.endswith(
        "note: --time 2026-11-23T02:30:00 has no offset: read in Europe/Berlin, the schedule's zone"
        " (= 2026-11-23T01:30:00Z)\n"
    )


def registered_commands() -> list[str]:
    """The subcommands `main` registers, read from the parser it builds (caught before it parses anything)."""
    import argparse
    from unittest import mock

    built: list[argparse.ArgumentParser] = []

    class Built(Exception):
        pass

    def catch(parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        built.append(parser)
        raise Built

    with mock.patch.object(argparse.ArgumentParser, "parse_args", catch), pytest.raises(Built):
        main([])
    (commands,) = (action for action in built[0]._actions if isinstance(action, argparse._SubParsersAction))
    return list(commands.choices)


def test_help_lists_every_command_on_one_line_and_describes_them_all(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    out = capsys.readouterr().out
    description, _, listing = out.partition("\ncommands:\n")
    commands = registered_commands()
    assert {"explain", "validate", "status", "redrive"} <= set(commands)
    lines = listing.splitlines()[1:]  # after the `COMMAND` heading
    assert [line.split()[0] for line in lines if line.strip()] == commands  # one line each, nothing wrapped
    assert all(len(line.split()) > 2 for line in lines)  # each with its help
    assert all(f"({name}" in description or f" {name}" in description for name in commands)
    assert "some action would be taken" not in description  # explain's exit status is explain's own


def test_each_command_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in registered_commands():
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: polytrigger {command} ")


def run_closing_early(argv: list[str], *, read_lines: int) -> subprocess.CompletedProcess[str]:
    """`polytrigger ARGV | head -READ_LINES`: the reader takes its lines, then closes the pipe."""
    process = subprocess.Popen(
        [sys.executable, "-m", "polytrigger", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(ROOT / "functions"), "PATH": os.environ.get("PATH", ""), "ROUTES": str(ROUTES)},
        cwd=ROOT,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    for _ in range(read_lines):
        process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    return subprocess.CompletedProcess(argv, process.wait(timeout=60), "", err)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["explain", "s3://acme-landing/orders/2026/x.csv"], 0),
        (["explain", "s3://acme-landing/x"], 1),
        (["--help"], 0),
    ],
)
def test_a_pipe_closed_before_anything_is_read_ends_quietly_with_the_commands_status(
    argv: list[str], code: int
) -> None:
    result = run_closing_early(argv, read_lines=0)

    assert result.stderr == ""
    assert result.returncode == code


def test_a_pipe_closed_after_two_lines_of_a_long_answer_ends_quietly(tmp_path: Path) -> None:
    """More output than a pipe holds: the writer is still writing when the reader leaves."""
    record = json.loads((EVENTS / "s3-notification-created.json").read_text(encoding="utf-8"))["Records"][0]
    records = []
    for n in range(600):
        copy = json.loads(json.dumps(record))
        copy["s3"]["object"]["key"] = f"orders/2026/11/23/orders-{n:04d}.csv"
        copy["s3"]["object"]["sequencer"] = f"0067419A3C5B7E{n:04X}"
        records.append(copy)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"Records": records}), encoding="utf-8")

    result = run_closing_early(["explain", str(event)], read_lines=2)

    assert result.stderr == ""
    assert result.returncode == 0
