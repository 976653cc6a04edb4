"""`python -m local.reliability` (`make reliability`)."""

import sys

from local.reliability.run import main

sys.exit(main())
