"""`python -m polytrigger explain EVENT_FILE`."""

import sys

from polytrigger.tools.cli import main

sys.exit(main())
