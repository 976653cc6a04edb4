"""`make demo`: polytrigger end to end on the local stack (`run`), its deploy step (`wiring`) and its
last step, the loop closed (`outcomes`)."""
