"""Polytomic: the API contract polytrigger keeps (`contract`: its calls, answers and errors), the client
that keeps it over urllib3 (`client`), the key it sends (`credentials`) and the reads that follow runs
(`reads`)."""
