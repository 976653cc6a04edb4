"""polytrigger: start Polytomic syncs when files land in S3 and on schedules."""

__version__ = "0.1.0"
