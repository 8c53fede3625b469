"""``python -m bot`` is ``imagine-bot``."""

import sys

from bot.runtime.cli import main

sys.exit(main())
