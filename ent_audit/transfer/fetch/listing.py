"""Listing the remote folder: regular files named by the nomenclature, oldest first."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import stat
from collections.abc import Iterable
from pathlib import PurePosixPath

import paramiko

from ent_audit.aaf.naming import parse_archive_name
from ent_audit.exceptions import NamingError
from ent_audit.transfer.fetch.download import _TRANSIENT, _Session
from ent_audit.transfer.fetch.model import RemoteArchive
from ent_audit.transfer.sftp import (
    Server,
    SFTPError,
    UnreachableError,
)

log = logging.getLogger("ent_audit.transfer.fetch")
"""One logger for the whole fetch (its records name ``ent_audit.transfer.fetch``)."""


# -- listing -------------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    """A plain file name: a server cannot make us write outside the destination."""
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and PurePosixPath(name).name == name
    )


def select_archives(
    entries: Iterable[paramiko.SFTPAttributes],
) -> tuple[list[RemoteArchive], list[str]]:
    """Split a listing into archives (oldest first) and the names left alone.

    Kept: regular files (links already resolved by the caller) with a plain name following the
    nomenclature.
    """
    archives, ignored = [], []
    for e in entries:
        name = e.filename
        if not _safe_name(name) or e.st_mode is None or not stat.S_ISREG(e.st_mode):
            ignored.append(name)
            continue
        try:
            n = parse_archive_name(name)
        except NamingError:
            ignored.append(name)
            continue
        archives.append(
            RemoteArchive(
                name, int(e.st_size or 0), int(e.st_mtime or 0), n.perimeter, n.extraction, n.date
            )
        )
    archives.sort(key=lambda a: (a.deposit[0], a.extraction != "complete", a.name))
    return archives, sorted(ignored)


def _listing(sftp: paramiko.SFTPClient, remote_dir: str) -> list[paramiko.SFTPAttributes]:
    """``listdir_attr``, with symbolic links replaced by what they point to."""
    entries = []
    for e in sftp.listdir_attr(remote_dir):
        if e.st_mode is not None and stat.S_ISLNK(e.st_mode):
            with contextlib.suppress(OSError):
                target = sftp.stat(posixpath.join(remote_dir, e.filename))
                target.filename = e.filename
                e = target
        entries.append(e)
    return entries


def _list_remote(
    session: _Session, server: Server, remote_dir: str
) -> list[paramiko.SFTPAttributes]:
    try:
        return _listing(session.sftp(), remote_dir)
    except FileNotFoundError:
        raise SFTPError(
            server.host, server.port, f"{server.label}: dossier distant {remote_dir!r} introuvable"
        ) from None
    except _TRANSIENT as err:
        raise UnreachableError(
            server.host,
            server.port,
            f"{server.label}: liste de {remote_dir!r} impossible ({err or type(err).__name__})",
        ) from None
