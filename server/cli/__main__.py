"""``python -m server.cli``: the ``takan`` command."""

import sys

from server.cli.main import main

sys.exit(main())
