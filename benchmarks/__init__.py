"""Benchmarks: simulations that drive polytrigger's real code on a virtual clock."""
