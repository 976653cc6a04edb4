"""The fake Polytomic API: one fake for the local stack, the tests and the benchmarks.

It follows the Polytomic API notes (`polytomic-api.md`); the official `polytomic` SDK pointed at it is
the independent check that its shapes are right. `server` holds it (`FakePolytomic`): served on
loopback where a test wants the wire, or answered in process (`inprocess`: urllib3's interface for
the real client, no socket) where a unit test or the burst simulation wants speed, on an injected
clock. Underneath, plain Python: the request pipeline (`pipeline`: latency, faults, auth, version,
Idempotency-Key), the endpoints (`api`), its records, events and signed webhook deliveries.
"""

from local.polytomic.inprocess import IN_PROCESS_URL, InProcess
from local.polytomic.server import DEFAULT_API_KEY, SUPPORTED_VERSIONS, FakePolytomic

__all__ = ["DEFAULT_API_KEY", "IN_PROCESS_URL", "SUPPORTED_VERSIONS", "FakePolytomic", "InProcess"]
