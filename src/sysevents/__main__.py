"""``python -m sysevents``: the same as the ``sysevents`` command."""

import sys

from .cli import main

sys.exit(main())
