"""``python -m textmtl``: the command line (what torchrun starts for ``run --ddp N``)."""

import sys

from .cli import main

sys.exit(main())
