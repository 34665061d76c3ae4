"""A school year of ENT activity for a generated perimeter, in the provider's three formats.

Reads the perimeter back from an archive the generator wrote (``ent_audit.load`` and
:func:`ent_audit.aaf.population.memberships`: the one definition of who belongs where), then
draws, from a seed, with numpy only:

- **schools**: most open in the first days of the year; some never open, some open late (from
  November to February), some stop (no activity after a day between February and April);
- **accounts**: each person of a school gets a provider account, activated with a probability
  by profile once their school is open (the director first: an open school always has an
  activated teacher);
- **visits**: per activated person, a Poisson number of visits spread over the days of their
  active window, weighted by the calendar (school days, Wednesdays, weekends, the zone C
  holidays, public holidays) and by hours typical of the profile. Each visit lies in one clock
  hour (it starts in the hour's first 15 minutes and lasts at most 12), and a person makes at
  most one visit per hour: two visits of a person are always more than 30 minutes apart, so
  the number of visits is known by construction;
- a few visits of **people unknown to the AAF** and of known people at a **school outside it**.

Written: the raw event log by month (CSV with French labels, JSON lines with English labels and
other keys), the account export, the pre-aggregated daily CSV, and ``activity-truth.json``
(every indicator at school, circonscription and département level, computed by
:func:`reference_indicators`, a plain-pandas implementation independent of the DuckDB one).

One module per job: :mod:`.model` (the generator's assumptions and the school calendar),
:mod:`.draw` (people, scenarios, accounts, visits, events), :mod:`.formats` (the event log and
the daily CSV; the account export is :mod:`ent_audit.synth.accounts`'s), :mod:`.truth`
(:func:`reference_indicators`) and :mod:`.write` (:func:`write_activity`).
"""

from __future__ import annotations

from ent_audit.synth.accounts import ACCOUNT_COLUMNS, PROFILE_FR, write_accounts
from ent_audit.synth.activity.draw import generate, people
from ent_audit.synth.activity.formats import (
    BAD_CSV,
    BAD_JSON,
    ActivityFiles,
    daily_frame,
    write_events,
)
from ent_audit.synth.activity.model import (
    ACTIVATION,
    ACTIVATION_DELAY,
    APP,
    APPLICATIONS,
    CONNECTOR,
    CSV_COLUMNS,
    DAILY_COLUMNS,
    DEVICE_MIX,
    DEVICES,
    DEVICES_EN,
    EVENTS_EN,
    EVENTS_FR,
    HOURS,
    JSONL_KEYS,
    JSONL_MAPPING,
    LABELS_EN,
    LABELS_FR,
    LOGIN,
    PROFILES,
    SCENARIO,
    SCHOOL_HOLIDAYS_ZONE_C,
    UNKNOWN_SCHOOL,
    VISIT_GAP,
    VISIT_RATE,
    calendar,
    school_year,
)
from ent_audit.synth.activity.truth import ACTIVITY_FIELDS, FUNNEL_FIELDS, reference_indicators
from ent_audit.synth.activity.write import write_activity

__all__ = [
    "ACCOUNT_COLUMNS",
    "ACTIVATION",
    "ACTIVATION_DELAY",
    "ACTIVITY_FIELDS",
    "APP",
    "APPLICATIONS",
    "BAD_CSV",
    "BAD_JSON",
    "CONNECTOR",
    "CSV_COLUMNS",
    "DAILY_COLUMNS",
    "DEVICES",
    "DEVICES_EN",
    "DEVICE_MIX",
    "EVENTS_EN",
    "EVENTS_FR",
    "FUNNEL_FIELDS",
    "HOURS",
    "JSONL_KEYS",
    "JSONL_MAPPING",
    "LABELS_EN",
    "LABELS_FR",
    "LOGIN",
    "PROFILES",
    "PROFILE_FR",
    "SCENARIO",
    "SCHOOL_HOLIDAYS_ZONE_C",
    "UNKNOWN_SCHOOL",
    "VISIT_GAP",
    "VISIT_RATE",
    "ActivityFiles",
    "calendar",
    "daily_frame",
    "generate",
    "people",
    "reference_indicators",
    "school_year",
    "write_accounts",
    "write_activity",
    "write_events",
]
