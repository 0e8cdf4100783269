"""What must outlive one request: the state store interface and its implementations.

``open_store(url, workers=…, state_directory=…)`` picks one from a ``STATE_URL``:
``MemoryStore`` (one process), ``SqliteStore`` (the workers of one machine, across
restarts), ``RedisStore`` (several machines).
"""

from proxy.state.factory import open_store
from proxy.state.store import MemoryStore, Store, StoreUnavailable

__all__ = ["MemoryStore", "Store", "StoreUnavailable", "open_store"]
