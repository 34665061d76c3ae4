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
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ent_audit.aaf import population
from ent_audit.aaf.population import Profile
from ent_audit.synth.accounts import ACCOUNT_COLUMNS, PROFILE_FR, write_accounts  # noqa: F401
from ent_audit.transfer.workdays import public_holidays

VISIT_GAP = dt.timedelta(minutes=30)
"""A visit ends after 30 minutes without an event (the web-analytics convention)."""

SCHOOL_HOLIDAYS_ZONE_C: dict[int, tuple[tuple[dt.date, dt.date], ...]] = {
    # First and last day off (inclusive), zone C (Toulouse), as this generator assumes them:
    # check the official calendar before relying on them for anything but synthetic data.
    2025: (
        (dt.date(2025, 10, 18), dt.date(2025, 11, 2)),
        (dt.date(2025, 12, 20), dt.date(2026, 1, 4)),
        (dt.date(2026, 2, 21), dt.date(2026, 3, 8)),
        (dt.date(2026, 4, 18), dt.date(2026, 5, 3)),
        (dt.date(2026, 7, 4), dt.date(2026, 8, 31)),
    ),
    2026: (
        (dt.date(2026, 10, 17), dt.date(2026, 11, 1)),
        (dt.date(2026, 12, 19), dt.date(2027, 1, 3)),
        (dt.date(2027, 2, 13), dt.date(2027, 2, 28)),
        (dt.date(2027, 4, 10), dt.date(2027, 4, 25)),
        (dt.date(2027, 7, 3), dt.date(2027, 8, 31)),
    ),
}

KIND_OF = {
    Profile.PUPIL: "Eleve",
    Profile.GUARDIAN: "PersRelEleve",
    Profile.TEACHER: "PersEducNat",
    Profile.DIRECTOR: "PersEducNat",
    Profile.OTHER_STAFF: "PersEducNat",
}
PROFILES = tuple(Profile)
"""Profile codes: index in this tuple."""

LABELS_FR = tuple(PROFILE_FR[p] for p in Profile)
LABELS_EN = ("student", "relative", "teacher", "headteacher", "staff")

EVENTS_FR = ("connexion", "application", "connecteur")
EVENTS_EN = ("login", "app", "connector")
LOGIN, APP, CONNECTOR = 0, 1, 2

APPLICATIONS = (
    ("Messagerie", APP),
    ("Cahier multimédia", APP),
    ("Actualités", APP),
    ("Blog", APP),
    ("Espace documentaire", APP),
    ("Agenda", APP),
    ("Mur collaboratif", APP),
    ("Cahier de textes", APP),
    ("Casier", APP),
    ("Exercices et évaluations", APP),
    ("Éduthèque", CONNECTOR),
    ("BRNE Lalilo", CONNECTOR),
    ("Banque de ressources", CONNECTOR),
    ("Pronote", CONNECTOR),
)
DEVICES = ("ordinateur", "mobile", "tablette")
DEVICES_EN = ("desktop", "mobile", "tablet")

ACTIVATION = np.array([0.55, 0.45, 0.88, 1.0, 0.35])
"""Probability that a person of an open school activates their account, by profile."""
ACTIVATION_DELAY = np.array([25.0, 30.0, 10.0, 3.0, 20.0])
"""Mean days between the school's opening and a person's activation, by profile."""
VISIT_RATE = np.array([0.16, 0.12, 0.55, 0.8, 0.2])
"""Relative visits per weighted day, by profile (scaled to the requested number of events)."""
DEVICE_MIX = np.array(
    [
        [0.55, 0.15, 0.30],
        [0.25, 0.65, 0.10],
        [0.80, 0.12, 0.08],
        [0.85, 0.10, 0.05],
        [0.7, 0.2, 0.1],
    ],
)  # desktop, mobile, tablet by profile

_H = np.zeros((5, 24))
_H[0, [8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19]] = [2, 6, 8, 6, 2, 6, 6, 3, 4, 4, 2]
_H[1, [7, 8, 12, 13, 17, 18, 19, 20, 21, 22]] = [3, 2, 3, 2, 3, 5, 7, 8, 6, 2]
_H[2, [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]] = [
    3, 6, 4, 3, 3, 5, 5, 3, 3, 4, 6, 6, 5, 5, 4, 2
]  # fmt: skip
_H[3] = _H[2]
_H[3, [7, 8, 12, 13]] += [3, 3, 2, 2]
_H[4, [8, 9, 10, 11, 13, 14, 15, 16, 17]] = [5, 6, 6, 5, 4, 5, 5, 4, 2]
HOURS = _H / _H.sum(axis=1, keepdims=True)
"""Hour of a visit's start, by profile."""

SCENARIO = {"never": 0.08, "late": 0.10, "stopped": 0.06}
"""Share of schools that never open, open late, and whose activity stops."""

UNKNOWN_SCHOOL = "0319999C"
"""A well-formed UAI that no generated perimeter holds (generated UAI never start 03199)."""

CSV_COLUMNS = ("timestamp", "user", "profile", "uai", "event", "application", "device")
JSONL_KEYS = ("time", "login", "role", "school", "type", "app", "device")
JSONL_MAPPING = dict(zip(CSV_COLUMNS, JSONL_KEYS, strict=True))
"""The column mapping that reads the JSON lines (``columns.events`` of the report)."""
DAILY_COLUMNS = (
    "Etablissement",
    "UAI",
    "Date",
    "Profil",
    "Connexions",
    "Visiteurs uniques",
    "Comptes chargés",
    "Comptes activés",
)


def school_year(day: dt.date) -> int:
    return day.year if day.month >= 8 else day.year - 1


def calendar(start: dt.date, end: dt.date) -> pd.DataFrame:
    """One row per day: weekday, school day, holiday, and the weight of activity that day."""
    days = pd.date_range(start, end, freq="D")
    years = {school_year(d.date()) for d in days}
    unknown = sorted(years - set(SCHOOL_HOLIDAYS_ZONE_C))
    if unknown:
        raise ValueError(
            f"calendrier scolaire inconnu pour l'année {unknown[0]}-{unknown[0] + 1}; connues: "
            + ", ".join(f"{y}-{y + 1}" for y in SCHOOL_HOLIDAYS_ZONE_C)
        )
    holiday = np.zeros(len(days), dtype=bool)
    for y in years:
        for a, b in SCHOOL_HOLIDAYS_ZONE_C[y]:
            holiday |= (days >= pd.Timestamp(a)) & (days <= pd.Timestamp(b))
    public = {d for y in range(start.year, end.year + 1) for d in public_holidays(y)}
    is_public = np.array([d.date() in public for d in days])
    dow = days.day_of_week.to_numpy()
    weight = np.select(
        [is_public, holiday & (dow >= 5), holiday, dow == 2, dow == 5, dow == 6],
        [0.1, 0.06, 0.12, 0.45, 0.25, 0.2],
        1.0,
    )
    school_day = ~holiday & ~is_public & np.isin(dow, [0, 1, 3, 4])
    return pd.DataFrame(
        {"date": days, "dow": dow, "holiday": holiday | is_public, "school_day": school_day,
         "weight": weight}
    )  # fmt: skip


@dataclass(frozen=True)
class ActivityFiles:
    """What :func:`write_activity` put on disk."""

    out: Path
    events_csv: list[Path]
    """The raw event log, one CSV per month."""
    events_jsonl: list[Path]
    """The same events as JSON lines (English labels, the keys of :data:`JSONL_MAPPING`)."""
    accounts: Path
    daily: Path
    truth: Path
    events: int
    """Events written (malformed lines not counted)."""
    start: dt.date
    end: dt.date
    frames: dict = field(default_factory=dict, repr=False, compare=False)
    """``events`` (clear jointures), ``members``, ``accounts``, ``schools``: for tests."""


# -- people --------------------------------------------------------------------------------


def people(members: pd.DataFrame) -> pd.DataFrame:
    """One row per person with a school: kind, jointure, profile code and school of their
    activity (their main school when it is a school, else their first school)."""
    at = population.at_schools(members)
    at = at.sort_values("primary", ascending=False, kind="stable")
    first = at.drop_duplicates(["kind", "jointure"])
    code = {str(p): i for i, p in enumerate(PROFILES)}
    return pd.DataFrame(
        {
            "kind": first["kind"].astype(str).to_numpy(),
            "jointure": first["jointure"].astype(str).to_numpy(),
            "profile": first["profile"].astype(str).map(code).to_numpy(np.int8),
            "uai": first["uai"].astype(str).to_numpy(),
        }
    )


# -- generation ----------------------------------------------------------------------------


def generate(
    members: pd.DataFrame,
    schools: pd.DataFrame,
    *,
    seed: int = 0,
    start: dt.date = dt.date(2026, 9, 1),
    end: dt.date = dt.date(2027, 7, 2),
    events: int = 200_000,
    unknown_visits: int = 20,
) -> dict:
    """Draw the activity: ``accounts`` (one row per person), ``events`` (sorted by time,
    clear jointures), ``scenario`` per school. ``events`` is a target (±5 %)."""
    rng = np.random.default_rng([seed, 14])
    cal = calendar(start, end)
    n_days = len(cal)
    ppl = people(members)
    uais = schools["uai"].astype(str).to_numpy()
    school_of = pd.Index(uais).get_indexer(ppl["uai"])
    prof = ppl["profile"].to_numpy()

    # Schools: scenario, opening day, last day of activity (indices into the calendar).
    ns = len(uais)
    draw = rng.random(ns)
    never, late = SCENARIO["never"], SCENARIO["never"] + SCENARIO["late"]
    stopped = late + SCENARIO["stopped"]
    status = np.select(
        [draw < never, draw < late, draw < stopped], ["never", "late", "stopped"], "normal"
    )
    teachers = np.bincount(school_of[np.isin(prof, [2, 3])], minlength=ns)
    status = np.where(teachers == 0, "never", status)
    for scenario in SCENARIO:  # every scenario present from 10 schools on, whatever the draw
        normal = np.flatnonzero(status == "normal")
        if ns >= 10 and not (status == scenario).any() and len(normal):
            status[rng.choice(normal)] = scenario
    open_day = rng.integers(0, min(10, n_days), ns)
    late_lo, late_hi = min(60, n_days - 1), max(min(170, n_days - 30), min(61, n_days))
    open_day = np.where(status == "late", rng.integers(late_lo, late_hi, ns), open_day)
    stop_day = np.full(ns, n_days - 1)
    stop_lo, stop_hi = int(n_days * 0.45), max(int(n_days * 0.7), int(n_days * 0.45) + 1)
    stop_day = np.where(status == "stopped", rng.integers(stop_lo, stop_hi, ns), stop_day)
    stop_day = np.minimum(stop_day, n_days - 1)

    # Accounts: activated once the school is open; a director (else a teacher) first.
    opened = status[school_of] != "never"
    first_teacher = np.zeros(len(ppl), dtype=bool)
    order = np.lexsort((np.where(prof == 3, 0, 1), school_of))
    staff = order[np.isin(prof[order], [2, 3])]
    _, firsts = np.unique(school_of[staff], return_index=True)
    first_teacher[staff[firsts]] = True
    active = opened & ((rng.random(len(ppl)) < ACTIVATION[prof]) | first_teacher)
    delay = rng.exponential(ACTIVATION_DELAY[prof]).astype(np.int64)
    delay[first_teacher] = 0
    act_day = open_day[school_of] + delay
    window_end = stop_day[school_of]
    active &= act_day <= window_end
    act_day = np.where(active, act_day, -1)

    # Visits: Poisson per person over their window, days weighted by the calendar.
    cum = np.concatenate([[0.0], np.cumsum(cal["weight"].to_numpy())])
    lo = cum[np.clip(act_day, 0, None)]
    hi = cum[window_end + 1]
    mass = np.where(active, hi - lo, 0.0)
    factor = rng.lognormal(0.0, 0.5, len(ppl))
    intensity = VISIT_RATE[prof] * factor * mass
    events_per_visit = 4.0
    scale = (events / events_per_visit) / max(intensity.sum(), 1e-9)
    n_visits = rng.poisson(intensity * scale * 1.02)  # about 2 % fall in a taken hour
    who = np.repeat(np.arange(len(ppl)), n_visits)
    u = lo[who] + rng.random(len(who)) * (hi[who] - lo[who])
    day = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, n_days - 1)
    hour = _draw_rows(rng, HOURS, prof[who])
    key = (who.astype(np.int64) * n_days + day) * 24 + hour
    key = np.unique(key)  # at most one visit per person and clock hour
    hour = (key % 24).astype(np.int64)
    day = (key // 24 % n_days).astype(np.int64)
    who = (key // 24 // n_days).astype(np.int64)
    visits = _visits(rng, who, day, hour, prof[who], ppl["uai"].to_numpy()[who], cal, start)
    visits["person"] = who

    # Visits of people unknown to the AAF, and of known people at a school outside it.
    ev = _events(rng, visits, prof[who])
    unknown = _unknown(rng, unknown_visits, ppl, active, cal, start, uais)
    events_df = pd.DataFrame(
        {
            "ts": ev["ts"],
            "user": ppl["jointure"].to_numpy()[ev["person"]],
            "kind": ppl["kind"].to_numpy()[ev["person"]],
            "profile": ev["profile"],
            "uai": ev["uai"],
            "event": ev["event"],
            "application": ev["application"],
            "device": ev["device"],
        }
    )
    events_df = pd.concat([events_df, unknown], ignore_index=True)
    events_df = events_df.sort_values(["ts", "user"], kind="stable", ignore_index=True)

    last = events_df[events_df["uai"] != UNKNOWN_SCHOOL].groupby("user")["ts"].max()
    days = pd.to_datetime(start) + pd.to_timedelta(np.clip(act_day, 0, None), unit="D")
    accounts = pd.DataFrame(
        {
            "kind": ppl["kind"],
            "jointure": ppl["jointure"],
            "profile": prof,
            "uai": ppl["uai"],
            "activated": active,
            "activation": days.where(active),
            "last_login": ppl["jointure"].map(last).where(active),
        }
    )
    scenario = pd.DataFrame(
        {
            "uai": uais,
            "status": status,
            "open_day": pd.to_datetime(start) + pd.to_timedelta(open_day, unit="D"),
            "stop_day": pd.to_datetime(start) + pd.to_timedelta(stop_day, unit="D"),
        }
    )
    return {"events": events_df, "accounts": accounts, "scenario": scenario, "visits": visits}


def _draw_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per element of ``rows`` from the distribution ``probs[row]``."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(rows))
    return (u[:, None] > cum[rows]).sum(axis=1).astype(np.int64)


def _visits(rng, who, day, hour, prof, uai, cal, start) -> pd.DataFrame:
    n = len(who)
    minute = rng.integers(0, 15 * 60, n)
    base = np.datetime64(start, "s")
    begin = base + (day * 86400 + hour * 3600 + minute).astype("timedelta64[s]")
    size = 1 + rng.binomial(6, 0.5, n)  # 1 to 7 events, each 1 to 120 s after the previous
    device = _draw_rows(rng, DEVICE_MIX, prof)
    return pd.DataFrame(
        {"begin": begin, "events": size, "profile": prof, "uai": uai, "device": device}
    )


def _events(rng, visits: pd.DataFrame, prof: np.ndarray) -> dict:
    size = visits["events"].to_numpy()
    total = int(size.sum())
    v = np.repeat(np.arange(len(visits)), size)
    first = np.zeros(total, dtype=bool)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    first[starts] = True
    gaps = np.where(first, 0, rng.integers(1, 121, total))
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[starts], size)
    ts = visits["begin"].to_numpy()[v] + offset.astype("timedelta64[s]")
    # Applications: a Zipf-like popularity, connectors more used by teachers and pupils.
    weights = 1.0 / np.arange(1, len(APPLICATIONS) + 1) ** 0.9
    app = rng.choice(len(APPLICATIONS), total, p=weights / weights.sum())
    kind = np.array([k for _, k in APPLICATIONS])[app]
    event = np.where(first, LOGIN, kind)
    app = np.where(first, -1, app)
    return {
        "ts": ts,
        "person": visits["person"].to_numpy()[v],
        "profile": visits["profile"].to_numpy()[v],
        "uai": visits["uai"].to_numpy()[v],
        "event": event.astype(np.int8),
        "application": app.astype(np.int16),
        "device": visits["device"].to_numpy()[v].astype(np.int8),
    }


def _unknown(rng, n: int, ppl: pd.DataFrame, active, cal, start, uais) -> pd.DataFrame:
    """``n`` one-event visits by unknown people at known schools, and ``n // 2`` by known
    people at :data:`UNKNOWN_SCHOOL`, on school days at 3 a.m. (an hour nobody else uses, so
    they never join a known visit)."""
    if n <= 0:
        return pd.DataFrame(
            columns=["ts", "user", "kind", "profile", "uai", "event", "application", "device"]
        )
    school_days = np.flatnonzero(cal["school_day"].to_numpy())
    days = rng.choice(school_days, n + n // 2)
    ts = np.datetime64(start, "s") + (days * 86400 + 3 * 3600 + rng.integers(0, 900, len(days)))
    known = np.flatnonzero(active)
    who = rng.choice(known, n // 2, replace=False) if len(known) >= n // 2 else known[: n // 2]
    m = len(who)
    strangers = [f"X{9_000_000 + i}" for i in range(n)]
    users = np.concatenate([strangers, ppl["jointure"].to_numpy()[who]])
    prof = np.concatenate([np.full(n, 1, np.int8), ppl["profile"].to_numpy()[who]])
    return pd.DataFrame(
        {
            "ts": ts[: n + m],
            "user": users,
            "kind": np.concatenate([np.full(n, "PersRelEleve"), ppl["kind"].to_numpy()[who]]),
            "profile": prof,
            "uai": np.concatenate([rng.choice(uais, n), np.full(m, UNKNOWN_SCHOOL)]),
            "event": np.zeros(n + m, np.int8),
            "application": np.full(n + m, -1, np.int16),
            "device": np.zeros(n + m, np.int8),
        }
    )


# -- writing -------------------------------------------------------------------------------


def _month_slices(ts: np.ndarray) -> list[tuple[str, slice]]:
    months = ts.astype("datetime64[M]")
    bounds = np.flatnonzero(months[1:] != months[:-1]) + 1
    edges = [0, *bounds.tolist(), len(ts)]
    return [(str(months[a]), slice(a, b)) for a, b in itertools.pairwise(edges)]


def _label(codes: np.ndarray, labels: tuple[str, ...], missing: str = "") -> pa.Array:
    table = pa.array([*labels, missing])
    idx = np.where(codes < 0, len(labels), codes).astype(np.int32)
    return table.take(pa.array(idx))


def _arrow_events(df: pd.DataFrame, english: bool) -> pa.Table:
    names = JSONL_KEYS if english else CSV_COLUMNS
    ts = pa.array(df["ts"].to_numpy().astype("datetime64[s]"), pa.timestamp("s"))
    fmt = "%Y-%m-%d %H:%M:%S" if english else "%Y-%m-%dT%H:%M:%S"
    apps = tuple(a for a, _ in APPLICATIONS)
    cols = [
        pc.strftime(ts, fmt),
        pa.array(df["user"].to_numpy(), pa.string()),
        _label(df["profile"].to_numpy(), LABELS_EN if english else LABELS_FR),
        pa.array(df["uai"].to_numpy(), pa.string()),
        _label(df["event"].to_numpy(), EVENTS_EN if english else EVENTS_FR),
        _label(df["application"].to_numpy(), apps),
        _label(df["device"].to_numpy(), DEVICES_EN if english else DEVICES),
    ]
    return pa.table(dict(zip(names, cols, strict=True)))


def write_events(
    events: pd.DataFrame,
    out: Path,
    *,
    jsonl: bool = True,
    malformed: int = 0,
    seed: int = 0,
    chunk: int = 1_000_000,
) -> tuple[list[Path], list[Path], list[dict]]:
    """The event log, one file per month (``evenements-AAAA-MM.csv``, ``events-AAAA-MM.jsonl``),
    with ``malformed`` broken lines inserted in the CSV and in the JSON lines (listed with
    file and line in the returned list)."""
    rng = np.random.default_rng([seed, 15])
    csvs, jsons, broken = [], [], []
    slices = _month_slices(events["ts"].to_numpy())
    bad_csv = _bad_lines(rng, malformed, slices)
    bad_json = _bad_lines(rng, malformed, slices)
    for month, sl in slices:
        part = events.iloc[sl]
        path = out / f"evenements-{month}.csv"
        with open(path, "wb") as fh:
            fh.write((",".join(CSV_COLUMNS) + "\n").encode())
            body = _csv_body(part, chunk)
            broken += _insert_bad(fh, body, bad_csv.get(month, []), path, csv=True)
        csvs.append(path)
        if jsonl:
            path = out / f"events-{month}.jsonl"
            with open(path, "wb") as fh:
                body = _jsonl_body(part, chunk)
                broken += _insert_bad(fh, body, bad_json.get(month, []), path, csv=False)
            jsons.append(path)
    return csvs, jsons, broken


def _bad_lines(rng, n: int, slices) -> dict[str, list[int]]:
    """Months and row positions (before which a broken line goes), ``n`` in all."""
    if n <= 0 or not slices:
        return {}
    picks = rng.integers(0, len(slices), n)
    out: dict[str, list[int]] = {}
    for i in picks:
        month, sl = slices[i]
        out.setdefault(month, []).append(int(rng.integers(0, sl.stop - sl.start + 1)))
    return out


def _csv_body(part: pd.DataFrame, chunk: int):
    for i in range(0, len(part), chunk):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(
            _arrow_events(part.iloc[i : i + chunk], english=False),
            sink,
            pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        yield sink.getvalue().to_pybytes()


def _jsonl_body(part: pd.DataFrame, chunk: int):
    for i in range(0, len(part), chunk):
        t = _arrow_events(part.iloc[i : i + chunk], english=True).to_pandas()
        yield t.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")


BAD_CSV = ("2026-09-03T10:00:00,{u},Élève", "ligne tronquée")
BAD_JSON = ('{"time": "hier", "login": "{u}"', "JSON mal formé")


def _insert_bad(fh, body, positions: list[int], path: Path, *, csv: bool) -> list[dict]:
    """Write ``body`` (chunks of lines) with a broken line before each row of ``positions``."""
    positions = sorted(positions)
    broken: list[dict] = []
    written = 1 if csv else 0  # the header is line 1
    row = 0

    def bad() -> None:
        nonlocal written
        text = (BAD_CSV[0] if csv else BAD_JSON[0]).replace("{u}", f"Z{len(broken)}")
        fh.write(text.encode() + b"\n")
        written += 1
        broken.append(
            {"file": path.name, "line": written, "reason": BAD_CSV[1] if csv else BAD_JSON[1]}
        )

    for block in body:
        lines = block.splitlines(keepends=True)
        cut = 0
        while positions and positions[0] <= row + len(lines):
            at = positions.pop(0) - row
            fh.writelines(lines[cut:at])
            written += at - cut
            cut = at
            bad()
        fh.writelines(lines[cut:])
        written += len(lines) - cut
        row += len(lines)
    for _ in positions:
        bad()
    return broken


def daily_frame(
    events: pd.DataFrame, accounts: pd.DataFrame, schools: pd.DataFrame, end: dt.date
) -> pd.DataFrame:
    """The provider's daily figures: one row per school, day and profile with a connection,
    plus one row per school and profile on the last day (its account counts). The provider
    counts every event at its schools, people unknown to the AAF included."""
    ev = events[events["uai"].isin(schools["uai"])]
    day = ev["ts"].dt.normalize()
    g = pd.DataFrame(
        {
            "uai": ev["uai"],
            "date": day,
            "profile": ev["profile"].astype(np.int64),
            "user": ev["user"],
        }
    )
    logins = ev["event"].to_numpy() == LOGIN
    conn = g[logins].groupby(["uai", "date", "profile"]).size().rename("connections")
    uniq = g.groupby(["uai", "date", "profile"])["user"].nunique().rename("unique")
    daily = pd.concat([conn, uniq], axis=1).fillna(0).reset_index()
    last = pd.Timestamp(end)
    keys = pd.MultiIndex.from_product(
        [schools["uai"].astype(str), [last], range(len(PROFILES))], names=["uai", "date", "profile"]
    ).to_frame(index=False)
    daily = keys.merge(daily, how="outer", on=["uai", "date", "profile"]).fillna(0)
    # Accounts loaded and activated as of each row's day (by the export's school).
    acc = accounts.assign(
        day=accounts["activation"].dt.normalize(), profile=accounts["profile"].astype(np.int64)
    )
    loaded = acc.groupby(["uai", "profile"]).size().rename("loaded")
    daily = daily.merge(loaded.reset_index(), how="left", on=["uai", "profile"])
    daily = daily[daily["loaded"].fillna(0) > 0].copy()  # a profile the school does not have
    act = acc[acc["activated"]].sort_values("day")
    act = act.groupby(["uai", "profile", "day"]).size().groupby(level=[0, 1]).cumsum()
    act = act.rename("activated").reset_index().sort_values("day")
    daily["date"] = daily["date"].astype("datetime64[s]")
    act["day"] = act["day"].astype("datetime64[s]")
    daily = daily.sort_values("date")
    daily = pd.merge_asof(
        daily, act, left_on="date", right_on="day", by=["uai", "profile"], direction="backward"
    )
    names = schools.drop_duplicates("uai").set_index("uai")["name"]
    out = pd.DataFrame(
        {
            DAILY_COLUMNS[0]: daily["uai"].map(names),
            DAILY_COLUMNS[1]: daily["uai"],
            DAILY_COLUMNS[2]: daily["date"].dt.strftime("%d/%m/%Y"),
            DAILY_COLUMNS[3]: np.array(LABELS_FR)[daily["profile"].astype(int).to_numpy()],
            DAILY_COLUMNS[4]: daily["connections"].astype(int),
            DAILY_COLUMNS[5]: daily["unique"].astype(int),
            DAILY_COLUMNS[6]: daily["loaded"].astype(int),
            DAILY_COLUMNS[7]: daily["activated"].fillna(0).astype(int),
        }
    )
    order = np.lexsort((daily["profile"].to_numpy(), daily["uai"].to_numpy(), daily["date"]))
    return out.iloc[order].reset_index(drop=True)


# -- truth ---------------------------------------------------------------------------------


def _visits_of(ev: pd.DataFrame) -> pd.DataFrame:
    """Visits (30-minute rule) of events sorted by person then time: first event of each."""
    ev = ev.sort_values(["who", "ts"], kind="stable")
    same = ev["who"].to_numpy()[1:] == ev["who"].to_numpy()[:-1]
    gap = np.diff(ev["ts"].to_numpy()) > np.timedelta64(VISIT_GAP)
    new = np.concatenate([[True], ~same | gap])[: len(ev)]
    return ev[new]


def _pair(kind: pd.Series, ids: pd.Series) -> pd.Series:
    """One key per person: ids are unique within a kind only."""
    return kind.astype(str) + "|" + ids.astype(str)


def _circ_of(schools: pd.DataFrame) -> pd.Series:
    return schools.drop_duplicates("uai").set_index("uai")["circonscription"].astype(str)


def _distinct_by(df: pd.DataFrame, keys: list[str], who: str = "who") -> pd.Series:
    """Distinct people per group (``keys`` empty: in all)."""
    if not keys:
        return pd.Series({(): df[who].nunique()})
    return df.drop_duplicates([*keys, who]).groupby(keys).size()


def reference_indicators(
    events: pd.DataFrame,
    members: pd.DataFrame,
    accounts: pd.DataFrame,
    schools: pd.DataFrame,
    start: dt.date,
    end: dt.date,
    open_threshold: int = 1,
) -> dict:
    """Every indicator of the activity report in plain pandas (the truth, and the benchmark's
    pandas path). ``events``: ts, user, kind, profile (code), uai, event, application, device
    codes; ``accounts``: kind, jointure, activated; ``members``: the population's memberships."""
    circ = _circ_of(schools)
    names = np.array([str(p) for p in PROFILES])
    known_people = _pair(members["kind"], members["jointure"])
    upto = events[(events["ts"] < pd.Timestamp(end) + pd.Timedelta(days=1)).to_numpy()]
    upto = upto.assign(who=_pair(upto["kind"], upto["user"]))
    in_school = upto["uai"].isin(circ.index).to_numpy()
    known = upto["who"].isin(known_people).to_numpy()
    in_period = (upto["ts"] >= pd.Timestamp(start)).to_numpy()
    unknown = {
        "events_unknown_school": int((~in_school & in_period).sum()),
        "events_unknown_user": int((in_school & ~known & in_period).sum()),
    }
    ok = upto[in_school & known]
    ok = ok.assign(circ=ok["uai"].map(circ), pname=names[ok["profile"].to_numpy()])
    ev = ok[(ok["ts"] >= pd.Timestamp(start)).to_numpy()]
    visits = _visits_of(ev)
    logins = ev[(ev["event"] == LOGIN).to_numpy()]

    def activity(keys: list[str]) -> dict:
        out: dict = {}
        for f, series in (
            ("visits", visits.groupby(keys).size() if keys else pd.Series({(): len(visits)})),
            ("unique_visitors", _distinct_by(visits, keys)),
            ("connections", logins.groupby(keys).size() if keys else pd.Series({(): len(logins)})),
        ):
            for k, n in series.items():
                out.setdefault(k, {"visits": 0, "unique_visitors": 0, "connections": 0})[f] = int(n)
        return out

    # The funnel: memberships at schools, their accounts, their recent activity.
    at = population.at_schools(members)
    at = pd.DataFrame(
        {
            "who": _pair(at["kind"], at["jointure"]).to_numpy(),
            "uai": at["uai"].astype(str).to_numpy(),
            "circ": at["circonscription"].astype(str).to_numpy(),
            "pname": at["profile"].astype(str).to_numpy(),
            "teacher": at["teacher"].to_numpy(bool),
        }
    )
    done = accounts[accounts["activated"].to_numpy()]
    at["activated"] = at["who"].isin(_pair(done["kind"], done["jointure"])).to_numpy()
    for days in (7, 30):
        since = pd.Timestamp(end) - pd.Timedelta(days=days - 1)
        at[f"active_{days}d"] = at["who"].isin(ok.loc[(ok["ts"] >= since).to_numpy(), "who"])

    def funnel(keys: list[str]) -> dict:
        out: dict = {}
        for f in ("loaded", "activated", "active_7d", "active_30d"):
            sel = at if f == "loaded" else at[at[f].to_numpy()]
            for k, n in _distinct_by(sel, keys).items():
                out.setdefault(k, dict.fromkeys(FUNNEL_FIELDS, 0))[f] = int(n)
        return out

    def levels(key: str | None) -> dict:
        keys = [key] if key else []
        act, act_p = activity(keys), activity([*keys, "pname"])
        fun, fun_p = funnel(keys), funnel([*keys, "pname"])
        out = {}
        for k in set(act) | set(fun):
            k1 = k[0] if isinstance(k, tuple) and k else k
            out[k1] = {
                **act.get(k, dict.fromkeys(ACTIVITY_FIELDS, 0)),
                "by_profile": {p: v for (g, p), v in _split(act_p, key).items() if g == k1},
                "accounts": {
                    **fun.get(k, dict.fromkeys(FUNNEL_FIELDS, 0)),
                    "by_profile": {p: v for (g, p), v in _split(fun_p, key).items() if g == k1},
                },
            }
        return out

    teachers = at[at["teacher"].to_numpy() & at["activated"].to_numpy()]
    act_teachers = teachers.drop_duplicates(["who", "uai"]).groupby("uai").size()
    last_activity = ok.groupby("uai")["ts"].max()  # no event since
    quiet_since = pd.Timestamp(end) - pd.Timedelta(days=27)
    empty = {**dict.fromkeys(ACTIVITY_FIELDS, 0), "by_profile": {},
             "accounts": {**dict.fromkeys(FUNNEL_FIELDS, 0), "by_profile": {}}}  # fmt: skip
    per_school = levels("uai")
    school_out = {}
    for uai in circ.index:
        last = last_activity.get(uai)
        n = int(act_teachers.get(uai, 0))
        school_out[uai] = {
            "circonscription": circ[uai],
            **per_school.get(uai, empty),
            "activated_teachers": n,
            "open": n >= open_threshold,
            "last_activity": None if last is None else str(last.date()),
            "stopped": bool(last is not None and last < quiet_since),
        }
    per_circ = levels("circ")
    circ_out = {
        c: {
            "schools_total": int((circ == c).sum()),
            "schools_open": sum(school_out[u]["open"] for u in circ.index[circ == c]),
            **per_circ.get(c, empty),
        }
        for c in sorted(circ.unique())
    }
    dept = {
        "schools_total": len(circ),
        "schools_open": sum(s["open"] for s in school_out.values()),
        **levels(None).get((), empty),
    }

    week = visits["ts"].dt.to_period("W-SUN").dt.start_time.dt.date.astype(str)
    wk = visits.assign(week=week)
    weekly = {
        w: {"visits": int(v), "unique_visitors": int(u)}
        for (w, v), u in zip(
            wk.groupby("week").size().items(), _distinct_by(wk, ["week"]).to_numpy(), strict=True
        )
    }
    heat = visits.groupby([visits["ts"].dt.day_of_week, visits["ts"].dt.hour]).size()
    apps = ev[(ev["application"] >= 0).to_numpy()]
    app_names = np.array([a for a, _ in APPLICATIONS])
    app_users = _distinct_by(apps, ["application"])
    applications = {
        app_names[a]: {"events": int(n), "users": int(app_users[a])}
        for a, n in apps.groupby("application").size().items()
    }
    length = (end - start).days + 1
    prev_start = start - dt.timedelta(days=length)
    prev = ok[
        ((ok["ts"] >= pd.Timestamp(prev_start)) & (ok["ts"] < pd.Timestamp(start))).to_numpy()
    ]
    prev_visits = _visits_of(prev)
    return {
        "period": {"start": str(start), "end": str(end)},
        "open_threshold": open_threshold,
        **{k: dept[k] for k in ("schools_total", "schools_open", "visits", "unique_visitors")},
        "connections": dept["connections"],
        "accounts": {k: dept["accounts"][k] for k in FUNNEL_FIELDS},
        "department": dept,
        "by_circonscription": circ_out,
        "schools": school_out,
        "weekly": weekly,
        "heatmap": {f"{d}-{h}": int(n) for (d, h), n in heat.items()},
        "applications": applications,
        "devices": {DEVICES[d]: int(n) for d, n in visits.groupby("device").size().items()},
        "previous": {
            "start": str(prev_start),
            "end": str(start - dt.timedelta(days=1)),
            "visits": len(prev_visits),
            "unique_visitors": int(prev_visits["who"].nunique()),
            "connections": int((prev["event"] == LOGIN).sum()),
        },
        "unknown": unknown,
        "stopped_schools": sorted(u for u, s in school_out.items() if s["stopped"]),
        "not_open_schools": sorted(u for u, s in school_out.items() if not s["open"]),
    }


ACTIVITY_FIELDS = ("visits", "unique_visitors", "connections")
FUNNEL_FIELDS = ("loaded", "activated", "active_7d", "active_30d")


def _split(per: dict, key: str | None) -> dict:
    """``{(group, profile): figures}`` from a grouping by ``[key, profile]`` or ``[profile]``."""
    if key:
        return {(k[0], k[1]): v for k, v in per.items()}
    return {((), k if not isinstance(k, tuple) else k[0]): v for k, v in per.items()}


def write_activity(
    archive: Path | str,
    out: Path | str,
    *,
    seed: int = 0,
    start: dt.date = dt.date(2026, 9, 1),
    end: dt.date = dt.date(2027, 7, 2),
    events: int = 200_000,
    unknown_visits: int = 20,
    malformed: int = 3,
    jsonl: bool = True,
    open_threshold: int = 1,
) -> ActivityFiles:
    """Generate activity for the perimeter of ``archive`` and write the three formats and
    ``activity-truth.json`` into ``out``. Same arguments, same files."""
    from ent_audit.aaf.snapshot import load

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    snap = load(archive)
    members = population.memberships(snap)
    schools = population.schools(snap)[["uai", "name", "circonscription"]].astype(str)
    drawn = generate(
        members, schools, seed=seed, start=start, end=end, events=events,
        unknown_visits=unknown_visits,
    )  # fmt: skip
    ev = drawn["events"]
    csvs, jsons, broken = write_events(ev, out, jsonl=jsonl, malformed=malformed, seed=seed)
    accounts = write_accounts(drawn["accounts"], out / "comptes.csv")
    daily = out / "statistiques-quotidiennes.csv"
    daily_frame(ev, drawn["accounts"], schools, end).to_csv(
        daily, sep=";", index=False, encoding="utf-8-sig"
    )
    truth = reference_indicators(
        ev, members, drawn["accounts"], schools, start, end, open_threshold
    )
    scenario = drawn["scenario"]
    by_design = {
        f"{s}_by_design": sorted(scenario.loc[scenario["status"] == s, "uai"])
        for s in ("stopped", "never", "late")
    }
    truth["generated"] = {
        "seed": seed,
        "events": len(ev),
        "visits_drawn": len(drawn["visits"]),
        "scenario": drawn["scenario"]["status"].value_counts().to_dict(),
        **by_design,
        "unknown_school": UNKNOWN_SCHOOL,
        "jsonl_mapping": JSONL_MAPPING,
    }
    truth["malformed"] = broken
    path = out / "activity-truth.json"
    path.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return ActivityFiles(
        out, csvs, jsons, accounts, daily, path, len(ev), start, end,
        {"events": ev, "members": members, "accounts": drawn["accounts"], "schools": schools,
         "visits": drawn["visits"]},
    )  # fmt: skip
