"""The Lambda entry points: s3, schedule, dispatcher. Each parses its event, delegates, and answers.

Importing this package pauses the garbage collector when inside Lambda, before the handler
module's own imports; the App's build switches it back on (polytrigger.runtime.gc_pause says why).
"""

from polytrigger.runtime import gc_pause

gc_pause.pause()
