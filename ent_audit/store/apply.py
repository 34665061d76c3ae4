"""Apply a Delta extraction to the current state: pure functions over snapshot frames.

A Delta carries ``addRequest`` (a new record), ``modifyRequest`` (every attribute re-sent:
the record is replaced whole) and ``deleteRequest``. Before anything is applied, every anomaly
is listed: some make the delta impossible to apply consistently (it is then refused whole),
the others are applied in the one sensible way and reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import OP_DTYPE, concat, isin
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


def _feeds(kind: schema.Kind) -> list[tuple[str, str, str | None]]:
    """(link table, owner column, origin value) of the rows this kind's records produce."""
    out = []
    for f in kind.multi:
        table = schema.LINK_TABLES[f.link]
        entry = (f.link, f.owner, kind.entity if table.origin else None)
        if entry not in out:
            out.append(entry)
    return out


def apply_delta(state: Snapshot, delta: Snapshot) -> Snapshot:
    """The state after ``delta``: records added or replaced whole, deleted ones removed.

    Call :func:`check_delta` first: this function assumes no blocking anomaly. A modify of an
    unknown id adds it, an add of a known id replaces it, a delete of an unknown id does nothing.
    """
    entities: dict[str, pd.DataFrame] = {}
    links = dict(state.links)
    side = {"extras": state.extras, "issues": state.issues}  # rows keyed by (kind, jointure)
    for kind in schema.KINDS.values():
        rows = getattr(delta, kind.frame)
        touched = rows["jointure"].dropna().unique()
        old = getattr(state, kind.frame)
        keep = old[~isin(old["jointure"], touched)]
        new = rows[rows["op"] != "delete"]
        new = new.assign(op=pd.Categorical(["add"] * len(new), dtype=OP_DTYPE))
        entities[kind.frame] = concat([keep, new])
        for table, owner, origin in _feeds(kind):
            current = links[table]
            mine = isin(current[owner], touched)
            if origin is not None:
                mine &= current[schema.LINK_TABLES[table].origin] == origin
            incoming = delta.links[table]
            if origin is not None:
                incoming = incoming[incoming[schema.LINK_TABLES[table].origin] == origin]
            links[table] = concat([current[~mine], incoming])
        for name, frame in side.items():
            gone = (frame["kind"] == kind.name) & isin(frame["jointure"], touched)
            incoming = getattr(delta, name)
            side[name] = concat([frame[~gone], incoming[incoming["kind"] == kind.name]])
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
