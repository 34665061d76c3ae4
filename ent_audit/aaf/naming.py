"""Parse the names of AAF extraction files and archives.

Names are parsed from the right (``_<Kind>_<NNNN>.xml``, then the date, then the extraction
type) because the perimeter token may itself hold ``_`` and ``-``
(``FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml``, ``ENT2DVA-ENT16``). Everything left of
the type is kept as the perimeter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

from ent_audit.exceptions import NamingError

Extraction = Literal["complete", "delta"]

FIRST_DEGREE_KINDS = ("EtabEducNat", "Eleve", "PersRelEleve", "PersEducNat")
"""The four kinds a 1D extraction holds, in the order importers process them."""
SECOND_DEGREE_KINDS = ("MatiereEducNat", "MefEducNat")
"""Kinds only second-degree archives carry: recognised, then ignored with a note."""

_TYPES = {"complet": "complete", "delta": "delta"}
_KIND_BY_LOWER = {k.lower(): k for k in FIRST_DEGREE_KINDS + SECOND_DEGREE_KINDS}

FILE_FORM = (
    "<Perimetre-Projet>_<Complet|Delta>_<AAAAMMJJ>_"
    "<EtabEducNat|Eleve|PersRelEleve|PersEducNat>_<NNNN>.xml"
)
ARCHIVE_FORM = "<Perimetre-Projet>_<Complet|Delta>_<AAAAMMJJ>.tar.gz"

_FILE_RE = re.compile(
    r"^(?P<perimeter>.+?)_(?P<type>complet|delta)(?:_(?P<date>\d{8}))?"
    r"_(?P<kind>[a-z]+)_(?P<part>\d{4})\.xml$",
    re.IGNORECASE,
)
_ARCHIVE_RE = re.compile(
    r"^(?P<perimeter>.+?)_(?P<type>complet|delta)(?:_(?P<date>\d{8}))?(?:_(?P<time>\d{4,6}))?"
    r"\.(?:tar\.gz|tgz)$",
    re.IGNORECASE,
)


def _parse_date(raw: str | None, name: str, form: str) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        raise NamingError(
            name, f"{form} (horodatage {raw!r} n'est pas une date AAAAMMJJ)"
        ) from None


@dataclass(frozen=True, order=True)
class AAFName:
    """One extraction file: ``ENT1D_<perimeter>_<type>_<date>_<kind>_<part>.xml``."""

    perimeter: str
    extraction: Extraction
    date: dt.date | None
    kind: str
    part: int

    @property
    def first_degree(self) -> bool:
        return self.kind in FIRST_DEGREE_KINDS

    @property
    def filename(self) -> str:
        stamp = f"_{self.date:%Y%m%d}" if self.date else ""
        kind_type = "Complet" if self.extraction == "complete" else "Delta"
        return f"{self.perimeter}_{kind_type}{stamp}_{self.kind}_{self.part:04d}.xml"


@dataclass(frozen=True)
class ArchiveName:
    """One extraction archive: ``<perimeter>_<type>_<date>.tar.gz``."""

    perimeter: str
    extraction: Extraction
    date: dt.date | None

    @property
    def filename(self) -> str:
        stamp = f"_{self.date:%Y%m%d}" if self.date else ""
        kind_type = "Complet" if self.extraction == "complete" else "Delta"
        return f"{self.perimeter}_{kind_type}{stamp}.tar.gz"

    def file(self, kind: str, part: int = 0) -> AAFName:
        """The name of one part of one kind inside this archive."""
        return AAFName(self.perimeter, self.extraction, self.date, kind, part)


def parse_name(name: str | PurePath) -> AAFName:
    """Parse an extraction file name (directories are ignored).

    >>> parse_name("ENT1D_ENT2DVA-ENT16_Complet_20240916_Eleve_0003.xml").part
    3
    """
    base = PurePath(name).name
    m = _FILE_RE.match(base)
    if not m:
        raise NamingError(base, FILE_FORM)
    kind = _KIND_BY_LOWER.get(m["kind"].lower())
    if kind is None:
        raise NamingError(base, f"{FILE_FORM} (type de fichier {m['kind']!r} inconnu)")
    return AAFName(
        perimeter=m["perimeter"],
        extraction=_TYPES[m["type"].lower()],  # type: ignore[arg-type]
        date=_parse_date(m["date"], base, FILE_FORM),
        kind=kind,
        part=int(m["part"]),
    )


def parse_archive_name(name: str | PurePath) -> ArchiveName:
    """Parse an extraction archive name such as ``ENT1D_BESSIERES_Delta_20241007.tar.gz``."""
    base = PurePath(name).name
    m = _ARCHIVE_RE.match(base)
    if not m:
        raise NamingError(base, ARCHIVE_FORM)
    return ArchiveName(
        perimeter=m["perimeter"],
        extraction=_TYPES[m["type"].lower()],  # type: ignore[arg-type]
        date=_parse_date(m["date"], base, ARCHIVE_FORM),
    )


@dataclass(frozen=True)
class PartGroup:
    """All parts of one kind of one extraction: one logical file, read in part order."""

    perimeter: str
    extraction: Extraction
    date: dt.date | None
    kind: str
    parts: tuple[PurePath, ...]
    numbers: tuple[int, ...]
    missing: tuple[int, ...] = field(default=())
    """Part numbers absent between the first and the last one present."""


def group_parts(paths: Iterable[str | PurePath]) -> list[PartGroup]:
    """Group extraction files by (perimeter, type, date, kind), parts sorted by number.

    Raises :class:`NamingError` for the first name that does not parse, and for a part
    number given twice.
    """
    groups: dict[tuple, list[tuple[int, PurePath]]] = defaultdict(list)
    for p in paths:
        path = PurePath(p)
        n = parse_name(path)
        groups[(n.perimeter, n.extraction, n.date, n.kind)].append((n.part, path))
    out = []
    for (perimeter, extraction, date, kind), items in groups.items():
        items.sort(key=lambda t: t[0])
        numbers = [i for i, _ in items]
        if len(set(numbers)) != len(numbers):
            dup = sorted({i for i in numbers if numbers.count(i) > 1})
            raise NamingError(
                str(items[0][1].name), f"une seule partie par numéro (doublon: {dup})"
            )
        missing = tuple(sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers)))
        out.append(
            PartGroup(
                perimeter,
                extraction,
                date,
                kind,
                tuple(p for _, p in items),
                tuple(numbers),
                missing,
            )
        )
    order = {k: i for i, k in enumerate(FIRST_DEGREE_KINDS + SECOND_DEGREE_KINDS)}
    out.sort(key=lambda g: (g.perimeter, g.date or dt.date.min, g.extraction, order[g.kind]))
    return out
