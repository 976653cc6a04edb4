"""The layer's pins: pip's resolution of requirements.txt, less what the Lambda runtime provides.

Reads pip's installation report (`pip install --dry-run --report -`) on stdin and prints
`name==version` for every distribution the requirements reach without passing through one of
the names given as arguments (the runtime's AWS SDK: boto3, botocore, s3transfer). What only
those need (botocore's python-dateutil and six) is left out with them: the runtime has its own,
and a copy in the layer would come first on sys.path and shadow it under the runtime's botocore.
What the requirements need directly stays, even if the runtime has it too (jmespath for
Powertools, urllib3): a runtime update must not change them under the code.

The walk follows the report's own environment markers and requested extras, so it takes the
edges pip took. Runs on the build's Python (3.13), whose pip vendors `packaging`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pip._vendor.packaging.requirements import Requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(report: dict[str, Any], provided: set[str]) -> list[str]:
    """`name==version` of each distribution reachable from the requested ones around `provided`."""
    items = {canonical(item["metadata"]["name"]): item for item in report["install"]}
    environment = report["environment"]
    pending = [(name, set(item.get("requested_extras") or ())) for name, item in items.items() if item["requested"]]
    reached: dict[str, set[str]] = {}
    while pending:
        name, extras = pending.pop()
        if name in provided or (name in reached and extras <= reached[name]):
            continue
        reached[name] = reached.get(name, set()) | extras
        for line in items[name]["metadata"].get("requires_dist") or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in (reached[name] or {""})
            ):
                if canonical(requirement.name) not in items:
                    raise SystemExit(f"{requirement.name} (needed by {name}) is not in pip's resolution")
                pending.append((canonical(requirement.name), set(requirement.extras)))
    return [f"{items[name]['metadata']['name']}=={items[name]['metadata']['version']}" for name in sorted(reached)]


def main(argv: list[str]) -> int:
    provided = {canonical(name) for name in argv}
    for line in pins(json.load(sys.stdin), provided):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
