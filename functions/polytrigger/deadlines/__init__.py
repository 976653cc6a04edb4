"""Arrival deadlines: what a route expects by when, checked when due, each miss and late arrival told once."""
