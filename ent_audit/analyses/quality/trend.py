"""Trend: each audit's per-rule counts (counts only: nothing personal) recorded under its
extraction's date, so that an audit is compared with the latest earlier audited extraction.

The history is a JSON file, ``STORE/quality-trend.json`` by default (:data:`TREND_FILE`),
written atomically, 0600.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from ent_audit.analyses.quality.audit import AuditResult
from ent_audit.analyses.quality.catalogue import RULE_BY_ID
from ent_audit.io import write_json

TREND_FILE = "quality-trend.json"
"""The history's name in the store's folder."""


def load_trend(path: Path | str) -> dict:
    """The per-rule counts recorded by earlier audits (empty when none)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": 1, "perimeter": None, "extractions": {}}


def record_trend(path: Path | str, result: AuditResult, audited_at: dt.date) -> dict:
    """Record this audit's per-rule counts under its extraction date (replacing an earlier
    audit of the same extraction), atomically, 0600. Counts only: nothing personal."""
    path = Path(path)
    history = load_trend(path)
    if history.get("perimeter") not in (None, result.perimeter):
        history = {"version": 1, "perimeter": None, "extractions": {}}
    history["perimeter"] = result.perimeter
    history["extractions"][str(result.date)] = {
        "audited_at": audited_at.isoformat(),
        "counts": result.counts(),
    }
    history["extractions"] = dict(sorted(history["extractions"].items()))
    write_json(path, history)
    return history


def trend(result: AuditResult, history: dict) -> pd.DataFrame:
    """Each rule's count against the latest audited extraction before this one (empty frame
    when there is none): rule, title, severity, previous_date, previous, current, change."""
    columns = ["rule", "title", "severity", "previous_date", "previous", "current", "change"]
    if history.get("perimeter") != result.perimeter:
        return pd.DataFrame(columns=columns)
    earlier = [d for d in history.get("extractions", {}) if d < str(result.date)]
    if not earlier:
        return pd.DataFrame(columns=columns)
    previous_date = max(earlier)
    before = history["extractions"][previous_date]["counts"]
    rows = []
    for rule, now in result.counts().items():
        was = before.get(rule)
        change = None if now is None or was is None else now - was
        rows.append(
            {
                "rule": rule,
                "title": RULE_BY_ID[rule].title,
                "severity": RULE_BY_ID[rule].severity.value,
                "previous_date": previous_date,
                "previous": was,
                "current": now,
                "change": change,
            }
        )
    out = pd.DataFrame(rows, columns=columns)
    for c in ("previous", "current", "change"):
        out[c] = out[c].astype("Int64")
    return out
