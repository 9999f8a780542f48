"""``python -m skdim`` runs the command line."""

import sys

from skdim.cli import main

sys.exit(main())
