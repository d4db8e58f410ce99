"""The cache: what syncd pushed to Identity Center, its runs and its audit trail.

``Cache.open(url)`` gives the repository (:mod:`syncd.cache.store`); the tables are in
:mod:`syncd.cache.tables`, the Alembic glue in :mod:`syncd.cache.migrate`.
"""

from __future__ import annotations

from syncd.cache.database import DEFAULT_URL
from syncd.cache.migrate import migrations_path
from syncd.cache.store import Cache


__all__ = ["DEFAULT_URL", "Cache", "migrations_path"]
