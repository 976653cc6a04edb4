"""Route wiring, at deploy time: the schedules and buckets a routes file names, made real by each deploy.

`plan` (what the routes need wired), `schedule_group` (a stack-owned group reconciled to exactly the
routes' schedules), `cloudformation` (the custom resource's request and answer), `aws` (the
Scheduler's group and the function's own versions). The story of one request is
`flows/on_wiring_request.py`.
"""
