"""Run outcomes: what became of the runs polytrigger started, whichever way their ending arrives.

`endings` reads an ending as Polytomic reports it (webhook, events API, execution status) and
`settle` takes it once; `ledger` is the run ledger's port and what it learns at a start
(`dynamo_ledger` keeps it in the dedup table); `event_log` reads the events API from a cursor;
`reconcile` asks about runs no ending was heard of; `set_off` does what an event sets off, once (the
bus: `bus`; chained starts); `freshness` checks a route's freshness promises (`promises` keeps them);
`telling` says each ending and breach in one line and one metric; `status` answers "was this file
synced?" for `polytrigger status`.
"""
