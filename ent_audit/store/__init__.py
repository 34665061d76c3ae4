"""The on-disk store: atomic state, ingestion with its guards, delta application, presence
history and pseudonyms."""

from ent_audit.store.ingest import Guards
from ent_audit.store.store import IngestResult, Store, StoreError, StoreLockedError, Verification

__all__ = ["Guards", "IngestResult", "Store", "StoreError", "StoreLockedError", "Verification"]
