"""The pilot console's indicators: DuckDB over the converted events, joined with the AAF
population (:func:`ent_audit.aaf.population.memberships`, pseudonymised with the store's key).

Definitions (``docs/design.md``, written in the report too):

- **accounts loaded**: people of a school in the state (memberships at schools), per profile;
- **activated**: the account export says so (else the daily CSV's last figures);
- **active over 7 / 30 days**: an event in the 7 / 30 days ending on the period's last day;
- **ENT open**: at least ``open_threshold`` activated accounts of the school's teachers
  (the population's ``teacher`` column: a teaching director counts);
- **visit**: a person's events with no gap over 30 minutes, counted where and with the
  profile and device of its first event; **unique visitors** are distinct people over the
  period, never summed from smaller periods or places;
- **stopped**: a school with earlier activity and no event in the 28 days ending on the
  period's last day.

Levels: each school, each circonscription, each **département** (:func:`departement_of`: the
first three characters of the school's UAI) and the whole store (the ``department`` level, named
when a store covered one département: for an académie's store it is the académie). Every level
is grouped in the same DuckDB queries (``GROUPING SETS``), so people counts at each level are
distinct people there: a guardian with children in two départements counts once in each and
once in the store, never twice.

Events of people or schools unknown to the state are counted apart and left out of every other
figure.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ent_audit import memory
from ent_audit.aaf import population
from ent_audit.aaf.population import PROFILE_LABELS, Profile
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.analyses.activity.inputs import FileReport
from ent_audit.checks import Check
from ent_audit.store import pseudonym
from ent_audit.store.store import columns

VISIT_GAP_MINUTES = 30
QUIET_DAYS = 28
"""A school with no event in this many days is « à l'arrêt »."""
ALL = "*"
"""The profile of a row that counts every profile."""
DEPARTEMENT_CHARS = 3


def departement_of(uai: pd.Series) -> pd.Series:
    """The département of a school: its UAI's first three characters (``0310036W`` → ``031``,
    ``0690012A`` → ``069``; Corsica's schools start ``620`` / ``720``)."""
    return uai.astype(str).str[:DEPARTEMENT_CHARS]


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        """The period of the same length just before (the comparison)."""
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def to_dict(self) -> dict:
        return {"start": str(self.start), "end": str(self.end)}


@dataclass(frozen=True)
class SourceComparison:
    """Where two inputs overlap, do they agree? (``checked`` False: an input is missing)."""

    what: str
    """French: what is compared."""
    checked: bool
    total_a: int = 0
    total_b: int = 0
    mismatches: int = 0
    """Schools and profiles whose figures differ."""

    @property
    def agree(self) -> bool | None:
        return None if not self.checked else self.mismatches == 0

    def to_dict(self) -> dict:
        return {**self.__dict__}


@dataclass(frozen=True)
class ActivityResult:
    """Every indicator of the console; frames are for the notebook, ``to_dict`` is the summary."""

    period: Period
    open_threshold: int
    target: float
    schools: pd.DataFrame
    """One row per school of the state: place, funnel, opening, activity, last activity."""
    circonscriptions: pd.DataFrame
    department: dict
    """The whole store's figures (an académie's, when the store holds several départements)."""
    profiles: pd.DataFrame
    """level (school, circonscription, departement, department = the whole store), key,
    profile, activity and funnel; each level's people counts are distinct people there."""
    weekly: pd.DataFrame
    heatmap: pd.DataFrame
    applications: pd.DataFrame
    devices: pd.DataFrame
    previous: dict
    unknown: dict
    inputs: tuple[FileReport, ...]
    sources: tuple[SourceComparison, ...]
    accounts_source: str
    """``accounts`` (the export), ``daily`` (its last figures) or ``none``."""
    events: bool
    """Whether an event log was read (visits, visitors, connections)."""
    small_cell: int = 5
    extra: dict = field(default_factory=dict)
    departements: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per département of the state (:func:`departement_of`), as
    :attr:`circonscriptions` without the previous period: distinct people per département."""

    @property
    def open_share(self) -> float:
        total = self.department["schools_total"]
        return self.department["schools_open"] / total if total else 0.0

    @property
    def malformed(self) -> int:
        return sum(r.malformed_count for r in self.inputs)

    def to_dict(self) -> dict:
        """The published key figures (``summary.json``): people counts under ``small_cell``
        shown as ``<N``; dates as text."""
        d = self.department
        mask = _masker(self.small_cell)
        circ = {
            str(r["circonscription"]): {
                "schools_total": int(r["schools_total"]),
                "schools_open": int(r["schools_open"]),
                "visits": int(r["visits"]),
                "unique_visitors": mask(r["unique_visitors"]),
                "connections": int(r["connections"]),
            }
            for r in self.circonscriptions.to_dict("records")
        }
        dept_rows = {
            str(r["departement"]): {
                "schools_total": int(r["schools_total"]),
                "schools_open": int(r["schools_open"]),
                "schools_stopped": int(r["schools_stopped"]),
                **{k: mask(r[k]) for k in FUNNEL},
                "visits": int(r["visits"]),
                "unique_visitors": mask(r["unique_visitors"]),
                "connections": int(r["connections"]),
            }
            for r in self.departements.to_dict("records")
        }
        stopped = self.schools[self.schools["stopped"]]
        return {
            "period_start": str(self.period.start),
            "period_end": str(self.period.end),
            "schools_total": d["schools_total"],
            "schools_open": d["schools_open"],
            "open_share": round(self.open_share, 4),
            "open_target": self.target,
            "open_threshold": self.open_threshold,
            "schools_stopped": len(stopped),
            "visits": d["visits"],
            "unique_visitors": mask(d["unique_visitors"]),
            "visits_per_visitor": round(d["visits"] / d["unique_visitors"], 2)
            if d["unique_visitors"]
            else None,
            "connections": d["connections"],
            "accounts": {k: mask(d[k]) for k in ("loaded", "activated", "active_7d", "active_30d")},
            "previous": self.previous,
            "by_circonscription": circ,
            "by_departement": dept_rows,
            "unknown": self.unknown,
            "malformed_rows": self.malformed,
            "accounts_source": self.accounts_source,
        }


def _masker(threshold: int):
    def mask(n):
        n = int(n)
        return f"<{threshold}" if 0 < n < threshold else n

    return mask


# -- the population, pseudonymised -------------------------------------------------------------

COLUMNS = columns(population.NEEDS, {"structures": ("name",)})
"""The state's Parquet columns this report reads (``Store.latest(columns=COLUMNS)``): the
memberships' and the schools' names, nothing personal beyond the ids."""


def population_frames(snapshot: Snapshot, key: bytes) -> dict[str, pd.DataFrame]:
    """``people`` (every person of the state: user pseudonym), ``members`` (memberships at
    schools: user, uai, profile, teacher) and ``schools`` (uai, name, circonscription,
    departement).

    The snapshot is let go once the memberships and schools are taken from it (freed when
    the caller passed it without keeping it: a loader's), the memberships are cut to the
    columns used, and ids are pseudonymised by slices of :data:`PSEUDONYM_SLICE`: the
    académie's 666,000 memberships never exist as Python strings all at once."""
    m = population.memberships(snapshot)
    s = population.schools(snapshot)
    del snapshot
    m = m[["kind", "jointure", "is_school", "uai", "profile", "teacher"]]
    memory.release_unused()
    user = pd.Series(pd.NA, index=m.index, dtype="string")
    for kind, idx in m.groupby("kind", observed=True).groups.items():
        for i in range(0, len(idx), PSEUDONYM_SLICE):
            part = idx[i : i + PSEUDONYM_SLICE]
            user[part] = pseudonym.pseudonymise(key, str(kind), m.loc[part, "jointure"])
    people = pd.DataFrame({"user": user.astype(str)}).drop_duplicates()
    at = m["is_school"].to_numpy()
    members = pd.DataFrame(
        {
            "user": user[at].astype(str),
            "uai": m.loc[at, "uai"].astype(str),
            "profile": m.loc[at, "profile"].astype(str),
            "teacher": m.loc[at, "teacher"].astype(bool),
        }
    ).drop_duplicates(["user", "uai", "profile"])
    del m, user
    schools = pd.DataFrame(
        {
            "uai": s["uai"].astype(str),
            "name": s["name"].astype(str),
            "circonscription": s["circonscription"].fillna("(sans circonscription)").astype(str),
            "departement": departement_of(s["uai"]),
        }
    ).drop_duplicates("uai")
    return {"people": people, "members": members, "schools": schools}


PSEUDONYM_SLICE = 1 << 16
"""Ids pseudonymised at a time (each a Python string while it is hashed)."""


def pseudonymise_accounts(accounts: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """The account export with ``user`` replaced by its pseudonym (kind from the profile)."""
    out = accounts.copy()
    user = pd.Series("", index=out.index, dtype=object)
    for kind, idx in out.groupby("kind").groups.items():
        user[idx] = pseudonym.pseudonymise(key, str(kind), out.loc[idx, "user"]).astype(str)
    out["user"] = user
    return out.drop(columns=["kind"])


def account_users(accounts: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """``user`` (the pseudonym, kind from the profile) and ``activated`` of each account: what
    the funnel joins, without copying the export (:func:`pseudonymise_accounts` keeps it
    whole). Arrow strings, not Python ones: an académie's export has 650,000 accounts."""
    user = pd.Series(pd.NA, index=accounts.index, dtype=pd.StringDtype("pyarrow"))
    for kind, idx in accounts.groupby("kind").groups.items():
        user[idx] = pseudonym.pseudonymise(key, str(kind), accounts.loc[idx, "user"])
    return pd.DataFrame({"user": user, "activated": accounts["activated"]})


@dataclass(frozen=True)
class DailyFigures:
    """What the console uses of the daily CSV, for one period: a row per school and profile
    (the file has one per day too)."""

    last: pd.DataFrame
    """The last row of each school and profile up to the period's end (its activated
    accounts: the provider attributes each account to one school, so sums are exact)."""
    connections: pd.DataFrame
    """``uai``, ``profile``, ``m``: connections summed over the period."""

    @classmethod
    def of(cls, daily: pd.DataFrame, period: Period) -> DailyFigures:
        d = daily[daily["date"] <= pd.Timestamp(period.end)].sort_values("date")
        last = d.drop_duplicates(["uai", "profile"], keep="last")
        d = daily[(daily["date"] >= pd.Timestamp(period.start))
                  & (daily["date"] <= pd.Timestamp(period.end))]  # fmt: skip
        conn = d.groupby(["uai", "profile"])["connections"].sum().rename("m").reset_index()
        return cls(last[["uai", "profile", "activated"]].copy(), conn)


# -- computing ---------------------------------------------------------------------------------


def _lit(day: dt.date) -> str:
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


MEMORY_LIMIT = "300MB"
"""DuckDB's memory for one computation: beyond it, sorts and joins spill to a private
temporary folder. Measured on an académie's year (10 million events): at 300 MB the report's
kernel peaks at 680 MB instead of 870 MB at 500 MB and 1.3 GB at 1 GB (DuckDB keeps buffers up
to its limit), for 3 s more; the events' table fits in it because its labels are ENUMs."""


Loader = Callable[[], tuple[pd.DataFrame, FileReport]]
"""Reads an input when the computation needs it: its frame and its read report."""


def _load(given: pd.DataFrame | Loader | None) -> tuple[pd.DataFrame | None, tuple]:
    """A frame given, or a loader's frame and report."""
    if callable(given):
        frame, report = given()
        return frame, (report,)
    return given, ()


def compute(
    snapshot: Snapshot | Callable[[], Snapshot],
    key: bytes,
    *,
    events: str | Path | None = None,
    accounts: pd.DataFrame | Loader | None = None,
    daily: pd.DataFrame | Loader | None = None,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    open_threshold: int = 1,
    target: float = 0.8,
    inputs: tuple[FileReport, ...] = (),
    small_cell: int = 5,
    memory_limit: str = MEMORY_LIMIT,
) -> ActivityResult:
    """Every indicator over ``period`` (default: the events' first to last day).

    ``events``: a glob of converted Parquet files (:func:`convert.events_glob`); ``accounts``
    and ``daily`` as :mod:`inputs` reads them (user ids clear: pseudonymised here). People
    and schools become small integers before the events are sorted into visits.
    ``snapshot``, ``accounts`` and ``daily`` may be loaders (``lambda:
    store.latest(columns=COLUMNS)``, ``lambda: inputs.read_accounts(path)``: for an input, a
    frame and its read report, added to ``inputs``). Each is then read in turn, reduced to what
    the indicators use and released before the next: the export to pseudonyms and flags
    (DuckDB), the daily CSV to a row per school and profile, the state to the pseudonymised
    population (DuckDB); then DuckDB reads the events. No two of these reads, nor DuckDB's
    work on the events, are in memory at once. Frames passed as values live as long as their
    caller holds them.
    """
    timer = _Timer()
    has_events = bool(events) and bool(glob.glob(str(events)))
    period = _period(events if has_events else None, period_start, period_end, memory_limit)
    # One input at a time, each reduced before the next is read: the account export (to
    # pseudonyms and flags), the daily CSV (to a row per school and profile), the state (to the
    # pseudonymised population); DuckDB, opened last, then reads the events.
    accounts, read = _load(accounts)
    inputs = (*inputs, *read)
    users = activated_by_place = None
    if accounts is not None:
        users = account_users(accounts, key)
        activated_by_place = accounts[accounts["activated"]].groupby(["uai", "profile"]).size()
    del accounts
    memory.release_unused()
    daily, read = _load(daily)
    inputs = (*inputs, *read)
    if daily is not None:
        daily = DailyFigures.of(daily, period)
        memory.release_unused()
    timer("accounts and daily figures")
    pop = population_frames(snapshot() if callable(snapshot) else snapshot, key)
    del snapshot
    memory.release_unused()
    spill = tempfile.mkdtemp(prefix="ent-audit-duckdb-")
    os.chmod(spill, 0o700)
    con = _connect(memory_limit, spill)
    try:
        if users is not None:  # into DuckDB, and let go here (this frame outlives _compute's)
            con.register("_accounts", users)
            con.execute("CREATE TEMP TABLE account_users AS SELECT * FROM _accounts")
            con.unregister("_accounts")
        del users
        return _compute(
            con, timer, pop, activated_by_place, daily, events if has_events else None,
            period, open_threshold, target, inputs, small_cell,
        )  # fmt: skip
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _connect(memory_limit: str, spill: str | None = None) -> duckdb.DuckDBPyConnection:
    config = {"memory_limit": memory_limit, "preserve_insertion_order": False}
    if spill:
        config["temp_directory"] = spill
    con = duckdb.connect(config=config)
    con.execute("SET enable_progress_bar = false")
    return con


def _period(
    events: str | Path | None, start: dt.date | None, end: dt.date | None, memory_limit: str
) -> Period:
    """The period asked, its missing ends taken from the events' first and last days (today
    without events)."""
    if start is None or end is None:
        lo = hi = None
        if events:
            con = _connect(memory_limit)
            try:
                ((lo, hi),) = con.execute(
                    "SELECT min(ts), max(ts) "
                    f"FROM read_parquet('{events}', hive_partitioning = true)"
                ).fetchall()
            finally:
                con.close()
        today = dt.date.today()
        start = start or (lo.date() if lo else today)
        end = end or (hi.date() if hi else today)
    return Period(start, end)


LEVELS = (
    ("sid", "profile"),
    ("sid",),
    ("circ", "profile"),
    ("circ",),
    ("dep", "profile"),
    ("dep",),
    ("profile",),
    (),
)
"""The grouping sets of every people count (school, circonscription, département, store; each
per profile and for all profiles)."""


def _distinct_people_per_level() -> str:
    """The funnel's people counts at every level of :data:`LEVELS`, over the CTE ``m``.

    A person counts once per place: each level first folds ``m`` to one row per (place,
    person), then counts rows. Same figures as ``count(DISTINCT uid) FILTER (...)`` over
    ``GROUPING SETS``, whose per-group hash sets outgrew DuckDB's memory limit on an académie
    (five distinct aggregates times eight levels); a fold spills to disk, they could not.
    ``g`` is what ``grouping(sid, circ, dep, profile)`` gives (bits 8, 4, 2, 1 for an
    aggregated column)."""
    cols, bits = ("sid", "circ", "dep", "profile"), (8, 4, 2, 1)
    parts = []
    for level in LEVELS:
        keys = ", ".join(level)
        g = sum(b for c, b in zip(cols, bits, strict=True) if c not in level)
        shown = ", ".join(c if c in level else f"NULL AS {c}" for c in cols)
        by = f"GROUP BY {keys}, uid" if level else "GROUP BY uid"
        parts.append(
            f"""SELECT {shown}, {g} AS g, count(*) AS loaded,
                   count(*) FILTER (WHERE activated) AS activated,
                   count(*) FILTER (WHERE a7) AS active_7d,
                   count(*) FILTER (WHERE a30) AS active_30d,
                   count(*) FILTER (WHERE activated_teacher) AS activated_teachers
            FROM (SELECT {keys + ", " if level else ""}uid, bool_or(activated) AS activated,
                         bool_or(a7) AS a7, bool_or(a30) AS a30,
                         bool_or(activated AND teacher) AS activated_teacher
                  FROM m {by}) {"GROUP BY " + keys if level else ""}"""
        )
    return "\nUNION ALL\n".join(parts)


class _Timer:
    """Seconds per step, kept in ``ActivityResult.extra["seconds"]`` (the benchmark prints
    them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.t = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self.t, 3)
        self.t = now


def _compute(
    con, timer, pop, activated_by_place, daily, events, period,
    open_threshold, target, inputs, small_cell,
) -> ActivityResult:  # fmt: skip
    people = pop.pop("people").reset_index(drop=True)
    people["uid"] = np.arange(len(people), dtype=np.int32)
    schools = pop["schools"].reset_index(drop=True)
    schools["sid"] = np.arange(len(schools), dtype=np.int32)
    con.register("_people", people)
    con.register("_schools", schools)
    con.register("_members", pop["members"])
    con.execute("CREATE TEMP TABLE people AS SELECT * FROM _people")
    con.execute("CREATE TEMP TABLE schools AS SELECT * FROM _schools")
    con.execute(
        "CREATE TEMP TABLE members AS SELECT p.uid, s.sid, s.uai, s.circonscription AS circ, "
        "s.departement AS dep, m.profile, m.teacher "
        "FROM _members m JOIN _people p USING (user) JOIN _schools s USING (uai)"
    )
    # DuckDB holds its own copies now: the pseudonymised frames go before the events come.
    for name in ("_people", "_schools", "_members"):
        con.unregister(name)
    del people, pop["members"]
    accounts_source = "none"
    if activated_by_place is not None:  # the export was read: its users are in DuckDB
        con.execute(  # accounts of people of the state only: the funnel counts no one else
            "CREATE TEMP TABLE acc AS SELECT uid, bool_or(activated) AS activated "
            "FROM account_users JOIN people USING (user) GROUP BY uid"
        )
        con.execute("DROP TABLE account_users")
        accounts_source = "accounts"
    else:
        con.execute("CREATE TEMP TABLE acc AS SELECT NULL::INTEGER uid, "
                    "NULL::BOOLEAN activated WHERE false")  # fmt: skip
    timer("population")
    has_events = events is not None
    if has_events:
        con.execute(
            "CREATE TEMP VIEW raw AS SELECT ts, user, profile, uai, event, application, device "
            f"FROM read_parquet('{events}', hive_partitioning = true)"
        )
    else:
        con.execute(
            "CREATE TEMP VIEW raw AS SELECT NULL::TIMESTAMP ts, NULL::VARCHAR user, "
            "NULL::VARCHAR profile, NULL::VARCHAR uai, NULL::VARCHAR event, "
            "NULL::VARCHAR application, NULL::VARCHAR device WHERE false"
        )
    end_x = _lit(period.end + dt.timedelta(days=1))
    start = _lit(period.start)
    lo = min(period.previous.start, period.end - dt.timedelta(days=29))
    gap = f"INTERVAL {VISIT_GAP_MINUTES} MINUTE"

    unknown = con.execute(
        f"""SELECT count(*) FILTER (WHERE s.sid IS NULL),
                   count(*) FILTER (WHERE s.sid IS NOT NULL AND p.uid IS NULL),
                   count(DISTINCT r.user) FILTER (WHERE s.sid IS NOT NULL AND p.uid IS NULL)
        FROM raw r LEFT JOIN people p USING (user) LEFT JOIN schools s USING (uai)
        WHERE r.ts >= {start} AND r.ts < {end_x}"""
    ).fetchone()
    # Every event of known people at known schools up to the period's end: people and schools
    # as integers, the four labels as ENUMs (one byte a value instead of sixteen: the table
    # is a year of events).
    labels = {c: _enum(con, c) for c in ("profile", "event", "application", "device")}
    con.execute(
        f"""CREATE TEMP TABLE tagged AS
        SELECT r.ts, p.uid, s.sid, {", ".join(f"r.{c}::{t} AS {c}" for c, t in labels.items())}
        FROM raw r JOIN people p USING (user) JOIN schools s USING (uai)
        WHERE r.ts < {end_x}"""
    )
    timer("events read")
    last = con.execute(
        """SELECT s.uai, l.last_activity FROM (SELECT sid, max(ts) AS last_activity
        FROM tagged GROUP BY sid) l JOIN schools s USING (sid)"""
    ).df()
    con.execute(
        "CREATE TEMP VIEW ev AS SELECT ts, uid, sid, profile, event, application, device, "
        f"event::VARCHAR = 'login' AS login FROM tagged WHERE ts >= {_lit(lo)}"
    )
    timer("unknown and last activity")

    def visits_sql(a: dt.date, b: dt.date) -> str:
        return f"""SELECT v.uid, v.sid, s.circonscription AS circ, s.departement AS dep,
               v.profile, v.device, v.ts
        FROM (SELECT uid, sid, profile, device, ts,
                     ts - lag(ts) OVER (PARTITION BY uid ORDER BY ts) AS gap FROM ev
              WHERE ts >= {_lit(a)} AND ts < {_lit(b + dt.timedelta(days=1))}) v
        JOIN schools s USING (sid)
        WHERE gap IS NULL OR gap > {gap}"""

    con.execute(f"CREATE TEMP TABLE visits AS {visits_sql(period.start, period.end)}")
    timer("visits")
    # Every level in one pass; grouping() bits: sid 8, circ 4, dep 2, profile 1 (see _levels).
    sets = "GROUPING SETS (" + ", ".join(f"({', '.join(lv)})" for lv in LEVELS) + ")"
    activity = con.execute(
        f"""WITH v AS (SELECT sid, circ, dep, profile, count(*) AS visits,
                              count(DISTINCT uid) AS unique_visitors,
                              grouping(sid, circ, dep, profile) AS g
                       FROM visits GROUP BY {sets}),
             c AS (SELECT sid, circ, dep, profile, count(*) AS connections,
                          grouping(sid, circ, dep, profile) AS g
                   FROM ev JOIN (SELECT sid, circonscription AS circ, departement AS dep
                                 FROM schools) USING (sid)
                   WHERE login AND ts >= {start} GROUP BY {sets})
        SELECT coalesce(v.sid, c.sid) AS sid, coalesce(v.circ, c.circ) AS circ,
               coalesce(v.dep, c.dep) AS dep,
               coalesce(v.profile, c.profile)::VARCHAR AS profile, coalesce(v.g, c.g) AS g,
               coalesce(visits, 0) AS visits, coalesce(unique_visitors, 0) AS unique_visitors,
               coalesce(connections, 0) AS connections
        FROM v FULL JOIN c ON v.g = c.g AND v.sid IS NOT DISTINCT FROM c.sid
             AND v.circ IS NOT DISTINCT FROM c.circ AND v.dep IS NOT DISTINCT FROM c.dep
             AND v.profile IS NOT DISTINCT FROM c.profile"""
    ).df()
    timer("activity")

    # The funnel: memberships, their accounts (``acc``), their recent activity.
    since7, since30 = (_lit(period.end - dt.timedelta(days=n - 1)) for n in (7, 30))
    funnel = con.execute(
        f"""WITH last AS (SELECT uid, max(ts) AS last FROM ev WHERE ts >= {since30}
                          GROUP BY uid),
             m AS (SELECT m.uid, m.sid, m.circ, m.dep, m.profile, m.teacher,
                          coalesce(a.activated, false) AS activated,
                          coalesce(l.last >= {since7}, false) AS a7,
                          coalesce(l.last >= {since30}, false) AS a30
                   FROM members m LEFT JOIN acc a USING (uid) LEFT JOIN last l USING (uid))
        {_distinct_people_per_level()}"""
    ).df()
    uai_of = schools.set_index("sid")["uai"]
    activity = activity.assign(uai=activity["sid"].map(uai_of)).drop(columns="sid")
    funnel = funnel.assign(uai=funnel["sid"].map(uai_of)).drop(columns="sid")
    if accounts_source == "none" and daily is not None:
        funnel = _activated_from_daily(funnel, daily.last, schools)
        accounts_source = "daily"
    timer("funnel")

    table = _levels(activity, funnel, schools.drop(columns="sid"), last, period, open_threshold)
    schools_df, circ_df, dept, profiles, dept_df = table

    weekly = con.execute(
        """SELECT CAST(date_trunc('week', ts) AS DATE) AS week, circ,
                  grouping(circ) AS g, count(*) AS visits, count(DISTINCT uid) AS unique_visitors
        FROM visits GROUP BY GROUPING SETS ((week, circ), (week)) ORDER BY week, circ"""
    ).df()
    weekly["circonscription"] = weekly["circ"].where(weekly["g"] == 0, ALL)
    weekly = weekly.drop(columns=["circ", "g"])
    weekly["week"] = pd.to_datetime(weekly["week"]).dt.date
    heatmap = con.execute(
        """SELECT isodow(ts) - 1 AS weekday, hour(ts) AS hour, count(*) AS visits
        FROM visits GROUP BY ALL ORDER BY ALL"""
    ).df()
    applications = con.execute(
        f"""SELECT application::VARCHAR AS application, event::VARCHAR AS event,
                   CAST(sum(n) AS BIGINT) AS events, count(*) AS users
        FROM (SELECT application, event, uid, count(*) AS n FROM ev
              WHERE application IS NOT NULL AND ts >= {start} GROUP BY ALL)
        GROUP BY ALL ORDER BY events DESC, application::VARCHAR"""
    ).df()
    devices = con.execute(
        "SELECT device::VARCHAR AS device, count(*) AS visits FROM visits GROUP BY ALL "
        "ORDER BY visits DESC"
    ).df()
    timer("trends")
    prev = period.previous
    con.execute(f"CREATE TEMP TABLE prev_visits AS {visits_sql(prev.start, prev.end)}")
    previous = con.execute(
        """SELECT circ, grouping(circ) AS g, count(*) AS visits,
                  count(DISTINCT uid) AS unique_visitors
        FROM prev_visits GROUP BY GROUPING SETS ((circ), ())"""
    ).df()
    prev_conn = con.execute(
        f"""SELECT count(*) FROM ev WHERE login
        AND ts >= {_lit(prev.start)} AND ts < {start}"""
    ).fetchone()[0]
    total = previous[previous["g"] == 1]
    previous_d = {
        **prev.to_dict(),
        "visits": int(total["visits"].sum()),
        "unique_visitors": int(total["unique_visitors"].sum()),
        "connections": int(prev_conn),
    }
    by_circ = previous[previous["g"] == 0].set_index("circ")
    circ_df["previous_visits"] = (
        circ_df["circonscription"].map(by_circ["visits"]).fillna(0).astype(int)
    )
    circ_df["visits_change"] = _change(circ_df["visits"], circ_df["previous_visits"])
    timer("previous period")
    sources = _compare(con, daily, activated_by_place, period, has_events)
    timer("sources")
    return ActivityResult(
        period=period,
        open_threshold=open_threshold,
        target=target,
        schools=schools_df,
        circonscriptions=circ_df,
        department=dept,
        profiles=profiles,
        weekly=weekly,
        heatmap=heatmap,
        applications=applications,
        devices=devices,
        previous=previous_d,
        unknown={
            "events_unknown_school": int(unknown[0]),
            "events_unknown_user": int(unknown[1]),
            "users_unknown": int(unknown[2]),
        },
        inputs=tuple(inputs),
        sources=sources,
        accounts_source=accounts_source,
        events=has_events,
        small_cell=small_cell,
        extra={"seconds": timer.seconds},
        departements=dept_df,
    )


def _enum(con, column: str) -> str:
    """An ENUM type of the values of ``raw``'s ``column`` (VARCHAR when it has none): the
    events' labels are a handful of values repeated ten million times."""
    if not con.execute(f"SELECT 1 FROM raw WHERE {column} IS NOT NULL LIMIT 1").fetchone():
        return "VARCHAR"
    con.execute(
        f"CREATE TYPE ev_{column} AS ENUM "
        f"(SELECT DISTINCT {column} FROM raw WHERE {column} IS NOT NULL ORDER BY 1)"
    )
    return f"ev_{column}"


def _change(now: pd.Series, before: pd.Series) -> pd.Series:
    """Relative change against the previous period (None when there was nothing before)."""
    b = before.astype(float)
    return ((now.astype(float) - b) / b.where(b > 0)).round(4)


OPEN_PROFILES = (str(Profile.TEACHER), str(Profile.DIRECTOR))
"""Whose activated accounts open a school's ENT (design.md: "ENT open")."""


def is_open(activated_teachers, open_threshold: int = 1):
    """The one definition of an open ENT: at least ``open_threshold`` activated accounts of
    the school's teachers and director (a number, or a Series of them). The console and the
    roster explorer both ask here."""
    return activated_teachers >= open_threshold


FUNNEL = ("loaded", "activated", "active_7d", "active_30d")
ACTIVITY = ("visits", "unique_visitors", "connections")


def _levels(activity, funnel, schools, last, period: Period, open_threshold: int):
    """School, circonscription, store and département tables, and the long per-profile
    table."""
    both = funnel.merge(activity, how="outer", on=["uai", "circ", "dep", "profile", "g"])
    for c in (*FUNNEL, *ACTIVITY, "activated_teachers"):
        both[c] = both[c].fillna(0).astype(int)
    level = both["g"].map(GROUPING_LEVELS)
    key = np.select(
        [level == "school", level == "circonscription", level == "departement"],
        [both["uai"], both["circ"], both["dep"]],
        ALL,
    )
    profile = np.where(both["g"] % 2 == 1, ALL, both["profile"])
    profiles = pd.DataFrame({"level": level, "key": key, "profile": profile})
    profiles = pd.concat([profiles, both[[*ACTIVITY, *FUNNEL, "activated_teachers"]]], axis=1)

    everyone = profiles[profiles["profile"] == ALL]
    sch = everyone[everyone["level"] == "school"].set_index("key")
    out = schools.copy()
    for c in (*FUNNEL, *ACTIVITY, "activated_teachers"):
        out[c] = out["uai"].map(sch[c]).fillna(0).astype(int)
    out["open"] = is_open(out["activated_teachers"], open_threshold)
    when = dict(zip(last["uai"], last["last_activity"], strict=True))
    out["last_activity"] = pd.to_datetime(out["uai"].map(when), errors="coerce")
    quiet = pd.Timestamp(period.end - dt.timedelta(days=QUIET_DAYS - 1))
    out["stopped"] = out["last_activity"].notna() & (out["last_activity"] < quiet)
    out = out.sort_values(["circonscription", "name", "uai"], ignore_index=True)

    circ = _place_table(out, everyone, "circonscription", "circonscription")
    dept_df = _place_table(out, everyone, "departement", "departement")
    dept_row = everyone[everyone["level"] == "department"]
    dept = {
        "schools_total": len(out),
        "schools_open": int(out["open"].sum()),
        "schools_stopped": int(out["stopped"].sum()),
        **{c: int(dept_row[c].sum()) for c in (*FUNNEL, *ACTIVITY)},
    }
    return out, circ, dept, profiles.reset_index(drop=True), dept_df


GROUPING_LEVELS = {
    **dict.fromkeys((6, 7), "school"),
    **dict.fromkeys((10, 11), "circonscription"),
    **dict.fromkeys((12, 13), "departement"),
    **dict.fromkeys((14, 15), "department"),
}
"""grouping(sid, circ, dep, profile) -> level (bits: sid 8, circ 4, dep 2, profile 1; a set
grouped by ``profile`` has an even code, its every-profile twin the next odd one)."""


def _place_table(schools: pd.DataFrame, everyone: pd.DataFrame, column: str, level: str):
    """One row per place (circonscription or département): school counts from the schools,
    people and activity from the place's own distinct counts (never sums of schools)."""
    t = schools.groupby(column).agg(
        schools_total=("uai", "size"),
        schools_open=("open", "sum"),
        schools_stopped=("stopped", "sum"),
    )
    rows = everyone[everyone["level"] == level].set_index("key")
    for c in (*FUNNEL, *ACTIVITY):
        t[c] = t.index.map(rows[c]).fillna(0).astype(int)
    t = t.reset_index()
    t["open_share"] = (t["schools_open"] / t["schools_total"]).round(4)
    _rates(t)
    return t


def _rates(df: pd.DataFrame) -> None:
    loaded, activated = df["loaded"].astype(float), df["activated"].astype(float)
    df["activation_rate"] = (df["activated"] / loaded.where(loaded > 0)).round(4)
    df["active_rate"] = (df["active_30d"] / activated.where(activated > 0)).round(4)
    uv = df["unique_visitors"].astype(float)
    df["visits_per_visitor"] = (df["visits"] / uv.where(uv > 0)).round(2)


def _activated_from_daily(funnel, last: pd.DataFrame, schools) -> pd.DataFrame:
    """Activated accounts from the daily CSV's last row per school and profile, up to the
    period's end (:attr:`DailyFigures.last`)."""
    last = last.merge(schools[["uai", "circonscription", "departement"]], on="uai")
    teach = last["profile"].isin(OPEN_PROFILES)
    rows = []
    for keys, g in (
        (["uai", "profile"], 6), (["uai"], 7), (["circonscription", "profile"], 10),
        (["circonscription"], 11), (["departement", "profile"], 12), (["departement"], 13),
        (["profile"], 14), ([], 15),
    ):  # fmt: skip
        grouped = last.groupby(keys) if keys else last.assign(_=0).groupby("_")
        part = grouped["activated"].sum().rename("activated").reset_index()
        tgrouped = last[teach].groupby(keys) if keys else last[teach].assign(_=0).groupby("_")
        t = tgrouped["activated"].sum().rename("activated_teachers").reset_index()
        part = part.merge(t, how="left", on=keys or ["_"]).drop(columns=["_"], errors="ignore")
        part = part.rename(columns={"circonscription": "circ", "departement": "dep"})
        rows.append(part.assign(g=g))
    act = pd.concat(rows, ignore_index=True)
    keys = ["uai", "circ", "dep", "profile", "g"]
    for k in keys:
        if k not in act:
            act[k] = None
    f = funnel.drop(columns=["activated", "activated_teachers"])
    f = f.merge(act[[*keys, "activated", "activated_teachers"]], how="left", on=keys)
    f["activated"] = f["activated"].fillna(0).astype(int)
    f["activated_teachers"] = f["activated_teachers"].fillna(0).astype(int)
    return f


def _compare(
    con, daily: DailyFigures | None, activated: pd.Series | None, period: Period, has_events: bool
):
    """Overlaps: connections (event log vs daily CSV, every user of the provider at the
    state's schools) and activated accounts (export, ``activated``: its activated accounts
    per school and profile, vs the daily CSV's last day)."""
    out = []
    what = "connexions par école et profil : journal d'événements et statistiques quotidiennes"
    if has_events and daily is not None:
        a = con.execute(
            f"""SELECT r.uai, r.profile, count(*) AS n FROM raw r JOIN schools s USING (uai)
            WHERE r.event = 'login' AND r.ts >= {_lit(period.start)}
            AND r.ts < {_lit(period.end + dt.timedelta(days=1))} GROUP BY ALL"""
        ).df()
        b = daily.connections
        b = b[b["uai"].isin(con.execute("SELECT uai FROM schools").df()["uai"])]
        out.append(_diff(what, a, b))
    else:
        out.append(SourceComparison(what, False))
    what = "comptes activés par école et profil : export des comptes et statistiques quotidiennes"
    if activated is not None and daily is not None:
        b = daily.last.groupby(["uai", "profile"])["activated"].sum().rename("m").reset_index()
        out.append(_diff(what, activated.rename("n").reset_index(), b))
    else:
        out.append(SourceComparison(what, False))
    return tuple(out)


def _diff(what: str, a: pd.DataFrame, b: pd.DataFrame) -> SourceComparison:
    both = a.merge(b, how="outer", on=["uai", "profile"]).fillna(0)
    return SourceComparison(
        what, True, int(both["n"].sum()), int(both["m"].sum()), int((both["n"] != both["m"]).sum())
    )


# -- checks and figures ------------------------------------------------------------------------


def checks(result: ActivityResult) -> list[Check]:
    """Deployment against its target, readable inputs, known people and schools, agreeing
    sources. None is blocking: they describe the deployment and the provider's files."""
    out = [
        Check.of(
            "open_target",
            "Part des écoles dont l'ENT est ouvert, au regard de la cible",
            None
            if not result.department["schools_total"] or result.accounts_source == "none"
            else result.open_share >= result.target,
            detail=f"{result.department['schools_open']} écoles ouvertes sur "
            f"{result.department['schools_total']} ({result.open_share:.0%}), cible "
            f"{result.target:.0%}"
            if result.accounts_source != "none"
            else "ni export des comptes ni statistiques quotidiennes : ouverture non mesurée",
        ),
        Check.of(
            "inputs_readable",
            "Toutes les lignes des fichiers d'activité sont lisibles",
            (result.malformed == 0) if result.inputs else None,
            detail=f"{result.malformed} ligne(s) illisible(s) écartée(s)"
            if result.inputs
            else "aucun fichier lu",
        ),
    ]
    u = result.unknown
    n = u["events_unknown_school"] + u["events_unknown_user"]
    out.append(
        Check.of(
            "events_known",
            "Les événements concernent des personnes et des écoles de l'état AAF",
            (n == 0) if result.events else None,
            detail=f"{u['events_unknown_user']} événement(s) de personnes inconnues, "
            f"{u['events_unknown_school']} d'écoles inconnues, comptés à part"
            if result.events
            else "pas de journal d'événements",
        )
    )
    for i, s in enumerate(result.sources):
        out.append(
            Check.of(
                f"sources_agree_{i + 1}",
                f"Sources concordantes : {s.what}",
                s.agree,
                detail=(
                    f"{s.total_a} contre {s.total_b} ; {s.mismatches} écart(s)"
                    if s.checked
                    else "une des deux sources n'a pas été fournie"
                ),
            )
        )
    return out


PROFILE_NAMES = {**{str(p): label for p, label in PROFILE_LABELS.items()}, ALL: "tous profils"}
LABELS = {
    "uai": "UAI",
    "name": "école",
    "circonscription": "circonscription",
    "departement": "département",
    "schools_total": "écoles",
    "schools_open": "écoles ouvertes",
    "schools_stopped": "écoles à l'arrêt",
    "open_share": "part ouverte",
    "loaded": "comptes chargés",
    "activated": "comptes activés",
    "active_7d": "actifs 7 j",
    "active_30d": "actifs 30 j",
    "activation_rate": "taux d'activation",
    "active_rate": "actifs 30 j / activés",
    "visits": "visites",
    "unique_visitors": "visiteurs uniques",
    "visits_per_visitor": "visites par visiteur",
    "connections": "connexions",
    "previous_visits": "visites (période précédente)",
    "visits_change": "évolution",
    "activated_teachers": "enseignants activés",
    "last_activity": "dernière activité",
    "profile": "profil",
    "application": "application",
    "event": "type",
    "events": "événements",
    "users": "utilisateurs",
    "device": "terminal",
}
PEOPLE = ("loaded", "activated", "active_7d", "active_30d", "unique_visitors",
          "activated_teachers", "users")  # fmt: skip
"""Columns that count people: masked under the small-cell threshold."""


def masked(df: pd.DataFrame, threshold: int, group: str | None = None) -> pd.DataFrame:
    """People counts as integers, ``<N`` (text) under the threshold — so a table still
    formats and right-aligns them as numbers — with secondary suppression: within
    a row, a funnel whose one step is masked also masks the next smallest step; within
    ``group``, a lone masked school is joined by the next smallest one, so no masked count can
    be recovered from a total and its visible neighbours."""
    cols = [c for c in PEOPLE if c in df.columns]
    values = df[cols].to_numpy(dtype=float)
    hide = (values > 0) & (values < threshold)
    if group is not None and len(df):
        codes = pd.factorize(df[group])[0]
        for j in range(values.shape[1]):
            col, h = values[:, j], hide[:, j]
            for gid in np.unique(codes[h]):
                rows = np.flatnonzero(codes == gid)
                if h[rows].sum() == 1 and len(rows) > 1:
                    rest = rows[~h[rows] & (col[rows] > 0)]
                    if len(rest):
                        hide[rest[np.argmin(col[rest])], j] = True
    out = df.copy()
    for j, c in enumerate(cols):
        counts = df[c].astype("Int64").astype(object)  # Python ints, NA kept
        out[c] = counts.where(~hide[:, j], f"<{threshold}")
    return out
