"""``python -m relaygate`` is the ``relaygate`` command."""

from __future__ import annotations

import sys

from relaygate.cli import main

sys.exit(main())
