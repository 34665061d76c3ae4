"""Retention: which personal data has outlived the convention's deadlines, as of a date.

The convention (art. 4, 8, 9 and Annexe 1; table in ``design.md``) fixes when personal data
must be destroyed. Each rule is a record (:data:`RULES`: id, French title, legal reference, how
its deadline is computed) evaluated ``as_of`` a date over:

- the store's presence history (who was where, from when to when, pseudonymous);
- the provider's account export (CSV: jointure, profile, UAI, activated, activation date, last
  login; column names mappable), to find accounts the provider kept too long;
- the destruction requests (CSV: jointure, request date, done date);
- the convention's dates (signed, planned end, termination);
- the workbench's own files (:func:`ent_audit.store.purge.inventory`): old copies of personal
  data, leftover temporary folders, raw archives, report outputs and findings CSVs.

A **deadline** is the last day the data may still exist: an item is overdue from the day after
(``as_of > deadline``), upcoming when its deadline falls within ``horizon_days``. Items carry
keyed pseudonyms only; the clear jointures of destruction requests stay in memory, for the
purge. :func:`purge_plan` turns the overdue workbench items into what ``ent-audit purge``
deletes (:mod:`ent_audit.store.purge` applies it).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.aaf import frames, schema
from ent_audit.checks import Check
from ent_audit.exceptions import InputFileError, RetentionError
from ent_audit.store import access, pseudonym
from ent_audit.store.purge import Category, PurgePlan, inventory
from ent_audit.store.store import Store
from ent_audit.transfer.workdays import add_working_days

__all__ = [
    "ACCOUNT_COLUMNS",
    "REQUEST_COLUMNS",
    "RULES",
    "Convention",
    "Place",
    "RetentionResult",
    "Rule",
    "RuleId",
    "add_months",
    "end_of_year",
    "evaluate",
    "purge_plan",
    "read_accounts",
    "read_requests",
    "workbench",
]

STUDENT, GUARDIAN, STAFF = schema.STUDENT.name, schema.GUARDIAN.name, schema.STAFF.name
STRING = pd.StringDtype("pyarrow")


# -- the legal calendar ---------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus calendar months, clamped to the month's end (30 Nov + 3 = 28/29 Feb,
    31 Jan + 3 = 30 Apr): "within three months" as French law counts it."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_year(day: dt.date) -> dt.date:
    return dt.date(day.year, 12, 31)


# -- the rules ------------------------------------------------------------------------------


class RuleId(StrEnum):
    """Stable ids: ``summary.json`` keys, the purge record, the CLI."""

    PUPIL_LEFT = "pupil_left"
    """A pupil no longer enrolled in the commune's schools."""
    DESTRUCTION_REQUEST = "destruction_request"
    """A destruction request for a pupil."""
    STAFF_LEFT = "staff_left"
    """A staff member who left."""
    GUARDIAN_ORPHANED = "guardian_orphaned"
    """A guardian whose pupils all left."""
    OLD_COPIES = "old_copies"
    """Copies older than the latest update, raw archives, outputs past their retention."""
    CONVENTION_END = "convention_end"
    """The end or termination of the convention."""


class Place(StrEnum):
    """Where the data is held."""

    PROVIDER = "provider"
    """At the ENT provider (the account export, the requests file)."""
    WORKBENCH = "workbench"
    """In this workbench: store, raw archives, report outputs."""


PLACE_LABELS = {Place.PROVIDER: "prestataire", Place.WORKBENCH: "atelier (ent-audit)"}


class Status(StrEnum):
    OVERDUE = "overdue"
    """The deadline has passed: the data should be gone."""
    UPCOMING = "upcoming"
    """Due within the horizon."""
    LATER = "later"
    """Due after the horizon."""
    DONE = "done"
    """A destruction request marked done whose account is no longer exported."""


STATUS_LABELS = {
    Status.OVERDUE: "en retard",
    Status.UPCOMING: "à échéance proche",
    Status.LATER: "plus tard",
    Status.DONE: "réalisée",
}


@dataclass(frozen=True)
class Settings:
    """The deadlines' parameters (the notebook's and the CLI's)."""

    staff_grace_days: int = 0
    """Days after a staff member's departure before their data is overdue (Annexe 1: at
    departure)."""
    request_months: int = 3
    """Art. 4: destruction within three months of the request."""
    termination_days: int = 15
    """Art. 9: destruction within 15 days of the end or termination."""
    archive_days: int = 5
    """Working days a raw archive may stay in the fetch destination after its ingestion."""
    findings_days: int = 90
    """Days a pseudonymised findings CSV is kept."""
    clear_days: int = 15
    """Days a findings CSV in clear (``a-corriger``) is kept."""
    keep_days: int = 365
    """Days a report run (page, notebook, summary) is kept."""


@dataclass(frozen=True)
class Rule:
    """One retention rule of the convention."""

    id: RuleId
    title: str
    reference: str
    deadline_text: str
    """How the deadline is computed, in French (shown in the report)."""
    deadline: Callable[[dt.date, Settings], dt.date]
    """The last day the data may exist, from the event date."""

    def to_dict(self) -> dict:
        return {
            "id": str(self.id),
            "title": self.title,
            "reference": self.reference,
            "deadline": self.deadline_text,
        }


RULES: tuple[Rule, ...] = (
    Rule(
        RuleId.PUPIL_LEFT,
        "Élève qui n'est plus inscrit dans les écoles de la commune",
        "Annexe 1",
        "31 décembre de l'année civile où la scolarité a pris fin",
        lambda d, s: end_of_year(d),
    ),
    Rule(
        RuleId.DESTRUCTION_REQUEST,
        "Demande de destruction des données d'un élève",
        "art. 4",
        "3 mois calendaires après la demande (fin de mois si le jour n'existe pas)",
        lambda d, s: add_months(d, s.request_months),
    ),
    Rule(
        RuleId.STAFF_LEFT,
        "Personnel parti",
        "Annexe 1",
        "au départ (plus le délai de grâce paramétré)",
        lambda d, s: d + dt.timedelta(days=s.staff_grace_days),
    ),
    Rule(
        RuleId.GUARDIAN_ORPHANED,
        "Responsable dont tous les élèves sont partis",
        "Annexe 1",
        "31 décembre de l'année civile où son dernier élève est parti",
        lambda d, s: end_of_year(d),
    ),
    Rule(
        RuleId.OLD_COPIES,
        "Copies antérieures à la dernière mise à jour, archives brutes, sorties anciennes",
        "Annexe 1, art. 4",
        "dès la mise à jour suivante ; archives : 5 jours ouvrés après l'ingestion ; "
        "constats et rapports : durée paramétrée",
        lambda d, s: d,
    ),
    Rule(
        RuleId.CONVENTION_END,
        "Fin ou résiliation de la convention",
        "art. 8, 9",
        "15 jours après la fin ou la résiliation",
        lambda d, s: d + dt.timedelta(days=s.termination_days),
    ),
)
RULE_BY_ID = {r.id: r for r in RULES}
PERSON_RULE = {
    STUDENT: RuleId.PUPIL_LEFT,
    GUARDIAN: RuleId.GUARDIAN_ORPHANED,
    STAFF: RuleId.STAFF_LEFT,
}
"""Which rule applies to a person who left, by kind."""
PERSON_RULES = (
    RuleId.PUPIL_LEFT,
    RuleId.GUARDIAN_ORPHANED,
    RuleId.STAFF_LEFT,
    RuleId.DESTRUCTION_REQUEST,
)
"""Rules whose workbench items are rows of the presence history (and of the state)."""


# -- the convention's calendar --------------------------------------------------------------


SCHOOL_YEAR_END = (7, 4)
"""(month, day) the school year ends, for the non-renewal notice (art. 8: two months before
the end of the school year); early July in the national calendar."""


@dataclass(frozen=True)
class Convention:
    """The convention's dates (art. 8): 12 months from the last signature, renewed tacitly
    three times; ``end`` when a non-renewal was notified; ``terminated`` (art. 9)."""

    signed: dt.date | None = None
    end: dt.date | None = None
    terminated: dt.date | None = None
    term_months: int = 12
    renewals: int = 3

    @classmethod
    def of(
        cls,
        signed: str | dt.date | None = None,
        end: str | dt.date | None = None,
        terminated: str | dt.date | None = None,
    ) -> Convention:
        """From parameters (``AAAA-MM-JJ``, empty or None when unknown)."""
        return cls(
            _param_date("convention_signed", signed),
            _param_date("convention_end", end),
            _param_date("convention_terminated", terminated),
        )

    def terms(self) -> list[tuple[dt.date, dt.date]]:
        """(first day, last day) of the initial term and each tacit renewal."""
        if self.signed is None:
            return []
        return [
            (
                add_months(self.signed, self.term_months * k),
                add_months(self.signed, self.term_months * (k + 1)) - dt.timedelta(days=1),
            )
            for k in range(self.renewals + 1)
        ]

    @property
    def planned_end(self) -> dt.date | None:
        """The last day: ``end`` when given, else the last renewal's last day."""
        if self.end is not None:
            return self.end
        terms = self.terms()
        return terms[-1][1] if terms else None

    @property
    def effective_end(self) -> dt.date | None:
        """The day the data stops being processed: termination, else the planned end."""
        ends = [d for d in (self.terminated, self.planned_end) if d is not None]
        return min(ends) if ends else None

    def calendar(self, settings: Settings | None = None) -> pd.DataFrame:
        """Terms, renewals, non-renewal notice deadlines, end, destruction deadline."""
        settings = settings or Settings()
        rows = []
        if self.signed is not None:
            rows.append(("signature (prise d'effet)", self.signed))
        for k, (start, last) in enumerate(self.terms()):
            if k:
                rows.append((f"reconduction tacite n° {k}", start))
            year_end = dt.date(last.year, *SCHOOL_YEAR_END)
            if year_end > last:
                year_end = dt.date(last.year - 1, *SCHOOL_YEAR_END)
            if k < self.renewals:
                rows.append(
                    (
                        f"préavis de non-reconduction avant la fin de la période {k + 1}",
                        add_months(year_end, -2),
                    )
                )
            rows.append((f"fin de la période {k + 1}", last))
        if self.end is not None:
            rows.append(("fin notifiée", self.end))
        if self.terminated is not None:
            rows.append(("résiliation (date d'effet)", self.terminated))
        if self.effective_end is not None:
            rows.append(
                (
                    "destruction de toutes les données (15 jours)",
                    RULE_BY_ID[RuleId.CONVENTION_END].deadline(self.effective_end, settings),
                )
            )
        out = pd.DataFrame(rows, columns=["event", "date"])
        return out.sort_values("date", kind="stable").reset_index(drop=True)

    def to_dict(self) -> dict:
        return {
            "signed": _iso(self.signed),
            "end": _iso(self.end),
            "terminated": _iso(self.terminated),
            "planned_end": _iso(self.planned_end),
            "effective_end": _iso(self.effective_end),
        }


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _param_date(name: str, value: str | dt.date | None) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise RetentionError(name, f"date attendue au format AAAA-MM-JJ, reçu {value!r}") from None


def as_of_date(value: str | dt.date | None) -> dt.date:
    """The ``as_of`` parameter: a date, empty for today."""
    return _param_date("as_of", value) or dt.date.today()


# -- the provider's files -------------------------------------------------------------------


ACCOUNT_COLUMNS = {
    "jointure": "jointure",
    "profile": "profil",
    "uai": "uai",
    "activated": "active",
    "activation_date": "date_activation",
    "last_login": "derniere_connexion",
}
"""Canonical column -> header of the provider's account export (override in params)."""

REQUEST_COLUMNS = {
    "jointure": "jointure",
    "request_date": "date_demande",
    "done_date": "date_realisation",
}
"""Canonical column -> header of the destruction requests CSV (override in params)."""

PROFILES = {
    STUDENT: ("eleve", "student", "pupil", "eleves"),
    GUARDIAN: ("parent", "responsable", "guardian", "relation", "persrel", "persreleleve"),
    STAFF: (
        "enseignant",
        "teacher",
        "personnel",
        "staff",
        "directeur",
        "director",
        "other_staff",
        "persedu",
        "perseducnat",
        "agent",
    ),
}
"""Profile labels of account exports (lower case, no accents) -> AAF kind."""
_PROFILE_KIND = {label: kind for kind, labels in PROFILES.items() for label in labels}
_TRUE = {"o", "oui", "y", "yes", "true", "vrai", "1"}
_FALSE = {"n", "non", "no", "false", "faux", "0", ""}


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).strip().lower()


def _read_csv(path: Path | str, columns: Mapping[str, str], required: tuple[str, ...]):
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            head = fh.readline()
    except FileNotFoundError:
        raise InputFileError(path, "fichier introuvable") from None
    except UnicodeDecodeError:
        raise InputFileError(path, "encodage non UTF-8", line=1) from None
    sep = ";" if head.count(";") >= head.count(",") else ","
    df = pd.read_csv(
        path,
        sep=sep,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        quoting=csv.QUOTE_MINIMAL,
    )
    headers = {_plain(c): c for c in df.columns}
    out = pd.DataFrame(index=df.index)
    for canonical, header in columns.items():
        source = headers.get(_plain(header))
        if source is None:
            if canonical in required:
                raise InputFileError(
                    path,
                    f"colonne {header!r} ({canonical}) absente; colonnes présentes: "
                    f"{', '.join(df.columns)}",
                    line=1,
                )
            out[canonical] = ""
        else:
            out[canonical] = df[source].str.strip()
    return path, out


def _dates(path: Path, values: pd.Series, column: str) -> pd.Series:
    """ISO (``2026-11-30``, a time allowed) or French (``30/11/2026``) dates; empty is NaT;
    anything else an error naming the line."""
    iso = pd.to_datetime(values.str[:10], format="%Y-%m-%d", errors="coerce")
    fr = pd.to_datetime(values.str[:10], format="%d/%m/%Y", errors="coerce")
    out = iso.fillna(fr)
    bad = out.isna() & (values != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputFileError(
            path,
            f"date illisible {values.iloc[i]!r} (attendu AAAA-MM-JJ ou JJ/MM/AAAA)",
            line=i + 2,
            column=column,
        )
    return out.astype("datetime64[ns]")


def _per_value(column: pd.Series, fn: Callable[[str], str | None]) -> pd.Series:
    """``column.map(fn)`` with ``fn`` called once per distinct value: an export has hundreds
    of thousands of rows and a handful of profile labels and flags."""
    uniques = column.unique()
    return column.map(dict(zip(uniques, map(fn, uniques), strict=True)))


def read_accounts(path: Path | str, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The provider's account export: one row per account, canonical columns
    ``jointure, kind, profile, uai, activated, activation_date, last_login``.

    Semicolon or comma separated, UTF-8 (with or without BOM). ``columns`` maps canonical
    names to the export's headers (:data:`ACCOUNT_COLUMNS` by default). A profile that is not a
    pupil, guardian or staff label, an unreadable flag or date, is an error naming the line.
    """
    mapping = {**ACCOUNT_COLUMNS, **(columns or {})}
    path, df = _read_csv(path, mapping, ("jointure", "profile"))
    kind = _per_value(df["profile"], lambda p: _PROFILE_KIND.get(re.sub(r"[\s-]+", "_", _plain(p))))
    if kind.isna().any():
        i = int(np.flatnonzero(kind.isna().to_numpy())[0])
        raise InputFileError(
            path,
            f"profil inconnu {df['profile'].iloc[i]!r} (élève, parent, enseignant, personnel…)",
            line=i + 2,
            column=mapping["profile"],
        )
    flag = _per_value(df["activated"], _plain)
    unknown = ~flag.isin(_TRUE | _FALSE)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputFileError(
            path,
            f"valeur d'activation illisible {df['activated'].iloc[i]!r} (O/N, oui/non, 1/0)",
            line=i + 2,
            column=mapping["activated"],
        )
    empty = df["jointure"] == ""
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputFileError(path, "jointure vide", line=i + 2, column=mapping["jointure"])
    return pd.DataFrame(
        {
            "jointure": df["jointure"].astype(STRING),
            "kind": kind.astype(STRING),
            "profile": df["profile"].astype(STRING),
            "uai": df["uai"].replace("", None).astype(STRING),
            "activated": flag.isin(_TRUE).astype("boolean"),
            "activation_date": _dates(path, df["activation_date"], mapping["activation_date"]),
            "last_login": _dates(path, df["last_login"], mapping["last_login"]),
        }
    )


def read_requests(path: Path | str, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Destruction requests for pupils: ``jointure, request_date, done_date`` (NaT while
    pending). Same format rules as :func:`read_accounts`."""
    mapping = {**REQUEST_COLUMNS, **(columns or {})}
    path, df = _read_csv(path, mapping, ("jointure", "request_date"))
    request = _dates(path, df["request_date"], mapping["request_date"])
    if request.isna().any():
        i = int(np.flatnonzero(request.isna().to_numpy())[0])
        raise InputFileError(
            path, "date de demande vide", line=i + 2, column=mapping["request_date"]
        )
    return pd.DataFrame(
        {
            "jointure": df["jointure"].astype(STRING),
            "request_date": request,
            "done_date": _dates(path, df["done_date"], mapping["done_date"]),
        }
    )


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
    p = presence.assign(_open=presence["departed"].isna())
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
    presence: pd.DataFrame | None = None,
    key: bytes | None = None,
    accounts: pd.DataFrame | None = None,
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
    """
    settings = settings or Settings()
    convention = convention or Convention()
    if horizon_days < 0:
        raise RetentionError("horizon_days", f"doit être positif ou nul, reçu {horizon_days}")
    if (accounts is not None or requests is not None) and key is None:
        raise RetentionError("key", "la clé des pseudonymes du store est nécessaire")
    has_presence = presence is not None
    presence = presence if presence is not None else _empty_presence()
    people = persons(presence)
    rows: list[pd.DataFrame] = []
    # Pseudonymised once: the account rule and the requests' check both match on it.
    acc = _pseudonymised(accounts, key) if accounts is not None else None

    # People who left, still in the workbench's presence history.
    left = people[~people["present"]]
    for kind, rule in PERSON_RULE.items():
        sel = left[left["kind"] == kind]
        rows.append(_items(rule, Place.WORKBENCH, sel, sel["departed"], settings))

    # Accounts the provider still holds.
    if acc is not None:
        seen = acc.merge(people, on=["pseudonym", "kind"], how="left", suffixes=("_account", ""))
        gone = seen[seen["present"].astype("boolean").fillna(False).eq(False)]
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
        req = req.merge(people[["pseudonym", "kind", "uai"]], on=["pseudonym", "kind"], how="left")
        exported = pd.Series(
            frames.isin(req["pseudonym"], acc["pseudonym"]) if acc is not None else False,
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
        held = frames.isin(req["pseudonym"], presence["pseudonym"])
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
        if accounts is not None and len(accounts):
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
            "accounts": accounts is not None,
            "requests": requests is not None,
            "files": files is not None,
            "convention": end is not None,
        },
        req_due[["jointure", "pseudonym"]].reset_index(drop=True),
    )


def _empty_presence() -> pd.DataFrame:
    from ent_audit.store import presence as presence_module

    return presence_module.empty()


def _pseudonymised(accounts: pd.DataFrame, key: bytes) -> pd.DataFrame:
    parts = [
        accounts[accounts["kind"] == kind].assign(
            pseudonym=lambda d, kind=kind: pseudonym.pseudonymise(key, kind, d["jointure"])
        )
        for kind in (STUDENT, GUARDIAN, STAFF)
    ]
    out = pd.concat(parts, ignore_index=True)
    return out[["pseudonym", "kind", "uai"]].drop_duplicates(["pseudonym", "kind"])


def _file_items(files: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """Old copies: each inventoried file or folder with the deadline of its category."""
    date = pd.to_datetime(files["date"]).dt.normalize()
    days = files["category"].map(
        {
            str(Category.OLD_STATE): 0,
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
            "detail": files["category"].astype(str) + " " + files["path"].astype(str),
        }
    )


# -- the purge ------------------------------------------------------------------------------


ACCESS_JOURNAL = "access_journal"
"""Purge count key: lines of the access journal past their term (``store.access.KEEP_DAYS``)."""


def purge_plan(result: RetentionResult, files: pd.DataFrame | None = None) -> PurgePlan:
    """What ``ent-audit purge`` deletes: the overdue workbench items.

    Presence rows of people whose rule is overdue, the records in the live state of pupils
    whose destruction request is overdue, and overdue files. When the convention's end is
    overdue, everything the workbench holds goes.
    """
    over = result.overdue[result.overdue["place"] == str(Place.WORKBENCH)]
    people = over[over["rule"].isin([str(r) for r in PERSON_RULES])]
    counts = {str(r.id): 0 for r in RULES}
    for rule, n in people["rule"].value_counts().items():
        counts[str(rule)] = int(n)
    paths: list[str] = []
    categories: list[str] = []
    if files is not None and len(files):
        overdue_files = over[over["rule"] == str(RuleId.OLD_COPIES)]["detail"]
        chosen = {str(d).split(" ", 1)[1] for d in overdue_files}
        sel = files[files["path"].astype(str).isin(chosen)]
        paths, categories = list(sel["path"].astype(str)), list(sel["category"].astype(str))
        counts[str(RuleId.OLD_COPIES)] = len(paths)
    everything = bool((over["rule"] == str(RuleId.CONVENTION_END)).any())
    if everything:
        counts[str(RuleId.CONVENTION_END)] = 1
    departed = people["event_date"].max() if len(people) else pd.NaT
    if len(result.requested):  # a pupil still in the state is in every archive
        departed = pd.Timestamp(result.as_of + dt.timedelta(days=1))
    return PurgePlan(
        as_of=result.as_of,
        pseudonyms=tuple(
            zip(people["pseudonym"].astype(str), people["kind"].astype(str), strict=True)
        ),
        jointures=tuple(result.requested["jointure"].astype(str)),
        paths=tuple(paths),
        categories=tuple(categories),
        counts=counts,
        holds_before=None if pd.isna(departed) else departed.date(),
        everything=everything,
    )


def workbench(
    store: Store,
    as_of: dt.date,
    *,
    archives: Path | str | None = None,
    outputs: Path | str | None = None,
    accounts: pd.DataFrame | None = None,
    requests: pd.DataFrame | None = None,
    convention: Convention | None = None,
    settings: Settings | None = None,
    horizon_days: int = 30,
) -> tuple[RetentionResult, PurgePlan]:
    """Every rule over a store (its presence history, live state and files), the fetch
    destination and the outputs folder: what the report shows and what the purge deletes."""
    files = inventory(store, archives, outputs)
    history = store.history()
    has_state = store.current() is not None
    state_jointures = store.jointures()["students"] if has_state and requests is not None else None
    result = evaluate(
        as_of,
        presence=store.presence(),
        key=store.key,
        accounts=accounts,
        requests=requests,
        convention=convention,
        files=files,
        state_jointures=state_jointures,
        first_date=history["date"].min().date() if len(history) else None,
        settings=settings,
        horizon_days=horizon_days,
    )
    plan = purge_plan(result, files)
    # The roster explorer's access journal (who saw which school unmasked) has its own term.
    journal = len(access.overdue(store.path, as_of))
    return result, replace(plan, counts={**plan.counts, ACCESS_JOURNAL: journal})


# -- what the report shows -----------------------------------------------------------------

LABELS = {
    "rule": "règle",
    "title": "intitulé",
    "place": "lieu",
    "pseudonym": "pseudonyme",
    "kind": "type",
    "uai": "école (UAI)",
    "event_date": "événement le",
    "deadline": "échéance",
    "days_overdue": "jours de retard",
    "days_left": "jours restants",
    "status": "statut",
    "detail": "détail",
    "overdue": "en retard",
    "upcoming": "à échéance",
    "reference": "référence",
}
KIND_LABELS = {STUDENT: "élève", GUARDIAN: "responsable", STAFF: "personnel"}


def verdict(result: RetentionResult) -> str:
    """The page's first lines: the verdict, in French."""
    f = result.figures()
    head = f"**Situation au {result.as_of:%d/%m/%Y}** : "
    if f["overdue_total"]:
        worst = result.overdue["days_overdue"].max()
        head += (
            f"**ÉCHEC : {f['overdue_total']} élément(s) en retard** "
            f"(dont {f['overdue_by_place']['provider']} chez le prestataire et "
            f"{f['overdue_by_place']['workbench']} dans l'atelier ; le plus ancien a "
            f"{worst} jour(s) de retard)."
        )
    else:
        head += "**conforme : aucun élément en retard.**"
    head += (
        f" {f['upcoming_total']} élément(s) arrivent à échéance dans les "
        f"{result.horizon_days} jours."
    )
    skipped = [c.id for c in result.checks() if c.status == "skipped"]
    if skipped:
        head += f" Non contrôlé faute d'entrée : {', '.join(skipped)}."
    return head


def rules_table(result: RetentionResult) -> pd.DataFrame:
    """One row per rule and place: title, reference, deadline, overdue and upcoming counts."""
    t = result.by_rule_place()
    ref = {str(r.id): r.reference for r in RULES}
    return t.assign(
        reference=t["rule"].map(ref), place=t["place"].map(lambda p: PLACE_LABELS[Place(p)])
    )[["rule", "title", "reference", "place", "overdue", "upcoming"]]


def timeline(result: RetentionResult) -> pd.DataFrame:
    """Items per deadline, rule and status (overdue and upcoming), for the timeline."""
    sel = result.items[result.items["status"].isin([str(Status.OVERDUE), str(Status.UPCOMING)])]
    out = (
        sel.groupby(["deadline", "rule", "status", "place"], observed=True)
        .size()
        .rename("éléments")
        .reset_index()
    )
    return out.assign(
        règle=out["rule"],
        statut=out["status"].map(lambda s: STATUS_LABELS[Status(s)]),
        lieu=out["place"].map(lambda p: PLACE_LABELS[Place(p)]),
    )


def _shown(items: pd.DataFrame) -> pd.DataFrame:
    days = items["days_overdue"]
    return pd.DataFrame(
        {
            "rule": items["rule"],
            "place": items["place"].map(lambda p: PLACE_LABELS[Place(p)]),
            "pseudonym": items["pseudonym"],
            "kind": items["kind"].astype(object).map(KIND_LABELS).fillna(""),
            "uai": items["uai"],
            "event_date": items["event_date"].dt.strftime("%d/%m/%Y"),
            "deadline": items["deadline"].dt.strftime("%d/%m/%Y"),
            "days_overdue": days.where(days > 0),
            "days_left": (-days).where(days <= 0),
            "status": items["status"].map(lambda s: STATUS_LABELS[Status(s)]),
            "detail": items["detail"],
        }
    )


def oldest(result: RetentionResult, n: int = 20) -> pd.DataFrame:
    """The ``n`` most overdue items (pseudonyms only)."""
    return _shown(result.overdue.head(n))


def findings(result: RetentionResult) -> pd.DataFrame:
    """``findings.csv``: every overdue and upcoming item, French headers, pseudonyms only."""
    sel = result.items[result.items["status"].isin([str(Status.OVERDUE), str(Status.UPCOMING)])]
    return _shown(sel).rename(columns=LABELS)


def plan_text(plan: PurgePlan) -> str:
    """What ``ent-audit purge --apply`` would delete, in French (counts only)."""
    n = sum(plan.counts.values())
    if plan.empty:
        return "La purge n'aurait rien à supprimer dans l'atelier."
    parts = [f"{rule} : {k}" for rule, k in plan.counts.items() if k]
    text = (
        f"`ent-audit purge --apply` supprimerait {n} élément(s) de l'atelier ("
        + ", ".join(parts)
        + ")"
    )
    if plan.everything:
        text += " : la convention a pris fin, **toutes** les données de l'atelier"
    return text + "."
