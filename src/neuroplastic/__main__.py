"""``python -m neuroplastic`` (and ``torchrun -m neuroplastic``): the ``neuroplastic`` command."""
import sys

from neuroplastic.cli.main import main

sys.exit(main())
