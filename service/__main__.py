"""``python -m farview.service``: the session service (``farview serve``)."""

import sys

from farview.service.cli import main

sys.exit(main())
