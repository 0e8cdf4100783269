"""``python -m proxy.client``: the command-line client (see ``cli.py``)."""

import sys

from proxy.client.cli import main

sys.exit(main())
