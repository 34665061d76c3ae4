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

SMALL_CELL_UNITS = ("école", "classe", "commune", "circonscription")
"""The one rule: a count of people broken down by one of these units (or a finer one) can point
at someone, so under the threshold it is masked, on the page, in ``summary.json`` and in the
index. Counts over the whole perimeter (pupils per level of the département) are not."""

SECONDARY = "masqué"
"""A cell masked only so that a small one cannot be worked back from the total."""


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


def small_cell_rule(threshold: int = SMALL_CELL) -> str:
    """The rule in French, as every page states it (with the threshold actually used)."""
    units = ", ".join(SMALL_CELL_UNITS[:-1]) + " ou " + SMALL_CELL_UNITS[-1]
    return (
        f"Secret statistique : un effectif de personnes par {units} inférieur à {threshold} "
        f"s'affiche « <{threshold} » ; quand il pourrait se déduire d'un total et des autres "
        f"cases, un deuxième effectif est affiché « {SECONDARY} »."
    )


def mask_partition(counts: pd.Series, threshold: int = SMALL_CELL) -> pd.Series:
    """Counts that together make a published total (one per school, commune…), masked so that
    no small count shows and none can be worked back from the total and the visible others.

    Under ``threshold`` (above zero): ``<threshold``. Then, while the masked cells are a single
    one or add up to less than ``threshold`` (the total minus the visible cells would give them
    away), the smallest visible non-zero cell is masked too (« masqué »). Values are ints where
    shown, text where masked; the index is kept.
    """
    values = pd.to_numeric(counts, errors="coerce").fillna(0).astype("int64")
    primary = (values > 0) & (values < threshold)
    masked = primary.copy()
    while masked.any():
        hidden = values[masked]
        if len(hidden) >= 2 and hidden.sum() >= threshold:
            break
        candidates = values[~masked & (values > 0)]
        if candidates.empty:
            break
        masked[candidates.idxmin()] = True
    out = values.astype(object)
    out[masked] = SECONDARY
    out[primary] = f"<{threshold}"
    return out


def mask_counts(
    df: pd.DataFrame,
    columns: list[str] | tuple[str, ...],
    threshold: int = SMALL_CELL,
    *,
    total_row=None,
) -> pd.DataFrame:
    """A copy of ``df`` whose ``columns`` (counts of people, one row per school, commune…) are
    masked by :func:`mask_partition`, each column on its own. ``total_row`` (an index label) is
    the published total: it stays exact unless it is itself under the threshold."""
    out = df.copy()
    body = out.index != total_row if total_row is not None else slice(None)
    for col in columns:
        column = out[col].astype(object)
        column[body] = mask_partition(out.loc[body, col], threshold)
        if total_row is not None:
            total = int(out.loc[total_row, col])
            if 0 < total < threshold:
                column[out.index == total_row] = f"<{threshold}"
        out[col] = column
    return out


def visible(masked: pd.Series) -> pd.Series:
    """The numbers of a masked column, ``NA`` where masked: what a chart may draw."""
    return pd.to_numeric(
        masked.where(masked.map(lambda v: not isinstance(v, str))), errors="coerce"
    )
