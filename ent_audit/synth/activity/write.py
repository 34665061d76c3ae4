"""The entry point: a perimeter's archive in, the provider's three files and their truth out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ent_audit.aaf import population
from ent_audit.synth.accounts import write_accounts
from ent_audit.synth.activity.draw import generate
from ent_audit.synth.activity.formats import ActivityFiles, daily_frame, write_events
from ent_audit.synth.activity.model import JSONL_MAPPING, UNKNOWN_SCHOOL
from ent_audit.synth.activity.truth import reference_indicators


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
