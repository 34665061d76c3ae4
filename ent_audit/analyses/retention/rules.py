"""The convention's retention rules and calendar: rule records, places, statuses, the
deadlines' parameters and the convention's terms (art. 4, 8, 9, Annexe 1)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.exceptions import RetentionError
from ent_audit.store.partial import MAX_DAYS as OVERLAY_DAYS

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
        f"valeurs remplacées par des Delta : {OVERLAY_DAYS} jours après le premier ; "
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
