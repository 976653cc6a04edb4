"""The dispatch policies: what to do with an action, and with a queued start, given only the ports.

Nothing here does I/O or imports a library: Polytomic, the dedup table, the debounce windows and
the dispatch queue are reached through `ports`, which the adapters implement (and the simulation
and the tests implement again in memory).
"""
