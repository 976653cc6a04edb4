"""`python -m local.demo` (`make demo`)."""

import sys

from local.demo.run import main

sys.exit(main())
