"""The data-quality audit's public import path (``ent_audit.quality.audit``), kept stable:
the audit lives in the package :mod:`ent_audit.analyses.quality`."""

from ent_audit.analyses.quality import *  # noqa: F403
from ent_audit.analyses.quality import __all__  # noqa: F401
