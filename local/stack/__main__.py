"""`python -m local.stack` (`make stack`): the local stack in the foreground; `land`, `poll` and `reconcile` talk to it."""

import sys

from local.stack.land import main as talk
from local.stack.serve import main as serve

sys.exit(talk(sys.argv[1:]) if sys.argv[1:2] in (["land"], ["poll"], ["reconcile"]) else serve())
