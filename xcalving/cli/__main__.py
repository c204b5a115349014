"""``python -m xcalving.cli`` (and ``torchrun -m xcalving.cli``): the ``xcalving`` command."""

import sys

from xcalving.cli import main

sys.exit(main())
