"""Memory and package: peak RSS of a cold invocation, and the size of what `sam build` ships.

Peak RSS: a separate process imports the S3 handler, builds the App (`app.get()`), parses a
sample event and matches it against the routes, then reads its own peak RSS (VmHWM in
/proc/self/status). The network part of an invocation (DynamoDB, Secrets Manager, Polytomic) is excluded:
those calls allocate a response of a few kB each on clients that already exist. The baseline is
the floor process of the cold-start benchmark (boto3 and its two clients) measured the same way.

Package: what `sam build` ships. Each function's package is its code as built (functions/Makefile's
offline part: sources, hash-checked bytecode, routes and their cache); the dependencies are one
layer every function shares (layer/Makefile), sized from the venv's installed files with their
bytecode (their RECORD: the same versions and files, without a download; `--pip` does a real
install instead). The layer leaves out the runtime's AWS SDK (boto3, botocore, s3transfer: the
Lambda runtime provides them) and what only they need, although aws-xray-sdk (the `[tracer]`
extra) depends on botocore: the SDK tree pip would otherwise add is reported beside it, and the
baseline of a function's package is what each function shipped before the layer (its code and
every dependency, botocore's tree included).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from benchmarks.coldstart import FLOOR, FLOOR_BASELINE, ROOT, package, run_child
from benchmarks.report import Row, arguments, show

TARGET_RSS_MB = 100.0
LAMBDA_UNZIPPED_MB = 250  # a function's package and its layers, unzipped (Lambda's limit)
LAYER = ROOT / "layer"
REQUIREMENTS = LAYER / "requirements.txt"
SAMPLE_EVENT = ROOT / "events" / "eventbridge-object-created.json"

# VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's RSS at fork time on Linux, so
# inside `make bench` (after other benchmarks loaded the parent) it would report the parent's size.
PEAK = "\nimport re\nprint('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
INVOCATION = f"""
import json
import polytrigger.handlers.s3
from polytrigger import bootstrap
from polytrigger.events import s3_triggers
runtime = bootstrap.triggers()
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


def runtime_sdk() -> set[str]:
    """What layer/Makefile leaves to the Lambda runtime (its RUNTIME_PROVIDED)."""
    match = re.search(r"^RUNTIME_PROVIDED\s*\?=(.*)$", (LAYER / "Makefile").read_text(), flags=re.MULTILINE)
    if match is None:
        raise RuntimeError("layer/Makefile sets no RUNTIME_PROVIDED")
    return set(match.group(1).split())


def closure(requirements: Iterable[str], around: Iterable[str] = ()) -> set[str]:
    """Distribution names the requirements resolve to in this venv (extras followed, markers evaluated).

    Names in `around` and whatever only they lead to are left out, as layer/pins.py leaves them out.
    """
    from packaging.requirements import Requirement

    seen: set[str] = set()
    skip = {name.lower().replace("_", "-") for name in around}
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen or name in skip:
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


def layer_names() -> set[str]:
    """The distributions the layer ships: the requirements' closure around the runtime's SDK."""
    return closure(requirement_lines(), around=runtime_sdk())


def measure(use_pip: bool = False) -> dict[str, float]:
    mb = 1024 * 1024
    sizes = package_sizes(use_pip)
    in_layer = layer_names()
    return {
        "rss_invocation": peak_rss_mb(INVOCATION),
        "rss_floor": peak_rss_mb(FLOOR),
        "code": tree_bytes(package()) / mb,
        "layer": sum(size for name, size in sizes.items() if name in in_layer) / mb,
        "sdk_tree": sum(size for name, size in sizes.items() if name not in in_layer) / mb,
    }


def to_rows(figures: dict[str, float]) -> list[Row]:
    rss, floor = figures["rss_invocation"], figures["rss_floor"]
    code, layer, sdk = figures["code"], figures["layer"], figures["sdk_tree"]
    bundled = code + layer + sdk  # what each function shipped before the layer
    return [
        Row(
            "peak RSS cold invocation (no network)",
            f"{rss:.1f} MB",
            f"{floor:.1f} MB {FLOOR_BASELINE}",
            f"{rss / floor:.2f}x",
            f"<= {TARGET_RSS_MB:.0f} MB",
            rss <= TARGET_RSS_MB,
        ),
        Row(
            "function package: code + routes, with bytecode (as built)",
            f"{code:.2f} MB",
            f"{bundled:.1f} MB with every dependency (before)",
            f"{code / bundled:.3f}x",
            f"<= {LAMBDA_UNZIPPED_MB} MB with the layer (Lambda)",
            code + layer <= LAMBDA_UNZIPPED_MB,
        ),
        Row(
            "dependencies layer, shared (runtime provides the SDK)",
            f"{layer:.1f} MB",
            f"{layer + sdk:.1f} MB with botocore+deps",
            f"{layer / (layer + sdk):.2f}x",
            f"<= {LAMBDA_UNZIPPED_MB} MB with a function",
            code + layer <= LAMBDA_UNZIPPED_MB,
        ),
    ]


def rows(quick: bool = False, use_pip: bool = False) -> list[Row]:
    return to_rows(measure(use_pip))


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments("benchmarks.memory", __doc__, "accepted for symmetry: this benchmark is one run")
    parser.add_argument("--pip", action="store_true", help="size a real `pip install --target` (needs PyPI)")
    args = parser.parse_args(argv)
    status = show(to_rows(measure(args.pip)))
    sizes = package_sizes(args.pip)
    in_layer = layer_names()
    mb = {name: round(size / 1048576, 2) for name, size in sizes.items()}
    print("\nlayer (MB, with bytecode):", json.dumps({k: v for k, v in mb.items() if k in in_layer}))
    print("left to the runtime (MB):", json.dumps({k: v for k, v in mb.items() if k not in in_layer}))
    print("boto3 bundled:", "no (the Lambda runtime provides it)" if "boto3" not in in_layer else "yes")
    return status


if __name__ == "__main__":
    sys.exit(main())
