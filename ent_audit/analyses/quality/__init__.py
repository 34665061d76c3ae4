"""Data-quality audit of one extraction: a catalogue of rules, each a vectorised check.

One module per job: :mod:`.context` (the frames a check sees, what checks share, finding
rows), :mod:`.rules` (the checks), :mod:`.catalogue` (the rules as data: :data:`RULES`),
:mod:`.audit` (:func:`audit`, thresholds, perimeter, scores, :func:`checks`), :mod:`.trend`
(this audit against the report's earlier runs, by pseudonym) and :mod:`.present` (what
reports show and write).
Everything published goes through :func:`published_findings` (keyed pseudonyms, masked
values).
"""

# ``X as X``: public beside ``__all__`` (kept as it was before the split): labels, colours and
# defaults the report notebook and callers tuning the audit use.
from ent_audit.analyses.quality.audit import (
    DEFAULT_THRESHOLDS as DEFAULT_THRESHOLDS,
)
from ent_audit.analyses.quality.audit import (
    FINDING_COLUMNS,
    SCORE_FORMULA,
    AuditResult,
    Threshold,
    audit,
    audit_store,
    checks,
    read_perimeter,
    resolve_thresholds,
)
from ent_audit.analyses.quality.catalogue import (
    CORRECTOR_LABELS as CORRECTOR_LABELS,
)
from ent_audit.analyses.quality.catalogue import (
    RULE_BY_ID,
    RULES,
    Corrector,
    Rule,
    Severity,
    catalogue,
)
from ent_audit.analyses.quality.catalogue import (
    SEVERITY_LABELS as SEVERITY_LABELS,
)
from ent_audit.analyses.quality.catalogue import (
    SEVERITY_RANK as SEVERITY_RANK,
)
from ent_audit.analyses.quality.catalogue import (
    AAFKind as AAFKind,
)
from ent_audit.analyses.quality.catalogue import (
    Population as Population,
)
from ent_audit.analyses.quality.catalogue import (
    ValuePolicy as ValuePolicy,
)
from ent_audit.analyses.quality.present import (
    FINDING_HEADERS as FINDING_HEADERS,
)
from ent_audit.analyses.quality.present import (
    LABELS as LABELS,
)
from ent_audit.analyses.quality.present import (
    RULE_TABLE_LABELS as RULE_TABLE_LABELS,
)
from ent_audit.analyses.quality.present import (
    SEVERITY_COLOURS as SEVERITY_COLOURS,
)
from ent_audit.analyses.quality.present import (
    STATUS_LABELS as STATUS_LABELS,
)
from ent_audit.analyses.quality.present import (
    blocking_share,
    catalogue_table,
    circonscription_table,
    clean_circonscriptions,
    context_note,
    explanations,
    figures,
    headline,
    outputs_note,
    published_findings,
    read_findings_csv,
    rule_table,
    thresholds_note,
    worst_schools,
    write_clear_csvs,
    write_findings_csv,
    write_outputs,
)
from ent_audit.analyses.quality.trend import (
    TREND_LABELS as TREND_LABELS,
)
from ent_audit.analyses.quality.trend import Trend, trend, trend_note, trend_table
from ent_audit.exceptions import QualityError

__all__ = [
    "FINDING_COLUMNS",
    "RULES",
    "RULE_BY_ID",
    "SCORE_FORMULA",
    "AuditResult",
    "Corrector",
    "QualityError",
    "Rule",
    "Severity",
    "Threshold",
    "Trend",
    "audit",
    "audit_store",
    "blocking_share",
    "catalogue",
    "catalogue_table",
    "checks",
    "circonscription_table",
    "clean_circonscriptions",
    "context_note",
    "explanations",
    "figures",
    "headline",
    "outputs_note",
    "published_findings",
    "read_findings_csv",
    "read_perimeter",
    "resolve_thresholds",
    "rule_table",
    "thresholds_note",
    "trend",
    "trend_note",
    "trend_table",
    "worst_schools",
    "write_clear_csvs",
    "write_findings_csv",
    "write_outputs",
]
