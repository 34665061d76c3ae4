"""Apply a Delta extraction to the current state: pure functions over snapshot frames.

A Delta carries ``addRequest`` (a new record), ``modifyRequest`` (DSML: per attribute,
``replace`` its values, ``add`` values, ``delete`` values or the attribute; attributes not
named keep theirs) and ``deleteRequest``. Before anything is applied, every anomaly
is listed: some make the delta impossible to apply consistently (it is then refused whole),
the others are applied in the one sensible way and reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import CONVERTERS, OP_DTYPE, STRING, concat, isin, link_rows
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot

BLOCKING = frozenset(
    {"no_base_state", "perimeter_mismatch", "not_newer", "duplicate_in_delta", "not_a_delta"}
)
"""Anomalies that make a delta impossible to apply consistently: the delta is refused."""

MAX_GAP_DAYS = 31
"""A delta dated more than this after the state it applies to leaves a gap (a missed delta?)."""


@dataclass(frozen=True)
class Anomaly:
    """One thing a delta does that it should not; ``blocking`` ones refuse the whole delta."""

    code: str
    message: str
    kind: str | None = None
    jointure: str | None = None
    source_file: str | None = None
    line: int | None = None

    @property
    def blocking(self) -> bool:
        return self.code in BLOCKING

    def to_dict(self) -> dict:
        return {**asdict(self), "blocking": self.blocking}


def check_delta(
    state: Snapshot | None, delta: Snapshot, *, max_gap_days: int = MAX_GAP_DAYS
) -> list[Anomaly]:
    """Every anomaly of applying ``delta`` to ``state``, blocking ones first."""
    d = delta.extraction
    out: list[Anomaly] = []
    if d.extraction != "delta":
        return [Anomaly("not_a_delta", f"{d.extraction} n'est pas une extraction Delta")]
    if state is None:
        return [
            Anomaly(
                "no_base_state",
                "aucune extraction complète ingérée: un Delta ne s'applique qu'à un état complet",
            )
        ]
    s = state.extraction
    if s.perimeter != d.perimeter:
        out.append(
            Anomaly(
                "perimeter_mismatch",
                f"périmètre {d.perimeter!r} différent de l'état ({s.perimeter!r})",
            )
        )
    if d.date is None or s.date is None or d.date <= s.date:
        out.append(Anomaly("not_newer", f"Delta du {d.date} pas postérieur à l'état du {s.date}"))
    elif (d.date - s.date).days > max_gap_days:
        out.append(
            Anomaly(
                "gap",
                f"Delta du {d.date}: {(d.date - s.date).days} jours après "
                f"l'état du {s.date} (plus de {max_gap_days}): un Delta "
                "intermédiaire manque-t-il ?",
            )
        )
    for kind in schema.KINDS.values():
        rows = getattr(delta, kind.frame)
        known = getattr(state, kind.frame)["jointure"].dropna()
        dup = rows[rows["jointure"].duplicated(keep=False)]
        out += [
            _row_anomaly(
                "duplicate_in_delta", kind.name, r, "même identifiant plusieurs fois dans le Delta"
            )
            for r in dup.itertuples()
        ]
        rows = rows.drop_duplicates("jointure", keep=False)
        present = isin(rows["jointure"], known)
        for op, mask, code, msg in (
            ("add", present, "add_existing", "ajout d'un identifiant déjà présent: remplacé"),
            ("modify", ~present, "modify_unknown", "modification d'un identifiant inconnu: ajouté"),
            ("delete", ~present, "delete_unknown", "suppression d'un identifiant inconnu: ignorée"),
        ):
            hit = rows[(rows["op"] == op) & mask]
            out += [_row_anomaly(code, kind.name, r, msg) for r in hit.itertuples()]
    return sorted(out, key=lambda a: not a.blocking)


def _row_anomaly(code: str, kind: str, row, message: str) -> Anomaly:
    return Anomaly(code, message, kind, row.jointure, str(row.source_file), int(row.line))


def _feeds(kind: schema.Kind) -> list[tuple[schema.Field, str, str, str | None]]:
    """(field, link table, owner column, origin value) of the rows this kind's records feed;
    within one kind each (table, origin) is fed by one field."""
    out = []
    for f in kind.multi:
        table = schema.LINK_TABLES[f.link]
        out.append((f, f.link, f.owner, kind.entity if table.origin else None))
    return out


def _names(f: schema.Field) -> list[str]:
    return [f.attr, *f.aliases]


def _restrict(frame: pd.DataFrame, table: str, origin: str | None) -> np.ndarray:
    """Rows of a link table stated by this kind (all rows when the table has one origin)."""
    if origin is None:
        return np.ones(len(frame), dtype=bool)
    return (frame[schema.LINK_TABLES[table].origin] == origin).to_numpy(dtype=bool, na_value=False)


def _merge_entities(
    kind: schema.Kind, old: pd.DataFrame, new: pd.DataFrame, mods: pd.DataFrame
) -> pd.DataFrame:
    """Known records modified attribute by attribute (DSML): ``replace`` sets the attribute
    (no value: removes it), ``add`` sets a single-valued one, ``delete`` removes it (with
    values: only if it holds one of them); attributes not mentioned keep their value."""
    base = old.set_index("jointure").loc[new["jointure"]]
    incoming = new.set_index("jointure")
    for f in kind.single:
        if f.column == "jointure":
            continue
        m = mods[mods["attribute"].isin(_names(f))]
        if m.empty:
            continue
        col = base[f.column]
        replaced = base.index.isin(m.loc[m["op"] == "replace", "jointure"])
        col = col.mask(replaced, incoming[f.column])
        adds = m[(m["op"] == "add") & m["value"].notna()].drop_duplicates("jointure", keep="last")
        if len(adds):
            typed, _ = CONVERTERS[f.dtype](adds["value"].astype(STRING).reset_index(drop=True))
            typed.index = pd.Index(adds["jointure"].astype(object))
            col = col.mask(base.index.isin(adds["jointure"]), typed)
        dels = m[m["op"] == "delete"]
        if len(dels):
            valued = dels[dels["value"].notna()]
            whole = set(dels["jointure"]) - set(valued["jointure"])
            gone = base.index.isin(list(whole))
            if len(valued):
                raw = valued["value"].astype(STRING).reset_index(drop=True)
                typed, _ = CONVERTERS[f.dtype](raw)
                owners = pd.Index(valued["jointure"].astype(object))
                held = col.loc[owners].astype(str).to_numpy()
                gone |= base.index.isin(owners[held == typed.astype(str).to_numpy()])
            col = col.mask(gone)
        base[f.column] = col
    for c in ("source_file", "record", "line"):  # where the record was last touched
        base[c] = incoming[c]
    base["op"] = pd.Categorical(["add"] * len(base), dtype=OP_DTYPE)
    return base.reset_index()[list(old.columns)]


def _merge_links(
    kind: schema.Kind,
    f: schema.Field,
    table: str,
    owner: str,
    origin: str | None,
    current: pd.DataFrame,
    incoming: pd.DataFrame,
    mods: pd.DataFrame,
) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """For known records modified attribute by attribute: which current rows go, and the
    rows that come (``replace``: the Delta's rows; ``add``: its values; ``delete``: values
    removed, or every row of the attribute without values)."""
    m = mods[mods["attribute"].isin(_names(f))]
    mine = _restrict(current, table, origin)
    drop = np.zeros(len(current), dtype=bool)
    if m.empty:
        return drop, []
    replaced = m.loc[m["op"] == "replace", "jointure"].unique()
    dels = m[m["op"] == "delete"]
    valued = dels[dels["value"].notna()]
    cleared = list(set(dels["jointure"]) - set(valued["jointure"]))
    drop |= mine & isin(current[owner], [*replaced, *cleared])
    come = [incoming[_restrict(incoming, table, origin) & isin(incoming[owner], replaced)]]
    cols = [owner, *f.parts]
    if len(valued):
        gone = link_rows(kind, f, valued["jointure"], valued["value"].tolist(), valued["line"])
        keys = pd.MultiIndex.from_frame(gone[cols].astype(object))
        drop |= mine & pd.MultiIndex.from_frame(current[cols].astype(object)).isin(keys)
    adds = m[(m["op"] == "add") & m["value"].notna()]
    if len(adds):
        come.append(link_rows(kind, f, adds["jointure"], adds["value"].tolist(), adds["line"]))
    return drop, come


def _updated(current: pd.DataFrame, gone: np.ndarray, coming: list[pd.DataFrame]) -> pd.DataFrame:
    """``current`` without the rows ``gone``, with ``coming`` after them; ``current`` itself
    (the same object) when nothing changes, so the store can reuse its file."""
    if len(current) and not gone.any() and not any(len(c) for c in coming):
        return current
    return concat([current[~gone], *coming])


def apply_delta(state: Snapshot, delta: Snapshot) -> Snapshot:
    """The state after ``delta``.

    ``addRequest`` adds a record whole (replacing a known one); ``deleteRequest`` removes it
    with the links it stated; ``modifyRequest`` on a known record changes only the attributes
    it names, as DSML defines each operation (``replace``, ``add``, ``delete``), and on an
    unknown record adds what it carries. Call :func:`check_delta` first: this function
    assumes no blocking anomaly. A frame the Delta does not change is the state's own object
    (``new.staff is state.staff``): the store links its file instead of writing it again.
    """
    entities: dict[str, pd.DataFrame] = {}
    links = dict(state.links)
    side = {"extras": state.extras, "issues": state.issues}  # rows keyed by (kind, jointure)
    all_mods = delta.modifications
    for kind in schema.KINDS.values():
        rows = getattr(delta, kind.frame)
        old = getattr(state, kind.frame)
        partial_mask = (rows["op"] == "modify").to_numpy(dtype=bool) & isin(
            rows["jointure"], old["jointure"].dropna()
        )
        partial, whole = rows[partial_mask], rows[~partial_mask]
        whole_ids = whole["jointure"].dropna().unique()
        partial_ids = partial["jointure"].dropna().unique()
        mods = all_mods[(all_mods["kind"] == kind.name) & isin(all_mods["jointure"], partial_ids)]
        if len(rows):
            new = whole[whole["op"] != "delete"]
            new = new.assign(op=pd.Categorical(["add"] * len(new), dtype=OP_DTYPE))
            merged = _merge_entities(kind, old[isin(old["jointure"], partial_ids)], partial, mods)
            gone = isin(old["jointure"], [*whole_ids, *partial_ids])
            entities[kind.frame] = _updated(old, gone, [merged, new])
            for f, table, owner, origin in _feeds(kind):
                current = links[table]
                incoming = delta.links[table]
                replaced = _restrict(current, table, origin) & isin(current[owner], whole_ids)
                drop, come = _merge_links(kind, f, table, owner, origin, current, incoming, mods)
                arriving = incoming[
                    _restrict(incoming, table, origin) & isin(incoming[owner], whole_ids)
                ]
                links[table] = _updated(current, replaced | drop, [arriving, *come])
        else:  # a kind the Delta does not touch keeps its frames as they are (reused on disk)
            entities[kind.frame] = old
        mentioned = set(mods["attribute"])
        for name, frame in side.items():
            ours = (frame["kind"] == kind.name).to_numpy(dtype=bool, na_value=False)
            gone = ours & isin(frame["jointure"], whole_ids)
            attr = frame["attribute"]
            gone |= (
                ours
                & isin(frame["jointure"], partial_ids)
                & (attr.isin(mentioned) | ~attr.isin(schema.KNOWN_ATTRIBUTES)).to_numpy(
                    dtype=bool, na_value=True
                )
            )
            incoming = getattr(delta, name)
            side[name] = _updated(frame, gone, [incoming[incoming["kind"] == kind.name]])
    return replace(
        state,
        extraction=ExtractionInfo(state.extraction.perimeter, "complete", delta.extraction.date),
        links=links,
        **side,
        skipped=concat([state.skipped, delta.skipped]),
        files=concat([state.files, delta.files]),
        notes=[*state.notes, *delta.notes],
        **entities,
    )
