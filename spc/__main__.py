"""`python -m spc`: the same command line as `spc`."""

import sys

from spc.cli import main

sys.exit(main())
