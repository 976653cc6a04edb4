"""The deploy-time wiring of the routes: the schedules the stack creates and the buckets its S3 rule lists."""
