"""One module per entry point, each telling the whole story of what happens when its event arrives.

`on_triggers` (an S3 object event or a schedule firing), `on_dispatch_message` (a message from the
dispatch queue), `on_webhook_delivery` (Polytomic's webhook), `on_poll` (the poller's minute) and
`on_wiring_request` (CloudFormation's route wiring request). Each is a class given its adapters by
`bootstrap`; the handlers only read their event, call their flow and answer Lambda.
"""
