"""Score predictions files: ``python evaluate.py --help`` (the same as ``python -m swipe.evaluate``)."""

import sys

from swipe.evaluate import describe, main  # noqa: F401 (describe: for scripts that import it from here)

if __name__ == "__main__":
    sys.exit(main())
