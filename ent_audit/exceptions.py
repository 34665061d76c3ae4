"""Every error ent-audit raises on purpose: one root, a few meaningful subclasses.

Each carries what failed as attributes (``path``, ``line``, ``column``, ``member``,
``parameter``…) and names it in its message, so a coordinator can act on it. The CLI maps every
one of them to exit status 2 ("nothing done or refused"), see :mod:`ent_audit.checks`.
"""

from __future__ import annotations

from pathlib import Path

SSH_PORT = 22


def _rebuild(cls: type, args: tuple, state: dict) -> Exception:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class EntAuditError(Exception):
    """Root of every error ent-audit raises on purpose.

    Every subclass pickles as it is (message and attributes), whatever its ``__init__``: the
    reader raises them in worker processes and the pool sends them back to the caller.
    """

    def __reduce__(self):
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


# -- reading -------------------------------------------------------------------------------


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


class UnsafeArchiveError(EntAuditError):
    """An archive member that is refused; nothing has been extracted."""

    def __init__(self, archive: Path | str, member: str, reason: str) -> None:
        self.archive = str(archive)
        self.member = member
        self.reason = reason
        super().__init__(f"{self.archive}: membre {member!r} refusé: {reason}")


class BadArchiveError(EntAuditError):
    """An archive that is not a readable tar.gz (truncated, corrupt, another format)."""

    def __init__(self, archive: Path | str, reason: str) -> None:
        self.archive = str(archive)
        self.reason = reason
        super().__init__(f"{self.archive}: archive tar.gz illisible ({reason})")


# -- the store -----------------------------------------------------------------------------


class StoreError(EntAuditError):
    """The store cannot do what was asked (locked, corrupt, refused archive)."""


class StoreCorruptError(StoreError):
    """A file of the store that cannot be read as written (edited, truncated, foreign)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: fichier du store illisible ou altéré ({reason})")


class IngestRefused(StoreError):
    """An archive a guard of the ingestion refuses; ``guard`` names the guard (README)."""

    def __init__(self, archive: str, guard: str, message: str) -> None:
        self.archive = archive
        self.guard = guard
        self.reason = message
        super().__init__(f"{archive}: {message}")


class IngestAborted(StoreError):
    """An ingestion stopped by an error that is not the archive's fault (disk full…);
    the archives before it keep their committed result."""

    def __init__(self, archive: str, reason: str, committed: list[str]) -> None:
        self.archive = archive
        self.reason = reason
        self.committed = list(committed)
        kept = (
            f"; déjà ingérée(s) et conservée(s): {', '.join(committed)}"
            if committed
            else "; rien n'a été ingéré"
        )
        super().__init__(f"{archive}: ingestion interrompue ({reason}){kept}")


class UnsortedHistoryError(StoreError):
    """A presence history base not in its order (:data:`ent_audit.store.presence.ORDER`):
    a compaction cannot merge it as it streams it, and sorts it whole instead."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: historique de présence hors de son ordre")


class StoreLockedError(StoreError):
    """Another ingestion holds the store's lock."""

    def __init__(self, path: Path | str, holder: str) -> None:
        self.path = str(path)
        self.holder = holder
        super().__init__(
            f"{path}: une ingestion est déjà en cours ({holder}); réessayez plus "
            "tard ou passez --wait SECONDES"
        )


# -- analyses and reports ------------------------------------------------------------------


class ParameterError(EntAuditError):
    """A parameter that cannot be used: nothing was run."""

    def __init__(self, owner: str, parameter: str, message: str) -> None:
        self.owner = owner
        self.parameter = parameter
        super().__init__(f"{owner}: paramètre {parameter!r}: {message}")


class QualityError(ParameterError):
    """A parameter of the quality audit that cannot be used (thresholds, perimeter)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__("audit qualité", parameter, message)


class SynthParameterError(ParameterError, ValueError):
    """A parameter of the synthetic generator that cannot be used (a ValueError too, as the
    generator's other argument errors are)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__("générateur synthétique", parameter, message)


class CompareError(EntAuditError):
    """Records that cannot be paired: a jointure missing or present twice on one side."""

    def __init__(self, kind: str, side: str, reason: str, ids: list[str]) -> None:
        self.kind = kind
        self.side = side
        self.ids = ids
        shown = ", ".join(ids[:10]) + (f" (et {len(ids) - 10} autres)" if len(ids) > 10 else "")
        super().__init__(
            f"comparaison impossible: {kind} ({side}): {reason}" + (f": {shown}" if ids else "")
        )


class RetentionError(ParameterError):
    """A parameter of the retention checks or the purge that cannot be used."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__("conservation", parameter, message)


class InputFileError(EntAuditError):
    """An input file (account export, requests) that cannot be read, located precisely."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = message
        where = self.path + (f":{line}" if line else "")
        where += f" (colonne {column})" if column else ""
        super().__init__(f"{where}: {message}")


class ReportParameterError(ParameterError):
    """A parameter the notebook does not declare, or of the wrong type."""

    def __init__(self, report: str, parameter: str, message: str) -> None:
        self.report = report
        super().__init__(f"rapport {report}", parameter, message)


class ParameterFileError(EntAuditError):
    """A ``-p`` parameter file that cannot be read: absent, a folder, not UTF-8, not YAML,
    not a mapping."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: fichier de paramètres {reason}")


class ReportNotFound(EntAuditError):
    """A report name that is not in the registry, or whose notebook is missing."""

    def __init__(self, name: str, known: list[str], missing: Path | None = None) -> None:
        self.name = name
        self.path = str(missing) if missing else None
        super().__init__(
            f"rapport {name}: notebook introuvable: {missing}"
            if missing
            else f"rapport inconnu {name!r}; connus: {', '.join(known)}"
        )


class ChartError(EntAuditError, ValueError):
    """A report chart an auditor could not read: no title, or an axis without a title."""

    def __init__(self, chart: str, missing: str) -> None:
        self.chart = chart
        self.missing = missing
        super().__init__(f"graphique {chart!r}: {missing} manquant")


# -- transfer ------------------------------------------------------------------------------


def host_label(host: str, port: int) -> str:
    """The host as known_hosts names it: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == SSH_PORT else f"[{host}]:{port}"


class SFTPError(EntAuditError):
    """Connecting to or talking with the SFTP server failed."""

    def __init__(self, host: str, port: int, message: str) -> None:
        self.host = host
        self.port = port
        super().__init__(message)


class HostKeyError(SFTPError):
    """The server's host key is not the one known_hosts expects: the connection is refused."""

    def __init__(
        self,
        host: str,
        port: int,
        key_type: str,
        fingerprint: str,
        known_hosts: Path | str,
        expected: str | None = None,
    ) -> None:
        self.key_type = key_type
        self.fingerprint = fingerprint
        self.known_hosts = str(known_hosts)
        self.expected = expected
        self.reason = "unknown" if expected is None else "changed"
        where = host_label(host, port)
        flag = "" if port == SSH_PORT else f" -p {port}"
        if expected is None:
            message = (
                f"{where}: clé d'hôte inconnue ({key_type} {fingerprint}), "
                f"absente de {known_hosts}: connexion refusée. Faites confirmer cette "
                f"empreinte par l'académie, puis ajoutez la clé du serveur à "
                f"{known_hosts} (ssh-keyscan{flag} {host})"
            )
        else:
            message = (
                f"{where}: la clé d'hôte a CHANGÉ: le serveur présente {key_type} "
                f"{fingerprint}, {known_hosts} attend {expected}: connexion "
                f"refusée (serveur usurpé ?). Si l'académie confirme le changement, "
                f"remplacez la ligne de {where} dans {known_hosts}"
            )
        super().__init__(host, port, message)


class AuthenticationError(SFTPError):
    """The server refused every client key offered."""


class UnreachableError(SFTPError):
    """The server could not be reached or the SSH session broke: worth retrying."""


class ClientKeyError(EntAuditError):
    """A client key that cannot or may not be used (policy, passphrase, unreadable file)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


class FetchError(EntAuditError):
    """A fetch that cannot run (usage, destination locked)."""


class ActivityInputError(EntAuditError):
    """An activity file that cannot be read at all (missing column, unknown format); rows that
    do not parse are reported, not raised."""

    def __init__(self, path: Path | str, message: str, parameter: str | None = None) -> None:
        self.path = str(path)
        self.parameter = parameter
        self.reason = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.parameter))


class NationalInputError(EntAuditError):
    """A folder given to ``ent-audit national`` that cannot be aggregated (not a store, no
    published summary, another schema version, an académie or a store given twice, another
    period): nothing is written."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))
