"""``python -m sysevents.cli``: the same as the ``sysevents`` command."""

import sys

from . import main

sys.exit(main())
