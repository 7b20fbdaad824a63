"""``python -m lumina_analytics`` runs the CLI."""

import sys

from lumina_analytics.cli import main

sys.exit(main())
