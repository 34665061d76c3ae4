"""What every report uses before anything is published: pseudonyms, masks, small cells.

Reports never show names, birth dates, addresses, phones or mails. Ids are keyed pseudonyms
(:mod:`ent_audit.store.pseudonym`, the store's key); a count of fewer than ``threshold`` people is
published as ``<threshold``, never exact.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.store import pseudonym

SMALL_CELL = 5
"""Published counts under this many people are shown as ``<5``."""


class Pseudonymiser:
    """Keyed pseudonyms for one store's people (the store's key, never shown)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_store(cls, store_path: Path | str) -> Pseudonymiser:
        return cls(pseudonym.load_key(Path(store_path) / "key"))

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymiser(<clé masquée>)"

    def ids(self, kind: str, jointures: pd.Series) -> pd.Series:
        return pseudonym.pseudonymise(self._key, kind, jointures)

    def frame(
        self,
        df: pd.DataFrame,
        kind: str,
        id_columns: tuple[str, ...] = ("jointure",),
        frame: str | None = None,
    ) -> pd.DataFrame:
        """A copy safe to publish: ids pseudonymised, personal columns of ``frame`` dropped."""
        out = df.copy()
        for col in id_columns:
            out[col] = self.ids(kind, out[col])
        personal = set(schema.personal_columns(frame)) if frame else set()
        return out.drop(columns=[c for c in out.columns if c in personal])


def mask_name(name: str | None) -> str | None:
    """``Durand`` -> ``D*****``: enough to tell two rows apart, not to identify anyone."""
    if name is None or pd.isna(name) or not str(name):
        return None
    text = str(name)
    return text[0] + "*" * (len(text) - 1)


def small_cells(counts: pd.Series, threshold: int = SMALL_CELL) -> pd.Series:
    """Counts as text, those under ``threshold`` (but above zero) shown as ``<threshold``."""
    counts = counts.astype("Int64")
    text = counts.astype(str)
    return text.where(~((counts > 0) & (counts < threshold)), f"<{threshold}")
