"""``python -m edge_classifier`` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
