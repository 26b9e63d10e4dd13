"""``python -m apim``: the command line (same as ``apim``)."""

import sys

from apim.cli import main

if __name__ == "__main__":  # not when a worker process started by spawn imports it
    sys.exit(main())
