"""From the overdue workbench items to what ``ent-audit purge`` deletes, and the whole
workbench evaluated over a store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.analyses.retention.evaluation import (
    DETAIL_SEPARATOR,
    PRESENCE_COLUMNS,
    RetentionResult,
    evaluate,
)
from ent_audit.analyses.retention.inputs import read_accounts
from ent_audit.analyses.retention.rules import (
    PERSON_RULES,
    RULES,
    Convention,
    Place,
    RuleId,
    Settings,
)
from ent_audit.store import access
from ent_audit.store.purge import PurgePlan, inventory
from ent_audit.store.store import Store

# -- the purge ------------------------------------------------------------------------------


STUDENT_FRAME = schema.STUDENT.frame

ACCESS_JOURNAL = "access_journal"
"""Purge count key: lines of the access journal past their term (``store.access.KEEP_DAYS``)."""


def purge_plan(result: RetentionResult, files: pd.DataFrame | None = None) -> PurgePlan:
    """What ``ent-audit purge`` deletes: the overdue workbench items.

    Presence rows of people whose rule is overdue, the records in the live state of pupils
    whose destruction request is overdue, and overdue files. When the convention's end is
    overdue, everything the workbench holds goes.
    """
    over = result.overdue[result.overdue["place"] == str(Place.WORKBENCH)]
    people = over[over["rule"].isin([str(r) for r in PERSON_RULES])]
    counts = {str(r.id): 0 for r in RULES}
    for rule, n in people["rule"].value_counts().items():
        counts[str(rule)] = int(n)
    paths: list[str] = []
    categories: list[str] = []
    if files is not None and len(files):
        overdue_files = over[over["rule"] == str(RuleId.OLD_COPIES)]["detail"]
        chosen = {str(d).split(DETAIL_SEPARATOR, 1)[1] for d in overdue_files}
        sel = files[files["path"].astype(str).isin(chosen)]
        paths, categories = list(sel["path"].astype(str)), list(sel["category"].astype(str))
        counts[str(RuleId.OLD_COPIES)] = len(paths)
    everything = bool((over["rule"] == str(RuleId.CONVENTION_END)).any())
    if everything:
        counts[str(RuleId.CONVENTION_END)] = 1
    departed = people["event_date"].max() if len(people) else pd.NaT
    if len(result.requested):  # a pupil still in the state is in every archive
        departed = pd.Timestamp(result.as_of + dt.timedelta(days=1))
    return PurgePlan(
        as_of=result.as_of,
        pseudonyms=tuple(
            zip(people["pseudonym"].astype(str), people["kind"].astype(str), strict=True)
        ),
        jointures=tuple(result.requested["jointure"].astype(str)),
        paths=tuple(paths),
        categories=tuple(categories),
        counts=counts,
        holds_before=None if pd.isna(departed) else departed.date(),
        everything=everything,
    )


def workbench(
    store: Store,
    as_of: dt.date,
    *,
    archives: Path | str | None = None,
    outputs: Path | str | None = None,
    accounts: pd.DataFrame | Path | str | None = None,
    account_columns: Mapping[str, str] | None = None,
    requests: pd.DataFrame | None = None,
    convention: Convention | None = None,
    settings: Settings | None = None,
    horizon_days: int = 30,
) -> tuple[RetentionResult, PurgePlan]:
    """Every rule over a store (its presence history, live state and files), the fetch
    destination and the outputs folder: what the report shows and what the purge deletes.

    ``accounts``: the provider's export as read by :func:`read_accounts`, or its path (read
    with ``account_columns`` inside, pseudonymised and released before the presence history
    is read: see :func:`evaluate`)."""
    files = inventory(store, archives, outputs)
    history = store.history()
    has_state = store.current() is not None
    state_jointures = None
    if has_state and requests is not None:
        state_jointures = store.jointures([STUDENT_FRAME])[STUDENT_FRAME]
    if isinstance(accounts, str | Path):
        path = accounts

        def accounts() -> pd.DataFrame:
            return read_accounts(path, account_columns)

    result = evaluate(
        as_of,
        presence=lambda: store.presence(columns=PRESENCE_COLUMNS, categorical=("kind", "uai")),
        key=store.key,
        accounts=accounts,
        requests=requests,
        convention=convention,
        files=files,
        state_jointures=state_jointures,
        first_date=history["date"].min().date() if len(history) else None,
        settings=settings,
        horizon_days=horizon_days,
    )
    plan = purge_plan(result, files)
    # The roster explorer's access journal (who saw which school unmasked) has its own term.
    journal = len(access.overdue(store.path, as_of))
    return result, replace(plan, counts={**plan.counts, ACCESS_JOURNAL: journal})
