"""One root error, a few meaningful subclasses that carry what failed.

The CLI maps these to exit code 2 ("bad input or usage"); the message always names the
file, line, column, member or parameter at fault so a coordinator can act on it.
"""

from __future__ import annotations

from pathlib import Path


class EntAuditError(Exception):
    """Root of every error ent-audit raises on purpose."""


class NamingError(EntAuditError, ValueError):
    """A file or archive name that does not follow the AAF nomenclature."""

    def __init__(self, name: str, expected: str) -> None:
        self.name = name
        self.expected = expected
        super().__init__(f"nom de fichier non reconnu {name!r}: attendu {expected}")


class AAFSyntaxError(EntAuditError):
    """A malformed AAF XML file, located precisely."""

    def __init__(
        self, path: Path | str, line: int | None, column: int | None, message: str
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = message
        where = ":".join(str(x) for x in (self.path, line, column) if x is not None)
        super().__init__(f"{where}: {message}")


class UnsafeXMLError(AAFSyntaxError):
    """A file that declares entities (external entity, expansion bomb): refused unread."""


class SnapshotError(EntAuditError):
    """Inputs that cannot form one snapshot (mixed dates, missing files, unknown kinds)."""
