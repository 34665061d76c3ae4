"""Every rule evaluated as of a date: the items (overdue, upcoming, later, done) and the
result's counts and checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import frames
from ent_audit.analyses.retention.rules import (
    PERSON_RULE,
    RULE_BY_ID,
    RULES,
    STRING,
    STUDENT,
    Convention,
    Place,
    RuleId,
    Settings,
    Status,
)
from ent_audit.checks import Check
from ent_audit.exceptions import RetentionError
from ent_audit.store import pseudonym
from ent_audit.store.partial import MAX_DAYS
from ent_audit.store.purge import CATEGORY_LABELS, Category
from ent_audit.transfer.workdays import add_working_days

# -- evaluation -----------------------------------------------------------------------------


ITEM_COLUMNS = (
    "rule",
    "place",
    "pseudonym",
    "kind",
    "uai",
    "event_date",
    "deadline",
    "days_overdue",
    "status",
    "detail",
)
"""Columns of :attr:`RetentionResult.items`. ``days_overdue`` is ``as_of - deadline`` in days:
positive overdue, zero or negative the days left (negated)."""


PRESENCE_COLUMNS = ("pseudonym", "kind", "uai", "departed")
"""The presence history's columns the rules read (``Store.presence(columns=...)``)."""


def persons(presence: pd.DataFrame) -> pd.DataFrame:
    """One row per person of the presence history: ``pseudonym, kind, present`` (an open
    spell somewhere), ``departed`` (their last departure), ``uai`` (the school they left last,
    or where they are)."""
    if presence.empty:
        return pd.DataFrame(
            {
                "pseudonym": pd.Series([], dtype=STRING),
                "kind": pd.Series([], dtype=STRING),
                "present": pd.Series([], dtype=bool),
                "departed": pd.Series([], dtype="datetime64[ns]"),
                "uai": pd.Series([], dtype=STRING),
            }
        )
    keys = ["pseudonym", "kind"]
    p = presence[list(PRESENCE_COLUMNS)]
    p = p.assign(_open=p["departed"].isna())
    # Open spells sort last: the row kept per person is an open spell when there is one.
    p = p.assign(_order=p["departed"].fillna(pd.Timestamp.max))
    last = p.sort_values([*keys, "_order"], kind="stable").drop_duplicates(keys, keep="last")
    out = last[[*keys, "uai"]].copy()
    out["present"] = last["_open"].to_numpy()
    out["departed"] = last["departed"].where(~last["_open"])
    return out.reset_index(drop=True)[["pseudonym", "kind", "present", "departed", "uai"]]


def _frame(rows: list[pd.DataFrame]) -> pd.DataFrame:
    rows = [r for r in rows if len(r)]
    if not rows:
        out = pd.DataFrame({c: [] for c in ITEM_COLUMNS})
    else:
        out = pd.concat(rows, ignore_index=True)
    for c in ("rule", "place", "pseudonym", "kind", "uai", "status", "detail"):
        out[c] = out[c].astype(STRING)
    for c in ("event_date", "deadline"):
        out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
    out["days_overdue"] = out["days_overdue"].astype("Int64")
    return out[list(ITEM_COLUMNS)]


def _deadlines(rule: RuleId, events: pd.Series, settings: Settings) -> pd.Series:
    """The rule's deadline for each event date, computed once per distinct date."""
    fn = RULE_BY_ID[rule].deadline
    uniques = pd.Series(events.dropna().unique())
    table = {d: pd.Timestamp(fn(pd.Timestamp(d).date(), settings)) for d in uniques}
    return events.map(table).astype("datetime64[ns]")


def _status(items: pd.DataFrame, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
    days = (pd.Timestamp(as_of) - items["deadline"]).dt.days
    status = np.where(
        days > 0,
        str(Status.OVERDUE),
        np.where(days >= -horizon_days, str(Status.UPCOMING), str(Status.LATER)),
    )
    done = items["status"].astype(object) == str(Status.DONE)
    return items.assign(
        days_overdue=days.astype("Int64"), status=np.where(done, str(Status.DONE), status)
    )


def _items(
    rule: RuleId | pd.Series,
    place: Place,
    people: pd.DataFrame,
    event: pd.Series,
    settings: Settings,
    detail: str | pd.Series = "",
) -> pd.DataFrame:
    if isinstance(rule, RuleId):
        deadline = _deadlines(rule, event, settings)
        rules = pd.Series(str(rule), index=people.index)
    else:
        deadline = pd.Series(pd.NaT, index=people.index, dtype="datetime64[ns]")
        for r in rule.unique():
            mask = rule == r
            deadline[mask] = _deadlines(RuleId(r), event[mask], settings)
        rules = rule.astype(str)
    return pd.DataFrame(
        {
            "rule": rules,
            "place": str(place),
            "pseudonym": people["pseudonym"],
            "kind": people["kind"],
            "uai": people["uai"],
            "event_date": event,
            "deadline": deadline,
            "days_overdue": pd.NA,
            "status": "",
            "detail": detail,
        }
    )


@dataclass(frozen=True)
class RetentionResult:
    """What is overdue and upcoming, as of a date, at the provider and in the workbench."""

    as_of: dt.date
    horizon_days: int
    items: pd.DataFrame
    """One row per item, columns :data:`ITEM_COLUMNS`, most overdue first."""
    convention: Convention
    settings: Settings
    inputs: dict[str, bool] = field(default_factory=dict)
    """Which inputs were given (``presence``, ``accounts``, ``requests``, ``files``,
    ``convention``): a rule with no input is skipped, never passed."""
    requested: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    """Clear jointures of overdue destruction requests still in the workbench (for the
    purge; never published)."""

    def counts(self, status: Status) -> dict[str, int]:
        """Items per rule with this status, every rule listed."""
        got = self.items.loc[self.items["status"] == str(status), "rule"].value_counts()
        return {str(r.id): int(got.get(str(r.id), 0)) for r in RULES}

    @property
    def overdue(self) -> pd.DataFrame:
        return self.items[self.items["status"] == str(Status.OVERDUE)]

    def by_rule_place(self) -> pd.DataFrame:
        """Overdue and upcoming counts per rule and place, every rule listed."""
        rows = []
        for r in RULES:
            for place in Place:
                sel = self.items[
                    (self.items["rule"] == str(r.id)) & (self.items["place"] == str(place))
                ]
                rows.append(
                    {
                        "rule": str(r.id),
                        "title": r.title,
                        "place": str(place),
                        "overdue": int((sel["status"] == str(Status.OVERDUE)).sum()),
                        "upcoming": int((sel["status"] == str(Status.UPCOMING)).sum()),
                    }
                )
        return pd.DataFrame(rows)

    def by_school(self) -> pd.DataFrame:
        """Overdue and upcoming counts per school (items with a school), worst first."""
        sel = self.items[
            self.items["status"].isin([str(Status.OVERDUE), str(Status.UPCOMING)])
            & self.items["uai"].notna()
        ]
        if sel.empty:
            return pd.DataFrame(columns=["uai", "rule", "overdue", "upcoming"])
        out = (
            sel.assign(
                overdue=sel["status"] == str(Status.OVERDUE),
                upcoming=sel["status"] == str(Status.UPCOMING),
            )
            .groupby(["uai", "rule"], observed=True)[["overdue", "upcoming"]]
            .sum()
            .reset_index()
        )
        return out.sort_values(["overdue", "upcoming", "uai"], ascending=[False, False, True])

    def checks(self) -> list[Check]:
        """One blocking check per rule: any overdue item fails it; skipped without input."""
        needs = {
            RuleId.PUPIL_LEFT: ("presence", "accounts"),
            RuleId.GUARDIAN_ORPHANED: ("presence", "accounts"),
            RuleId.STAFF_LEFT: ("presence", "accounts"),
            RuleId.DESTRUCTION_REQUEST: ("requests",),
            RuleId.OLD_COPIES: ("files",),
            RuleId.CONVENTION_END: ("convention",),
        }
        overdue = self.counts(Status.OVERDUE)
        out = []
        for r in RULES:
            ran = any(self.inputs.get(i) for i in needs[r.id])
            n = overdue[str(r.id)]
            detail = (
                f"{n} élément(s) en retard (échéance : {r.deadline_text})"
                if n
                else "aucun élément en retard"
                if ran
                else f"non contrôlé : {' ou '.join(_INPUT_LABELS[i] for i in needs[r.id])} absent"
            )
            out.append(
                Check.of(
                    str(r.id),
                    f"{r.title} ({r.reference})",
                    (n == 0) if ran else None,
                    blocking=True,
                    detail=detail,
                )
            )
        return out

    def figures(self) -> dict:
        """``summary.json``: stable English keys."""
        items = self.items
        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "overdue": self.counts(Status.OVERDUE),
            "upcoming": self.counts(Status.UPCOMING),
            "overdue_total": int((items["status"] == str(Status.OVERDUE)).sum()),
            "upcoming_total": int((items["status"] == str(Status.UPCOMING)).sum()),
            "overdue_by_place": {
                str(p): int(
                    ((items["status"] == str(Status.OVERDUE)) & (items["place"] == str(p))).sum()
                )
                for p in Place
            },
            "convention": self.convention.to_dict(),
            "inputs": dict(self.inputs),
        }

    def to_dict(self) -> dict:
        return {
            **self.figures(),
            "rules": [r.to_dict() for r in RULES],
            "settings": self.settings.__dict__,
        }

    def published(self) -> pd.DataFrame:
        """The items for a page or a CSV: pseudonyms only (French column names later)."""
        return self.items.copy()


_INPUT_LABELS = {
    "presence": "historique de présence",
    "accounts": "export des comptes",
    "requests": "fichier des demandes",
    "files": "inventaire de l'atelier",
    "convention": "dates de la convention",
}


def evaluate(
    as_of: dt.date,
    *,
    presence: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    key: bytes | None = None,
    accounts: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    requests: pd.DataFrame | None = None,
    convention: Convention | None = None,
    files: pd.DataFrame | None = None,
    state_jointures: pd.Series | None = None,
    first_date: dt.date | None = None,
    settings: Settings | None = None,
    horizon_days: int = 30,
) -> RetentionResult:
    """Evaluate every rule ``as_of`` a date.

    ``presence`` is the store's history, ``key`` the store's pseudonym key (to match the
    clear jointures of ``accounts`` and ``requests`` with it). ``files`` is the workbench's
    inventory (:func:`ent_audit.store.purge.inventory`), ``state_jointures`` the pupils'
    jointures in the live state (a pending request on one of them is also a workbench item).
    ``first_date`` is the first extraction ingested: an account of someone the store never
    saw left before it. Missing inputs skip their rules.

    ``presence`` and ``accounts`` may be loaders (called once, without argument): the export
    is then read, pseudonymised and released before the history is read, so that an
    académie's export (650,000 rows) and history (670,000) are never held together.
    """
    settings = settings or Settings()
    convention = convention or Convention()
    if horizon_days < 0:
        raise RetentionError("horizon_days", f"doit être positif ou nul, reçu {horizon_days}")
    if (accounts is not None or requests is not None) and key is None:
        raise RetentionError("key", "la clé des pseudonymes du store est nécessaire")
    has_accounts, has_presence = accounts is not None, presence is not None
    # Pseudonymised once: the account rule and the requests' check both match on it.
    acc = _pseudonymised(_loaded(accounts), key) if has_accounts else None
    accounts = None  # a loader's frame goes now
    presence = _loaded(presence) if has_presence else _empty_presence()
    # Everyone with an open spell is present: only the others need a row of :func:`persons`
    # (a few thousand of an académie's 670,000 people).
    ids = _arrow(presence["pseudonym"])
    present = _Present(presence, ids)
    closed = presence[~presence["departed"].isna().to_numpy()]
    left = persons(_strings(closed[~present(closed)]))
    rows: list[pd.DataFrame] = []

    # People who left, still in the workbench's presence history.
    for kind, rule in PERSON_RULE.items():
        sel = left[left["kind"] == kind]
        rows.append(_items(rule, Place.WORKBENCH, sel, sel["departed"], settings))

    # Accounts the provider still holds.
    if acc is not None:
        # Accounts of people without an open spell: those who left, or were never seen.
        gone = _strings(acc[~present(acc)]).merge(
            left, on=["pseudonym", "kind"], how="left", suffixes=("_account", "")
        )
        known = gone["departed"].notna()
        start = pd.Timestamp(first_date) if first_date else pd.NaT
        event = gone["departed"].where(known, start)
        gone = gone.assign(uai=gone["uai"].fillna(gone["uai_account"]))
        detail = pd.Series(
            np.where(
                known,
                "compte encore présent dans l'export",
                "compte d'une personne absente de toutes les extractions ingérées",
            ),
            index=gone.index,
        )
        dated = event.notna()
        gone, event, detail = gone[dated], event[dated], detail[dated]
        rule = gone["kind"].astype(str).map({k: str(v) for k, v in PERSON_RULE.items()})
        rows.append(_items(rule, Place.PROVIDER, gone, event, settings, detail))

    # Destruction requests (pupils).
    requested = pd.DataFrame(columns=["jointure", "pseudonym"])
    if requests is not None:
        # As of the date: a request made later does not exist yet, one done later is pending.
        made = requests[requests["request_date"] <= pd.Timestamp(as_of)]
        req = made.assign(
            kind=STUDENT,
            pseudonym=pseudonym.pseudonymise(key, STUDENT, made["jointure"]),
            done_date=made["done_date"].where(made["done_date"] <= pd.Timestamp(as_of)),
        )
        named = _member(ids, req["pseudonym"])
        who = persons(_strings(presence[named & _is(presence["kind"], STUDENT)]))
        who = who[["pseudonym", "kind", "uai"]]
        req = req.merge(who, on=["pseudonym", "kind"], how="left")
        exported = pd.Series(
            _member(req["pseudonym"], acc["pseudonym"]) if acc is not None else False,
            index=req.index,
        )
        done = req["done_date"].notna()
        detail = np.where(
            done & exported,
            "réalisée selon le fichier, mais le compte figure encore dans l'export",
            np.where(done, "réalisée le " + req["done_date"].dt.strftime("%d/%m/%Y"), "en attente"),
        )
        items = _items(
            RuleId.DESTRUCTION_REQUEST,
            Place.PROVIDER,
            req,
            req["request_date"],
            settings,
            pd.Series(detail, index=req.index),
        )
        items.loc[(done & ~exported).to_numpy(), "status"] = str(Status.DONE)
        rows.append(items)
        # In the workbench: the pupil's presence rows, and their record if still in the state.
        held = frames.isin(req["pseudonym"], ids.filter(pa.array(named)))
        if state_jointures is not None:
            held |= frames.isin(req["jointure"], state_jointures)
        wb = req[held]
        rows.append(
            _items(
                RuleId.DESTRUCTION_REQUEST,
                Place.WORKBENCH,
                wb,
                wb["request_date"],
                settings,
                "données encore dans le store",
            )
        )
        requested = wb[["jointure", "pseudonym", "request_date"]]

    # The workbench's own files.
    if files is not None and len(files):
        rows.append(_file_items(files, settings))

    # End of the convention: everything, everywhere.
    end = convention.effective_end
    if end is not None:
        places = [Place.WORKBENCH]
        if acc is not None and len(acc):
            places.append(Place.PROVIDER)
        for place in places:
            one = pd.DataFrame({"pseudonym": [None], "kind": [None], "uai": [None]})
            label = "résiliation" if convention.terminated == end else "fin"
            rows.append(
                _items(
                    RuleId.CONVENTION_END,
                    place,
                    one,
                    pd.Series([pd.Timestamp(end)]),
                    settings,
                    f"{label} de la convention le {end:%d/%m/%Y} : toutes les données",
                )
            )

    items = _status(_frame(rows), as_of, horizon_days)
    items = items.sort_values(
        ["days_overdue", "rule", "pseudonym"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)
    req_due = requested.merge(
        items.loc[
            (items["rule"] == str(RuleId.DESTRUCTION_REQUEST))
            & (items["place"] == str(Place.WORKBENCH))
            & (items["status"] == str(Status.OVERDUE)),
            ["pseudonym"],
        ],
        on="pseudonym",
    )
    return RetentionResult(
        as_of,
        horizon_days,
        items,
        convention,
        settings,
        {
            "presence": has_presence,
            "accounts": has_accounts,
            "requests": requests is not None,
            "files": files is not None,
            "convention": end is not None,
        },
        req_due[["jointure", "pseudonym"]].reset_index(drop=True),
    )


class _Present:
    """Whether (pseudonym, kind) pairs have an open spell in a presence history: its open
    spells per kind, matched by Arrow (no frame of pairs, no Python string per row)."""

    def __init__(self, presence: pd.DataFrame, ids: pa.ChunkedArray) -> None:
        self.ids = ids
        open_ = presence["departed"].isna().to_numpy()
        self.open = {
            kind: pa.array(open_ & _is(presence["kind"], kind))
            for kind in presence["kind"].dropna().unique()
        }

    def __call__(self, pairs: pd.DataFrame) -> np.ndarray:
        """One flag per row of ``pairs`` (columns ``pseudonym``, ``kind``)."""
        out = np.zeros(len(pairs), dtype=bool)
        for kind, spells in self.open.items():
            at = _is(pairs["kind"], kind)
            if at.any():
                out[at] = _member(pairs["pseudonym"][at], self.ids.filter(spells))
        return out


def _is(column: pd.Series, value: str) -> np.ndarray:
    return column.eq(value).to_numpy(dtype=bool, na_value=False)


def _arrow(column: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A string column as Arrow, without a copy when it is one already."""
    return pa.array(column.astype(STRING).array) if isinstance(column, pd.Series) else column


def _slices(*columns: pa.Array | pa.ChunkedArray) -> Iterator[tuple[np.ndarray, ...]]:
    """Masks of each column's rows by their first character (missing values apart): equal
    values fall in the same slice, and a slice holds about a sixteenth of a column of
    hexadecimal pseudonyms. Matching slice by slice hashes a sixteenth at a time (a hash set
    of an académie's 400,000 guardians' pseudonyms takes 50 MB)."""
    keys = [pc.utf8_slice_codeunits(c, 0, 1) for c in columns]
    firsts = set().union(*(pc.unique(k).to_pylist() for k in keys))
    for first in sorted(firsts, key=lambda f: (f is None, f or "")):
        yield tuple(
            (pc.is_null(k) if first is None else pc.equal(k, first))
            .fill_null(False)
            .to_numpy(zero_copy_only=False)
            for k in keys
        )


def _member(values, among) -> np.ndarray:
    """:func:`ent_audit.aaf.frames.isin` for columns of pseudonyms, one slice
    (:func:`_slices`) at a time."""
    values, among = _arrow(values), _arrow(among)
    out = np.zeros(len(values), dtype=bool)
    for here, there in _slices(values, among):
        if here.any():
            out[here] = frames.isin(values.filter(pa.array(here)), among.filter(pa.array(there)))
    return out


def _first_of_each(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Positions of each value's first occurrence (missing values equal), in order: what
    ``~duplicated()`` keeps, one slice (:func:`_slices`) at a time."""
    out = []
    for (here,) in _slices(values):
        at = np.flatnonzero(here)
        part = values.filter(pa.array(here))
        if isinstance(part, pa.ChunkedArray):
            part = part.combine_chunks()
        codes = pc.dictionary_encode(part).indices.fill_null(-1).to_numpy(zero_copy_only=False)
        out.append(at[np.unique(codes, return_index=True)[1]])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def _loaded(frame: pd.DataFrame | Callable[[], pd.DataFrame]) -> pd.DataFrame:
    return frame() if callable(frame) else frame


def _empty_presence() -> pd.DataFrame:
    from ent_audit.store import presence as presence_module

    return presence_module.empty()


def _pseudonymised(accounts: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """``pseudonym, kind, uai`` per account (``kind`` and ``uai`` as categoricals), the first of
    each (pseudonym, kind): the pilot
    console's pseudonyms of the export
    (:func:`ent_audit.analyses.activity.indicators.pseudonymise_accounts`: one per kind, the
    store's key, "" without a kind), so both reports name an account alike; computed here one
    kind and :data:`CHUNK` accounts at a time, never the whole export as Python strings."""
    users, kinds = accounts["user"], accounts["kind"]
    # Without a kind every account is named "": the first stands for them all.
    kept = [np.flatnonzero(kinds.isna().to_numpy())[:1]]
    names = [pa.array([""] * len(kept[0]), pa.string())]
    labels = list(kinds.dropna().unique())
    codes = [np.full(len(kept[0]), -1)]
    for code, kind in enumerate(labels):
        at = np.flatnonzero(_is(kinds, kind))
        named = pa.chunked_array(
            [
                frames.arrow_strings(pseudonym.pseudonymise(key, kind, users.iloc[part]))
                for part in np.array_split(at, range(CHUNK, len(at), CHUNK))
            ],
            pa.string(),
        )
        first = _first_of_each(named)
        kept.append(at[first])
        names.extend(named.take(pa.array(first)).chunks)
        codes.append(np.full(len(first), code))
    where = np.concatenate(kept)
    order = np.argsort(where, kind="stable")
    rows = where[order]
    return pd.DataFrame(
        {
            "pseudonym": pd.arrays.ArrowStringArray(
                pa.chunked_array(names, pa.string()).take(pa.array(order)).cast(pa.large_string())
            ),
            "kind": pd.Categorical.from_codes(np.concatenate(codes)[order], labels),
            "uai": _categorical(accounts["uai"], rows),
        },
        index=accounts.index[rows],
    )


def _categorical(column: pd.Series, rows: np.ndarray) -> pd.Categorical:
    """``column``'s values at ``rows``, as a categorical (coded once, by Arrow)."""
    codes, uniques = pd.factorize(column)
    return pd.Categorical.from_codes(codes[rows], uniques)


def _strings(df: pd.DataFrame) -> pd.DataFrame:
    """``kind`` and ``uai`` as strings again (a few rows: the presence and the accounts are
    read and matched with them as categoricals)."""
    cats = [c for c in ("kind", "uai") if isinstance(df[c].dtype, pd.CategoricalDtype)]
    return df.astype(dict.fromkeys(cats, STRING))


CHUNK = 1 << 16
"""Accounts pseudonymised at a time (:func:`_pseudonymised`)."""


DETAIL_SEPARATOR = " : "
"""Between a file item's French category and its path, in its ``detail`` (the purge plan
takes the path back after it: a label has no such separator)."""


def _file_items(files: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """Old copies: each inventoried file or folder with the deadline of its category."""
    date = pd.to_datetime(files["date"]).dt.normalize()
    days = files["category"].map(
        {
            str(Category.OLD_STATE): 0,
            str(Category.SUPERSEDED): MAX_DAYS,
            str(Category.TEMPORARY): 0,
            str(Category.OUTPUT_RUN): s.keep_days,
            str(Category.FINDINGS): s.findings_days,
            str(Category.CLEAR_CSV): s.clear_days,
        }
    )
    deadline = date + pd.to_timedelta(days.fillna(0), unit="D")
    archive = (files["category"] == str(Category.ARCHIVE)).to_numpy()
    if archive.any():
        uniques = {
            d: pd.Timestamp(add_working_days(d.date(), s.archive_days)) for d in set(date[archive])
        }
        deadline[archive] = date[archive].map(uniques)
    return pd.DataFrame(
        {
            "rule": str(RuleId.OLD_COPIES),
            "place": str(Place.WORKBENCH),
            "pseudonym": None,
            "kind": None,
            "uai": None,
            "event_date": date,
            "deadline": deadline,
            "days_overdue": pd.NA,
            "status": "",
            "detail": files["category"].map(lambda c: CATEGORY_LABELS[Category(c)])
            + DETAIL_SEPARATOR
            + files["path"].astype(str),
        }
    )
