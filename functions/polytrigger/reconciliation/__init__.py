"""Reconciliation: what landed in S3 that no event told polytrigger of, found by listing it.

`listing` walks the routed prefixes of a bucket a page at a time and turns what it finds into
listed triggers (`Trigger.listed`); the landing item (`dispatch.landings`) then tells an object
polytrigger has a record of from one it has not. `polytrigger replay` lists through the same module.
"""
