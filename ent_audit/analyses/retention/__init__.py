"""Retention: which personal data has outlived the convention's deadlines, as of a date.

The convention (art. 4, 8, 9 and Annexe 1; table in ``design.md``) fixes when personal data
must be destroyed. Each rule is a record (:data:`RULES`: id, French title, legal reference, how
its deadline is computed) evaluated ``as_of`` a date over:

- the store's presence history (who was where, from when to when, pseudonymous);
- the provider's account export (read by the pilot console's reader,
  :func:`ent_audit.analyses.activity.inputs.read_accounts`), to find accounts the provider
  kept too long;
- the destruction requests (CSV: jointure, request date, done date);
- the convention's dates (signed, planned end, termination);
- the workbench's own files (:func:`ent_audit.store.purge.inventory`): old copies of personal
  data, leftover temporary folders, raw archives, report outputs and findings CSVs.

A **deadline** is the last day the data may still exist: an item is overdue from the day after
(``as_of > deadline``), upcoming when its deadline falls within ``horizon_days``. Items carry
keyed pseudonyms only; the clear jointures of destruction requests stay in memory, for the
purge. :func:`purge_plan` turns the overdue workbench items into what ``ent-audit purge``
deletes (:mod:`ent_audit.store.purge` applies it).

One module per job: :mod:`.rules` (the rules, places, statuses, settings and the
convention's calendar), :mod:`.inputs` (the provider's account export, read by the pilot
console's one reader, and the destruction requests), :mod:`.evaluation` (:func:`evaluate`,
:class:`RetentionResult`), :mod:`.purge` (:func:`purge_plan`, :func:`workbench`) and
:mod:`.presentation` (what the report shows).
"""

from __future__ import annotations

from ent_audit.analyses.retention.evaluation import ITEM_COLUMNS, RetentionResult, evaluate, persons
from ent_audit.analyses.retention.inputs import (
    ACCOUNT_COLUMNS,
    REQUEST_COLUMNS,
    read_accounts,
    read_requests,
)
from ent_audit.analyses.retention.presentation import (
    KIND_LABELS,
    LABELS,
    findings,
    oldest,
    plan_text,
    rules_table,
    timeline,
    verdict,
)
from ent_audit.analyses.retention.purge import ACCESS_JOURNAL, purge_plan, workbench
from ent_audit.analyses.retention.rules import (
    PERSON_RULE,
    PERSON_RULES,
    PLACE_LABELS,
    RULE_BY_ID,
    RULES,
    SCHOOL_YEAR_END,
    STATUS_LABELS,
    Convention,
    Place,
    Rule,
    RuleId,
    Settings,
    Status,
    add_months,
    as_of_date,
    end_of_year,
)

__all__ = [
    "ACCESS_JOURNAL",
    "ACCOUNT_COLUMNS",
    "ITEM_COLUMNS",
    "KIND_LABELS",
    "LABELS",
    "PERSON_RULE",
    "PERSON_RULES",
    "PLACE_LABELS",
    "REQUEST_COLUMNS",
    "RULES",
    "RULE_BY_ID",
    "SCHOOL_YEAR_END",
    "STATUS_LABELS",
    "Convention",
    "Place",
    "RetentionResult",
    "Rule",
    "RuleId",
    "Settings",
    "Status",
    "add_months",
    "as_of_date",
    "end_of_year",
    "evaluate",
    "findings",
    "oldest",
    "persons",
    "plan_text",
    "purge_plan",
    "read_accounts",
    "read_requests",
    "rules_table",
    "timeline",
    "verdict",
    "workbench",
]
