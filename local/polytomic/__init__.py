"""The fake Polytomic API: one fake for the local stack, the tests and the benchmarks.

It follows the Polytomic API notes (`polytomic-api.md`); the official `polytomic` SDK pointed at it is
the independent check that its shapes are right. `server` serves it on loopback (`FakePolytomic`);
the request pipeline (`pipeline`: latency, faults, auth, version, Idempotency-Key) and the endpoints
(`api`) are plain Python underneath, with its records, events and signed webhook deliveries.
"""

from local.polytomic.server import DEFAULT_API_KEY, SUPPORTED_VERSIONS, FakePolytomic

__all__ = ["DEFAULT_API_KEY", "SUPPORTED_VERSIONS", "FakePolytomic"]
