"""``python -m strata``: the command-line tool (see :mod:`strata._cli`)."""

import sys

from ._cli import main

sys.exit(main())
