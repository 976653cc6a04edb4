"""Memory and package: peak RSS of a cold invocation, and the size of what `sam build` ships.

Peak RSS: a separate process imports the S3 handler, builds the App (`app.get()`), parses a
sample event and matches it against the routes, then reads its own peak RSS (VmHWM in
/proc/self/status). The network part of an invocation (DynamoDB, Secrets Manager, Polytomic) is excluded:
those calls allocate a response of a few kB each on clients that already exist. The baseline is
the floor process of the cold-start benchmark (boto3 and its two clients) measured the same way.

Package: what functions/Makefile ships. The code as built (its offline part: sources, hash-checked
bytecode, routes and their cache) plus the distributions `pip install -r functions/requirements.txt`
resolves to, sized from the venv's installed files with their bytecode (their RECORD: the same
versions and files the build puts in ARTIFACTS_DIR, without a download; `--pip` does a real
install instead).
boto3 is not in requirements.txt (the Lambda runtime provides it), but aws-xray-sdk (the
`[tracer]` extra) depends on botocore, so pip bundles botocore and its dependencies anyway: both
sizes are reported, with and without that botocore tree.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from benchmarks.coldstart import FLOOR, FUNCTIONS, ROOT, Row, package, run_child
from benchmarks.run import render

TARGET_RSS_MB = 100.0
REQUIREMENTS = FUNCTIONS / "requirements.txt"
BOTOCORE_TREE = {"botocore", "jmespath", "python-dateutil", "six"}  # urllib3 is ours anyway
SAMPLE_EVENT = ROOT / "events" / "eventbridge-object-created.json"

# VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's RSS at fork time on Linux, so
# inside `make bench` (after other benchmarks loaded the parent) it would report the parent's size.
PEAK = "\nimport re\nprint('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
INVOCATION = f"""
import json
import polytrigger.handlers.s3
from polytrigger.runtime import app
from polytrigger.events import s3_triggers
runtime = app.get()
event = json.load(open({str(SAMPLE_EVENT)!r}))
actions = runtime.routes.actions_for(s3_triggers(event))
print('ACTIONS', len(actions))
"""


def peak_rss_mb(code: str) -> float:
    _, stdout, _ = run_child(code + PEAK)
    match = re.search(r"PEAK_KB (\d+)", stdout)
    if match is None:
        raise RuntimeError(f"no peak RSS in the child's output: {stdout!r}")
    return int(match.group(1)) / 1024  # Linux reports kilobytes


def closure(requirements: Iterable[str]) -> set[str]:
    """Distribution names the requirements resolve to in this venv (extras followed, markers evaluated)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            child = Requirement(line)
            if child.marker is None or any(
                child.marker.evaluate({"extra": extra}) for extra in (requirement.extras or {""})
            ):
                pending.append(child)
    return seen


def installed_bytes(name: str) -> int:
    """A distribution's installed files, bytecode included (RECORD lists the .pyc pip compiled)."""
    distribution = metadata.distribution(name)
    total = 0
    for file in distribution.files or []:
        path = Path(str(distribution.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def requirement_lines() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def package_sizes(use_pip: bool = False) -> dict[str, int]:
    """Bytes per distribution (with bytecode) that `sam build` puts next to the code."""
    if not use_pip:
        return {name: installed_bytes(name) for name in sorted(closure(requirement_lines()))}
    with tempfile.TemporaryDirectory() as target:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS), "-t", target],
            check=True,
        )
        sizes: dict[str, int] = {}
        for info in Path(target).glob("*.dist-info"):
            name = info.name.split("-")[0].lower().replace("_", "-")
            record = (info / "RECORD").read_text().splitlines()
            files = (Path(target) / line.rsplit(",", 2)[0] for line in record)
            sizes[name] = sum(f.stat().st_size for f in files if f.is_file())
        return sizes


def measure(use_pip: bool = False) -> dict[str, float]:
    mb = 1024 * 1024
    sizes = package_sizes(use_pip)
    return {
        "rss_invocation": peak_rss_mb(INVOCATION),
        "rss_floor": peak_rss_mb(FLOOR),
        "code": tree_bytes(package()) / mb,
        "dependencies": sum(sizes.values()) / mb,
        "botocore_tree": sum(size for name, size in sizes.items() if name in BOTOCORE_TREE) / mb,
        "bundles_boto3": float("boto3" in sizes),
    }


def to_rows(figures: dict[str, float]) -> list[Row]:
    rss, floor = figures["rss_invocation"], figures["rss_floor"]
    shipped = figures["code"] + figures["dependencies"]
    without = shipped - figures["botocore_tree"]
    return [
        (
            "peak RSS cold invocation (no network)",
            f"{rss:.1f} MB",
            f"{floor:.1f} MB (boto3 + 2 clients)",
            f"{rss / floor:.2f}x",
            f"<= {TARGET_RSS_MB:.0f} MB",
            rss <= TARGET_RSS_MB,
        ),
        (
            "package: code + requirements, with bytecode (as built)",
            f"{shipped:.1f} MB",
            f"{figures['code']:.2f} MB code",
            f"{shipped / figures['code']:.0f}x",
            "<= 250 MB unzipped (Lambda)",
            shipped <= 250,
        ),
        (
            "package without botocore tree (runtime has it)",
            f"{without:.1f} MB",
            f"{figures['botocore_tree']:.1f} MB botocore+deps",
            f"{without / figures['code']:.0f}x",
            "<= 250 MB unzipped (Lambda)",
            without <= 250,
        ),
    ]


def rows(quick: bool = False, use_pip: bool = False) -> list[Row]:
    return to_rows(measure(use_pip))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry: this benchmark is one run")
    parser.add_argument("--pip", action="store_true", help="size a real `pip install --target` (needs PyPI)")
    args = parser.parse_args(argv)
    figures = measure(args.pip)
    table = to_rows(figures)
    print(render(table))
    sizes = package_sizes(args.pip)
    print("\ndependencies (MB, with bytecode):", json.dumps({k: round(v / 1048576, 2) for k, v in sizes.items()}))
    print("boto3 bundled:", "yes" if "boto3" in sizes else "no (the Lambda runtime provides it)")
    return 0 if all(row[5] for row in table) else 1


if __name__ == "__main__":
    sys.exit(main())
