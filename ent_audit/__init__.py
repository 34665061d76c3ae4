"""ent-audit: audit the AAF extractions an academy sends for a town's primary-school ENT."""

from ent_audit import memory as _memory

_memory.arrow_on_system()  # before pyarrow is loaded (the imports below): Arrow reads it once

from ent_audit.aaf.naming import AAFName, ArchiveName, group_parts, parse_archive_name, parse_name  # noqa: E402
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot, load  # noqa: E402
from ent_audit.exceptions import (  # noqa: E402
    AAFSyntaxError,
    EntAuditError,
    NamingError,
    SnapshotError,
    UnsafeXMLError,
)
from ent_audit.store.store import Store  # noqa: E402

__all__ = [
    "AAFName",
    "AAFSyntaxError",
    "ArchiveName",
    "EntAuditError",
    "ExtractionInfo",
    "NamingError",
    "Snapshot",
    "SnapshotError",
    "Store",
    "UnsafeXMLError",
    "group_parts",
    "load",
    "parse_archive_name",
    "parse_name",
]
__version__ = "0.1.0"
