"""Thin Lambda entry points: parse the event, delegate, return the summary."""
