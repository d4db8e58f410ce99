"""The speed benchmark: ``python -m tests.bench --size quick|headline|memory --source file|okta``.

See ``tests/bench/run.py`` for how it runs and the README's "Benchmark" section for its figures.
"""
