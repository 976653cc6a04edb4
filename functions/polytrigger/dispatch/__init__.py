"""The start path: what to do with an action, and with a queued message, until its sync has started.

`policy` decides (once, for every performer) what each Polytomic answer means; `calls` makes one
call under its key, with the error table and recovery from a 500; `deferrals` puts starts on the
dispatch queue (after a 409 or a 429, and debounce windows); `fan_out` runs one event's actions,
syncs in parallel; `messages` is the queue's typed wire format. The policies see the world only
through `ports` (and `polytomic.contract`); `dedup` (Powertools Idempotency), `windows` (DynamoDB)
and `queue` (SQS) are the adapters behind them.
"""
