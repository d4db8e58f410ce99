"""``python -m tests.bench``: see :mod:`tests.bench.run`."""

from __future__ import annotations

import sys

from tests.bench.run import main


sys.exit(main())
