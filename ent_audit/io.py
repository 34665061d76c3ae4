"""Writing files that may hold personal data, and hashing them.

Every file is created with an explicit mode through ``os.open`` (0600 unless said otherwise)
and every folder 0700, whatever the caller's umask, which is never changed process-wide (a
notebook kernel or a thread could be writing at the same time). Small files are written
atomically: to a temporary name in the same folder, fsynced, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def private_dir(path: Path | str, *, parents: bool = True) -> Path:
    """``path`` as a 0700 folder (created when absent; an existing one is tightened)."""
    path = Path(path)
    if parents and not path.parent.exists():
        private_dir(path.parent, parents=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: n'est pas un dossier")
    os.chmod(path, DIR_MODE)
    return path


@contextlib.contextmanager
def open_private(
    path: Path | str,
    mode: str = "wb",
    *,
    perms: int = FILE_MODE,
    encoding: str | None = None,
    exclusive: bool = False,
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing with ``perms`` from the start (never world-readable, even
    for a moment); ``exclusive`` refuses an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
    flags |= os.O_APPEND if "a" in mode else os.O_TRUNC
    fd = os.open(path, flags, perms)
    os.fchmod(fd, perms)  # an existing file keeps its old mode otherwise
    with os.fdopen(fd, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(path: Path | str) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path | str, data: bytes | str, *, perms: int = FILE_MODE) -> Path:
    """Replace ``path`` with ``data`` in one step: readers see the old or the new file whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open_private(tmp, "wb", perms=perms) as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def write_json(path: Path | str, data: Any, *, perms: int = FILE_MODE) -> Path:
    """Atomic, private JSON (UTF-8, French text kept readable)."""
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    return write_atomic(path, text + "\n", perms=perms)


def write_csv(path: Path | str, df, *, perms: int = FILE_MODE) -> Path:
    """A CSV for people: ``;``-separated, UTF-8 with BOM, as French spreadsheets open it."""
    with open_private(path, "w", perms=perms, encoding="utf-8-sig") as fh:
        df.to_csv(fh, sep=";", index=False)
    return Path(path)
