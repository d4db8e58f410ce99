"""Identity-provider connectors: each reads one IdP into a ``syncd.model.SourceRead``.

A connector never imports the engine, the cache or a target; it is found by ``source.type``
through :mod:`connectors.base`'s registry.
"""
