"""Closing the loop: what became of the runs polytrigger started, from whichever way their outcome arrives."""
