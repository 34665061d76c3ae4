"""How a defect is injected: what it sees and may change, and what a defect is.

Defects are injected into the first Complet and carried unchanged into the later one; the
delta never touches a defect's records, and every record is the victim of at most one defect,
so that a checker can be scored against ``truth.json`` exactly. :class:`InjectContext` keeps
those promises; the catalogue of defects is :mod:`ent_audit.synth.defects`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ent_audit.synth.draws import IdPool
from ent_audit.synth.model import Model
from ent_audit.synth.names import names_key
from ent_audit.synth.records import EL, Record


class InjectContext:
    """What a defect sees and may change: the complete states that carry the defects.

    Every change goes through the record objects of the first complete extraction, which the
    later complete extraction shares for every record the delta did not touch; records
    removed by a defect are removed from every complete state.
    """

    def __init__(
        self,
        model: Model,
        states: list[dict[str, list[Record]]],
        used: set[tuple[str, str]],
        ids: IdPool,
        start: dt.date,
    ) -> None:
        self.model = model
        self.states = states
        """The complete extractions that carry the defects, by kind."""
        self.used = used
        """(kind, jointure) of the records no defect may take: victims so far, and every
        record the delta touches."""
        self.ids = ids
        self.start = start
        """Date of the first complete extraction."""
        self.rng = np.random.default_rng(0)
        """Set to the defect's own stream before each injection."""
        self.index: dict[str, dict[str, Record]] = {
            k: {r.id: r for r in recs} for k, recs in states[0].items()
        }
        """Records of the first complete extraction by kind and jointure."""
        self.removed: set[int] = set()
        """``id()`` of the removed records (shared by every state that holds them)."""
        self.school_by_jointure = {s.jointure: s for s in model.schools}

    @functools.cached_property
    def births(self) -> set[tuple[str, str, str | None]]:
        """Names and birth date of every pupil of every state: a defect must not make two
        pupils look like one person (an audit's probable duplicate)."""
        return {
            (
                *names_key(r.attrs[EL.last_name][0] or "", r.attrs[EL.first_name][0] or ""),
                r.attrs[EL.birth_date][0],
            )
            for state in self.states
            for r in state["Eleve"]
        }

    def free(self, kind: str, *jointures: str) -> bool:
        return all((kind, j) not in self.used for j in jointures)

    def claim(self, kind: str, *jointures: str) -> None:
        self.used.update((kind, j) for j in jointures)

    def take(self, kind: str, jointure: str) -> Record | None:
        """Claim a record for one defect; None when another defect or the delta has it."""
        if not self.free(kind, jointure):
            return None
        self.claim(kind, jointure)
        return self.rec(kind, jointure)

    def remove(self, kind: str, jointure: str) -> None:
        self.removed.add(id(self.index[kind][jointure]))

    def rec(self, kind: str, jointure: str) -> Record:
        return self.index[kind][jointure]

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.integers(len(seq)))]

    def finish(self) -> None:
        """Apply the deferred removals to every complete state."""
        if not self.removed:
            return
        for state in self.states:
            for kind in state:
                state[kind] = [r for r in state[kind] if id(r) not in self.removed]


Entry = dict[str, Any]


@dataclass(frozen=True)
class Defect:
    """One kind of defect a checker should find.

    ``eligible`` lists the candidate victims; ``apply`` turns one candidate into a defect and
    returns its truth entry, or None when the candidate clashes with an earlier victim.
    """

    name: str
    kind: str
    description: str
    eligible: Callable[[InjectContext], list[Any]]
    apply: Callable[[InjectContext, Any], Entry | None]

    def inject(self, ctx: InjectContext, rate: float) -> list[Entry]:
        """Inject ``max(1, round(rate * eligible))`` defects (fewer if candidates run out)."""
        candidates = self.eligible(ctx)
        if rate <= 0 or not candidates:
            return []
        wanted = max(1, round(rate * len(candidates)))
        entries: list[Entry] = []
        for i in ctx.rng.permutation(len(candidates)).tolist():
            if len(entries) >= wanted:
                break
            entry = self.apply(ctx, candidates[i])
            if entry is not None:
                entries.append(entry)
        return entries
