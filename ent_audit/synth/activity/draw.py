"""Drawing a school year of activity from a seed: people, schools' scenarios, accounts,
visits and events (numpy only)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ent_audit.aaf import population
from ent_audit.synth.activity.model import (
    ACTIVATION,
    ACTIVATION_DELAY,
    APPLICATIONS,
    DEVICE_MIX,
    HOURS,
    LOGIN,
    PROFILES,
    SCENARIO,
    UNKNOWN_SCHOOL,
    VISIT_RATE,
    calendar,
)

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
