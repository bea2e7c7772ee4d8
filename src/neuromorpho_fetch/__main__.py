"""``python -m neuromorpho_fetch``: the same command as the ``neuromorpho-fetch`` script."""

from .cli import console_main

console_main()
