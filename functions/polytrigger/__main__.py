"""`python -m polytrigger explain EVENT_FILE`."""

import sys

from polytrigger.cli import main

sys.exit(main())
