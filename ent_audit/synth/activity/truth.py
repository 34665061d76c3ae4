"""The expected indicators, computed in plain pandas (independent of the DuckDB
implementation): ``activity-truth.json``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ent_audit.aaf import population
from ent_audit.synth.activity.model import APPLICATIONS, DEVICES, LOGIN, PROFILES, VISIT_GAP

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
