"""Safe extraction of an AAF tar.gz archive.

An archive comes from outside: only regular files whose names follow the AAF nomenclature are
extracted, into a private (0700) folder; absolute paths, ``..``, links, devices, too many members
or too many uncompressed bytes (a gzip bomb) are refused with an error naming the member, each
from its header before any of its bytes is written, and what was written is removed. The gzip
stream is read to its end before :func:`extract` returns, so its CRC and length are checked
before a single byte is parsed; the stream is decompressed once.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ent_audit.aaf.naming import parse_name
from ent_audit.exceptions import BadArchiveError, NamingError, UnsafeArchiveError

MAX_MEMBERS = 2_000
MAX_BYTES = 16 << 30
"""Uncompressed bytes: a whole académie is a few GB; beyond this it is a bomb, not an extraction."""


@contextmanager
def _readable(archive: Path | str) -> Iterator[None]:
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if isinstance(err, UnsafeArchiveError | FileNotFoundError | IsADirectoryError):
            raise
        if isinstance(err, OSError) and err.errno is not None:  # the disk, not the archive
            raise
        raise BadArchiveError(archive, str(err) or type(err).__name__) from None


@dataclass(frozen=True)
class Member:
    name: str
    size: int


def check_members(
    archive: Path | str, *, max_members: int | None = None, max_bytes: int | None = None
) -> list[Member]:
    """List the XML members to extract, or raise on the first member that is not acceptable.

    Limits default to :data:`MAX_MEMBERS` and :data:`MAX_BYTES` as they are when called."""
    members: list[Member] = []
    with _readable(archive), tarfile.open(archive, mode="r:gz") as tar:
        for info in _accepted(archive, tar, max_members, max_bytes):
            members.append(Member(info.name, info.size))
        # Read the compressed stream to its very end: only there does gzip compare its CRC
        # and length with what was decompressed. A flipped byte is refused here, before
        # anything is parsed (tarfile alone stops at the end-of-archive blocks).
        while tar.fileobj.read(1 << 20):
            pass
    return members


def extract(archive: Path | str, dest: Path | str, **limits: int | None) -> list[Path]:
    """Extract the AAF files of ``archive`` flat into ``dest`` (created 0700); return them
    (see :func:`iter_extract`)."""
    return list(iter_extract(archive, dest, **limits))


def iter_extract(archive: Path | str, dest: Path | str, **limits: int | None) -> Iterator[Path]:
    """Extract the AAF files of ``archive`` flat into ``dest`` (created 0700), yielding each
    file once written whole, so that a reader may start on it while the next is extracted.

    One pass over the compressed stream: each member is checked (:func:`check_members`'s
    rules) from its header before a byte of it is written, the stream is then read to its
    end for the gzip CRC and length, and on any refusal the members already written are
    removed before the error is raised: nothing of a refused archive is left behind. The
    last file is yielded before the CRC is checked: a consumer must exhaust the generator
    before it trusts (commits) anything it read.
    """
    dest = Path(dest)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    out: list[Path] = []
    try:
        with _readable(archive), tarfile.open(archive, mode="r:gz") as tar:
            for info in _accepted(archive, tar, limits.get("max_members"), limits.get("max_bytes")):
                target = dest / PurePosixPath(info.name).name
                if target.exists():
                    raise UnsafeArchiveError(archive, info.name, "nom de fichier en double")
                src = tar.extractfile(info)
                assert src is not None
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                out.append(target)
                with src, os.fdopen(fd, "wb") as fh:
                    shutil.copyfileobj(src, fh, 1 << 20)
                yield target
            # The gzip CRC and length are compared only at the stream's very end.
            while tar.fileobj.read(1 << 20):
                pass
    except BaseException:
        for p in out:
            p.unlink(missing_ok=True)
        raise


def _accepted(
    archive: Path | str, tar: tarfile.TarFile, max_members: int | None, max_bytes: int | None
) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar`` to extract, in order, from their headers only; raise on the
    first refused one (too many members, too many bytes in all, or :func:`_acceptable`).
    Limits default to :data:`MAX_MEMBERS` and :data:`MAX_BYTES` as they are when called."""
    max_members = MAX_MEMBERS if max_members is None else max_members
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    total = 0
    for count, info in enumerate(tar, start=1):
        if count > max_members:
            raise UnsafeArchiveError(archive, info.name, f"plus de {max_members} membres")
        if not _acceptable(archive, info):
            continue
        total += info.size
        if total > max_bytes:
            raise UnsafeArchiveError(archive, info.name, f"plus de {max_bytes} octets décompressés")
        yield info


def _acceptable(archive: Path | str, info: tarfile.TarInfo) -> bool:
    """Whether to extract ``info`` (False: a folder, skipped); raise for a refused member."""
    path = PurePosixPath(info.name)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafeArchiveError(archive, info.name, "chemin absolu ou remontant (..)")
    if info.isdir():
        return False
    if not info.isfile():
        raise UnsafeArchiveError(archive, info.name, "lien, périphérique ou fichier spécial")
    try:
        parse_name(path.name)
    except NamingError as err:
        raise UnsafeArchiveError(archive, info.name, f"fichier inattendu ({err})") from None
    return True


@contextmanager
def extracted(archive: Path | str, workdir: Path | str | None = None) -> Iterator[list[Path]]:
    """Extract into a private temporary folder, removed afterwards whatever happens."""
    tmp = tempfile.mkdtemp(prefix="ent-audit-", dir=workdir)
    try:
        yield extract(archive, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
