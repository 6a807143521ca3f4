"""``python -m farview.client.cli``: the ``farview`` command."""

import sys

from farview.client.cli.main import main

sys.exit(main())
