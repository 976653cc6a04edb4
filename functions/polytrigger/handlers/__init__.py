"""Thin Lambda entry points: parse the event, delegate, return the summary."""

from polytrigger import gc_pause

gc_pause.pause()  # before the handler module's imports; app.get() resumes it (see gc_pause)
