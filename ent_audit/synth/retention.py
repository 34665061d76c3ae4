"""The provider's side of a generated perimeter: an account export and destruction requests.

:func:`write_inputs` reads the perimeter the generator produced and writes, beside it:

- ``comptes.csv``: the provider's account export, in the one format
  (:func:`ent_audit.synth.accounts.write_accounts`): one account per person of the last
  extraction, plus
  accounts the provider *forgot to delete*: some of the pupils who left in the Delta, some of
  their guardians, and a few staff accounts of people no extraction ever had;
- ``demandes.csv``: destruction requests (``jointure;date_demande;date_realisation``) for some
  pupils, pending or done, on dates that exercise the calendar (30 November, 31 January);
- ``retention-truth.json``: every forgotten account and request with its rule, event date and
  deadline, so the retention checks are scored exactly.

Same perimeter and seed, same files.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.population import Profile
from ent_audit.synth import Perimeter
from ent_audit.synth.accounts import write_accounts

ACCOUNTS_FILE = "comptes.csv"
REQUESTS_FILE = "demandes.csv"
TRUTH_FILE = "retention-truth.json"
REQUEST_HEADER = ("jointure", "date_demande", "date_realisation")
FORGOTTEN_SHARE = 0.5
"""Share of the departed pupils (and of their guardians) whose account the provider keeps."""
GHOST_STAFF = 3
"""Staff accounts of people absent from every extraction (left before the store began)."""

_ST = {f.column: f.attr for f in schema.STRUCTURE.fields}
_PE = {f.column: f.attr for f in schema.STAFF.fields}
ATTACH = "ENTPersonStructRattach"


@dataclass(frozen=True)
class RetentionInputs:
    accounts: Path
    requests: Path
    truth: Path


def _months(day: dt.date, n: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + n
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _first(rec, attr: str) -> str | None:
    values = rec.attrs.get(attr) or [None]
    return values[0]


def write_inputs(perimeter: Perimeter, out: Path | str, *, seed: int = 0) -> RetentionInputs:
    """Write the account export, the requests and their truth into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 13])
    first, last = perimeter.extractions[0], perimeter.extractions[-1]
    start = first.name.date
    uai = {}
    for e in perimeter.extractions:
        for r in e.records.get("EtabEducNat", []):
            if r.op != "delete":
                uai[r.id] = _first(r, _ST["uai"])

    def account(rec, profile: Profile, activated: bool) -> list:
        school = uai.get(_first(rec, ATTACH) or "", "") or ""
        on = start + dt.timedelta(days=int(rng.integers(0, 30)))
        login = on + dt.timedelta(days=int(rng.integers(0, 40)))
        return [rec.id, profile, school, activated, on if activated else None,
                login if activated else None]  # fmt: skip

    rows: list[list] = []
    for rec in last.records["Eleve"]:
        rows.append(account(rec, Profile.PUPIL, rng.random() < 0.6))
    for rec in last.records["PersRelEleve"]:
        rows.append(account(rec, Profile.GUARDIAN, rng.random() < 0.4))
    for rec in last.records["PersEducNat"]:
        teacher = _first(rec, _PE["is_teacher"]) == "O"
        profile = Profile.TEACHER if teacher else Profile.OTHER_STAFF
        rows.append(account(rec, profile, rng.random() < 0.8))

    # Accounts of people who left, which the provider forgot.
    delta = perimeter.truth["delta"]
    departed = dt.date.fromisoformat(
        next(e["date"] for e in perimeter.truth["extractions"] if e["archive"] == delta["archive"])
    )
    first_records = {k: {r.id: r for r in first.records[k]} for k in ("Eleve", "PersRelEleve")}
    forgotten = []
    for k, d in enumerate(delta["departures"]):
        if k == 0 or rng.random() < FORGOTTEN_SHARE:  # at least one, whatever the size
            rec = first_records["Eleve"][d["jointure"]]
            rows.append(account(rec, Profile.PUPIL, True))
            forgotten.append(_item(d["jointure"], "Eleve", "pupil_left", departed))
            for g in d["guardians_deleted"]:
                if (k == 0 or rng.random() < FORGOTTEN_SHARE) and not any(
                    f["jointure"] == g for f in forgotten
                ):
                    rows.append(account(first_records["PersRelEleve"][g], Profile.GUARDIAN, True))
                    forgotten.append(_item(g, "PersRelEleve", "guardian_orphaned", departed))
    known = {r.id for e in perimeter.extractions for k in e.records.values() for r in k}
    ghost = 9_900_000
    for _ in range(GHOST_STAFF):
        while str(ghost) in known:
            ghost += 1
        rows.append([str(ghost), Profile.TEACHER, "", True, None, None])
        forgotten.append(_item(str(ghost), "PersEducNat", "staff_left", start, unknown=True))
        ghost += 1
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    frame = pd.DataFrame(
        rows, columns=["jointure", "profile", "uai", "activated", "activation", "last_login"]
    )
    for c in ("activation", "last_login"):
        frame[c] = pd.to_datetime(frame[c])
    accounts = write_accounts(frame, out / ACCOUNTS_FILE)

    # Destruction requests: pupils of the last extraction, calendar edge dates first.
    pupils = sorted(r.id for r in last.records["Eleve"])
    n = max(4, round(0.003 * len(pupils)))
    chosen = [
        pupils[i] for i in sorted(rng.choice(len(pupils), size=min(n, len(pupils)), replace=False))
    ]
    fixed = [dt.date(start.year, 11, 30), dt.date(start.year + 1, 1, 31)]
    requests = []
    for k, j in enumerate(chosen):
        asked = (
            fixed[k] if k < len(fixed) else start + dt.timedelta(days=int(rng.integers(-30, 150)))
        )
        done = None
        if k >= len(fixed) and rng.random() < 0.4:
            done = asked + dt.timedelta(days=int(rng.integers(5, 80)))
        requests.append(
            {
                "jointure": j,
                "request_date": asked.isoformat(),
                "done_date": done.isoformat() if done else None,
                "deadline": _months(asked, 3).isoformat(),
            }
        )
    path = out / REQUESTS_FILE
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        w.writerow(REQUEST_HEADER)
        for r in requests:
            w.writerow([r["jointure"], r["request_date"], r["done_date"] or ""])
    truth = out / TRUTH_FILE
    truth.write_text(
        json.dumps(
            {"forgotten_accounts": forgotten, "requests": requests, "departed": str(departed)},
            ensure_ascii=False,
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    return RetentionInputs(accounts, path, truth)


def _item(jointure: str, kind: str, rule: str, event: dt.date, unknown: bool = False) -> dict:
    deadline = event if rule == "staff_left" else dt.date(event.year, 12, 31)
    return {
        "jointure": jointure,
        "kind": kind,
        "rule": rule,
        "event_date": event.isoformat(),
        "deadline": deadline.isoformat(),
        "unknown_to_store": unknown,
    }
