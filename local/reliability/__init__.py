"""`make reliability`: every trigger started exactly once or parked, under duplicates and faults (`run`;
the harness, and the scenarios by kind)."""
