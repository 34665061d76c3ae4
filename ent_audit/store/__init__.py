"""The on-disk store: atomic state, ingestion with its guards, delta application, presence
history and pseudonyms."""

from ent_audit.store.store import IngestResult, Store, StoreError, StoreLockedError

__all__ = ["IngestResult", "Store", "StoreError", "StoreLockedError"]
