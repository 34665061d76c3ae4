"""Synthetic first-degree perimeter, written in the real AAF format, with injectable defects.

:func:`generate` builds, from a seed, a Haute-Garonne-like département: schools spread over
communes and circonscriptions, their IEN offices and the DSDEN, pupils in classes, their
guardians (families share them), teachers, directors and other staff. It returns three
extractions in date order: a ``Complet``, a ``Delta`` some weeks later (arrivals, departures,
class and guardian changes) and a later ``Complet`` equal to the state after the delta, plus
the ground truth of what it did. :func:`write` puts them on disk as the academy ships them.

Defects (:data:`DEFECTS`) are injected into the first ``Complet`` at chosen rates and carried
unchanged into the later one; the delta never touches a defect's records, and every record is
the victim of at most one defect, so a checker can be scored against ``truth.json`` exactly.

Attribute names always come from :mod:`ent_audit.aaf.schema`; file and archive names from
:mod:`ent_audit.aaf.naming`.

One module per job:

- ``draws``: seeded random streams, id pools; ``records``: the ``Record`` type and written forms;
- ``names``: reference lists and labels, draws of names, addresses, phones and mails;
- ``people``: pupil, guardian and staff records; ``model``: schools, classes, families, posts;
- ``delta``: what changes between the Complet, the Delta and the later Complet;
- ``inject``: the rules of injection; ``defects``: the named defects and their truth;
- ``xml``: XML files, parts, encodings, archives; ``generate``: ``generate`` and ``write``.

``truth.json`` (= ``Perimeter.truth``) holds:

- ``config``: the arguments, the school year, the injected defects (rate, count, French
  description), where defects live (``defect_archives``), the structure types used;
- ``extractions``: archive name, type and date of each extraction, in date order;
- ``counts``: ``{kind: {archive name: number of records}}``;
- ``defects``: ``{defect name: [{kind, jointure, uai, attribute, detail[, related]}]}`` for
  every registered defect (empty list when not injected). ``jointure`` is the victim's
  jointure; ``uai`` the school concerned as written in the first Complet (or null);
  ``related`` the other records involved (first holder of a duplicated INE, the two
  directors, the absent guardian, the other school…);
- ``delta``: arrivals, departures, class changes and guardian changes, and per kind the
  jointures the Delta adds, modifies and deletes.
"""

from ent_audit.synth.defects import DEFECTS
from ent_audit.synth.generate import SynthResult, generate, write, write_perimeter
from ent_audit.synth.inject import Defect, InjectContext
from ent_audit.synth.records import Extraction, Perimeter, Record

__all__ = [
    "DEFECTS",
    "Defect",
    "Extraction",
    "InjectContext",
    "Perimeter",
    "Record",
    "SynthResult",
    "generate",
    "write",
    "write_perimeter",
]
