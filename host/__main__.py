"""``python -m farview.host``: one render host, as the session service starts it."""

import sys

from farview.host.main import main

sys.exit(main())
