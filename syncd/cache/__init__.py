"""The cache: what syncd pushed to Identity Center, its runs and its audit trail.

``Cache.open(url)`` gives the repository (:mod:`syncd.cache.store`), assembled from parts of
one job each: identities and their load (:mod:`~syncd.cache.identities`), runs and the audit
trail (:mod:`~syncd.cache.run_records`), named values (:mod:`~syncd.cache.values`), access
records (:mod:`~syncd.cache.access_records`), and what they share (:mod:`~syncd.cache.shared`).
The tables are in :mod:`syncd.cache.tables`, opening the database in :mod:`syncd.cache.database`,
the Alembic glue in :mod:`syncd.cache.migrate`.
"""

from __future__ import annotations

from syncd.cache.database import DEFAULT_URL
from syncd.cache.migrate import migrations_path
from syncd.cache.store import Cache


__all__ = ["DEFAULT_URL", "Cache", "migrations_path"]
