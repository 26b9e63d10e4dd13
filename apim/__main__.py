"""``python -m apim``: the command line (same as ``apim``)."""

import sys

from apim.cli import main

sys.exit(main())
