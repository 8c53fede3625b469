"""``python -m bot`` is ``imagine-bot``."""

import sys

from bot.cli import main

sys.exit(main())
