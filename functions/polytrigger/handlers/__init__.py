"""The Lambda entry points: `s3`, `schedule`, `dispatcher`, `webhook`, `poller` and `route_wiring`.

Each reads its event, calls its flow (`polytrigger.flows`, built by `polytrigger.bootstrap`) and
answers Lambda (`answers`). Importing this package pauses the garbage collector when inside
Lambda, before the handler module's own imports; the first build switches it back on
(`polytrigger.gc_pause` says why).
"""

from polytrigger import gc_pause

gc_pause.pause()
