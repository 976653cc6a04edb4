"""Never shipped to Lambda: what runs polytrigger on this machine, for the tests, the demo and the benchmarks.

- ``local.polytomic`` -- the fake Polytomic API (``FakePolytomic``), one for every use;
- ``local.stack`` -- ``LocalStack``: moto in server mode, DynamoDB Local and the fake, wired together
  with the environment the handlers read, and Lambda's own parts (contexts, retries, Function URLs);
- ``local.memory`` -- the dispatch ports in memory (unit tests and the burst simulation);
- ``local.demo`` -- ``make demo``; ``local.reliability`` -- ``make reliability``.

Everything here binds 127.0.0.1 on free ports and is started and stopped by whoever uses it.
"""
