"""Keyed pseudonyms: the only form in which a person's id leaves the latest snapshot.

A pseudonym is an HMAC-SHA256 of ``kind:jointure`` under a secret key, truncated to 20 hex
characters (80 bits). The key comes from ``ENT_AUDIT_KEY`` (hex or any text) or from a key file
created 0600 on first use; it is never written into outputs or logs. Without the key nobody can
link a pseudonym back to a jointure, and the same person keeps the same pseudonym across
extractions, which is what delta, retention and trend analyses need.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.io import fsync_dir

KEY_ENV = "ENT_AUDIT_KEY"
KEY_BYTES = 32
LENGTH = 20
"""Hex characters kept: 80 bits, collision-free in practice for millions of people."""


def load_key(key_file: Path | str) -> bytes:
    """The key from ``ENT_AUDIT_KEY``, else from ``key_file`` (created 0600 when absent).

    The file is created atomically: written whole and fsynced under a temporary name, then
    hard-linked to its name (``os.link`` fails if another process linked first, and then
    that process's key wins). A concurrent reader never sees an empty or half-written key.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            return bytes.fromhex(env)
        except ValueError:
            return env.encode("utf-8")
    path = Path(key_file)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(KEY_BYTES) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
    return _parse_key(path.read_text(encoding="ascii", errors="replace"))


def _parse_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("clé illisible (hexadécimal attendu)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"clé de {len(key)} octets au lieu de {KEY_BYTES}")
    return key


def pseudonym(key: bytes, kind: str, jointure: str) -> str:
    """One pseudonym (see :func:`pseudonymise` for a whole column)."""
    return hmac.new(key, f"{kind}:{jointure}".encode(), hashlib.sha256).hexdigest()[:LENGTH]


def pseudonymise(key: bytes, kind: str, jointures: Iterable[str | None] | pd.Series) -> pd.Series:
    """Pseudonyms of a column of jointures (missing stays missing).

    HMAC runs once per distinct value: a column repeats ids (links, histories).
    """
    s = pd.Series(jointures) if not isinstance(jointures, pd.Series) else jointures
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    inner, outer = _pads(key)
    prefix = f"{kind}:".encode()
    new_inner, new_outer = inner.copy, outer.copy
    out = []
    for u in uniques.tolist():
        h = new_inner()
        h.update(prefix + str(u).encode())
        o = new_outer()
        o.update(h.digest())
        out.append(o.hexdigest()[:LENGTH])
    values = np.array([*out, None], dtype=object)
    return pd.Series(
        values[np.where(codes < 0, len(out), codes)], index=s.index, dtype=pd.StringDtype("pyarrow")
    )


def _pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256 (RFC 2104) as two SHA-256 states, the key's inner and outer pads already
    absorbed: each value then costs two copies and two short updates, half the time of
    ``hmac`` objects (the same digests: see the tests)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer
