"""``python -m neuromorpho_fetch``: the same command as the ``neuromorpho-fetch`` script."""

import sys

from .cli import main

sys.exit(main())
