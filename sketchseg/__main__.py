"""`python -m sketchseg` = the `sketchseg` command."""

import sys

from sketchseg.cli import main

sys.exit(main())
