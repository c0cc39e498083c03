"""``python -m align_integration.sandbox``: an alias of
``python -m align_integration.testing.sandbox``."""

import sys

from align_integration.testing.sandbox.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
