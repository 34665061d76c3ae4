"""Published activity summaries of drawn académies, for the national tests."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from pathlib import Path

import pandas as pd

from ent_audit.analyses import national
from ent_audit.synth import national as synth

PERIOD = (dt.date(2026, 9, 1), dt.date(2027, 7, 3))
STATE = dt.date(2026, 9, 14)


def publish(
    folder: Path, index: int, *, schools: int = 120, period=PERIOD, academie: str = "", **kw
) -> Path:
    """``folder`` holding the publication of drawn académie ``index``."""
    f = synth.academie(index, schools=schools, seed=7, **kw)
    table = national.publication(
        f.profiles, f.schools, academie=academie or f.academie, store=f"store{index:011d}",
        period=period, state_date=STATE,
    )  # fmt: skip
    national.write_publication(table, folder)
    return folder


def publications(tmp: Path, n: int = 3, **kw) -> list[Path]:
    return [publish(tmp / f"acad{i}", i, **kw) for i in range(n)]


# -- a store over two départements -------------------------------------------------------------

SECOND = "032"
"""The département the generated perimeter's last circonscription is moved to."""


def _relabel(archive: Path, out: Path, mapping: dict[str, str]) -> Path:
    """A copy of ``archive`` (same name, in ``out``) with each UAI of ``mapping`` replaced."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / archive.name
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            if not member.isfile():
                dst.addfile(member)
                continue
            data = src.extractfile(member).read()
            for old, new in mapping.items():
                data = data.replace(old.encode(), new.encode())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return target


def two_departements(tmp: Path, *, events: int = 20_000) -> dict:
    """A generated perimeter of three circonscriptions whose last one's schools are moved to
    département :data:`SECOND` (their UAI relabelled in the archive): some guardians have
    children in both départements, others in two circonscriptions of the first; a term of
    activity where one guardian of the first kind visits in both départements; a store holding
    the state and the imported log; the pandas truth per département (the generator's reference computation, départements as places)."""
    from ent_audit.aaf import population
    from ent_audit.aaf.snapshot import load
    from ent_audit.analyses import activity
    from ent_audit.store.store import Store
    from ent_audit.synth import activity as synth_activity
    from ent_audit.synth import write
    from ent_audit.synth.records import uai_key

    perimeter = write(tmp / "synth", seed=3, schools=96, pupils=4000)
    original = perimeter.archives[-1]
    sch = population.schools(load(original))[["uai", "circonscription"]].astype(str)
    last = sorted(sch["circonscription"].unique())[-1]
    moved = sch.loc[sch["circonscription"] == last, "uai"]
    mapping = {u: SECOND + u[3:7] + uai_key(SECOND + u[3:7]) for u in moved}
    archive = _relabel(original, tmp / "two", mapping)
    snap = load(archive)
    members = population.memberships(snap)
    schools = population.schools(snap)[["uai", "name", "circonscription"]].astype(str)
    drawn = synth_activity.generate(members, schools, seed=3, start=START_2, end=END_2,
                                    events=events)  # fmt: skip
    ev = drawn["events"]

    # a guardian with children in both départements visits once in each (3 a.m.: no other
    # visit of theirs is near)
    at = population.at_schools(members)
    at = at.assign(dep=at["uai"].astype(str).str[:3])
    spread = at.groupby(["kind", "jointure"], observed=True)["dep"].nunique()
    kind, user = sorted(spread[spread > 1].index)[0]
    theirs = at[(at["kind"] == kind) & (at["jointure"] == user)].sort_values("uai")
    home, other = theirs.drop_duplicates("dep")["uai"].astype(str).iloc[:2]
    code = synth_activity.people(members).set_index("jointure").loc[user, "profile"]
    day = pd.Timestamp(START_2) + pd.Timedelta(hours=3)
    extra = pd.DataFrame(
        {
            "ts": [day + pd.Timedelta(days=9), day + pd.Timedelta(days=23)],
            "user": user, "kind": kind, "profile": code, "uai": [home, other],
            "event": synth_activity.LOGIN, "application": -1, "device": 0,
        }
    )  # fmt: skip
    extra = extra.astype({c: ev[c].dtype for c in extra.columns if c in ev})
    ev = pd.concat([ev, extra], ignore_index=True).sort_values("ts", kind="stable")
    ev = ev.reset_index(drop=True)

    logs = tmp / "logs"
    logs.mkdir()
    csvs, _, _ = synth_activity.write_events(ev, logs, jsonl=False)
    accounts = synth_activity.write_accounts(drawn["accounts"], logs / "comptes.csv")
    # départements as the reference's places (schools' and memberships' circonscription)
    by_dep = schools.assign(circonscription=schools["uai"].str[:3])
    members_by_dep = members.assign(circonscription=members["uai"].astype(str).str[:3])
    truth = synth_activity.reference_indicators(
        ev, members_by_dep, drawn["accounts"], by_dep, START_2, END_2
    )
    store = tmp / "store"
    Store(store).ingest([archive])
    activity.import_logs(csvs, store)
    return {
        "store": store,
        "accounts": accounts,
        "truth": truth,
        "person": (str(kind), str(user)),
        "departements": (home[:3], other[:3]),
    }


START_2, END_2 = dt.date(2026, 9, 1), dt.date(2026, 12, 18)
