"""What changed between extractions, and whether the Deltas told the truth.

Two sources, one vocabulary:

- ``compare(a, b)`` pairs the records of any two snapshots (two archives loaded with
  ``ent_audit.load``, two states) and lists what is added, removed and changed, values
  included: for a coordinator in JupyterLab. It is :mod:`ent_audit.aaf.diff`, re-exported.
- the journal readers below read the store's pseudonymous change journal
  (:mod:`ent_audit.store.journal`, ``Store.journal()``): changes per school, level and week,
  pupils who moved between schools, the attribute ranking, the reconciliation divergences.
  Reports use these: the journal holds no personal value.
"""

from __future__ import annotations

from ent_audit.aaf.diff import (
    CHANGED_COLUMNS,
    MULTI_SEPARATOR,
    Comparison,
    KindComparison,
    attribute_values,
    compare,
    compare_kind,
)

__all__ = [
    "CHANGED_COLUMNS",
    "MULTI_SEPARATOR",
    "Comparison",
    "KindComparison",
    "attribute_values",
    "compare",
    "compare_kind",
]
