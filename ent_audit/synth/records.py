"""What the generator writes: the ``Record`` type, attribute names taken from the schema tables,
the extractions and the perimeter, and the written form of dates and UAI keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from ent_audit.aaf import naming, schema

Op = Literal["add", "modify", "delete"]

KINDS = naming.FIRST_DEGREE_KINDS
"""The four kinds, in the order importers process them."""

# Attribute names by column, straight from the schema tables (never retyped here).
ST = SimpleNamespace(**{f.column: f.attr for f in schema.STRUCTURE.fields})
EL = SimpleNamespace(**{f.column: f.attr for f in schema.STUDENT.fields})
PR = SimpleNamespace(**{f.column: f.attr for f in schema.GUARDIAN.fields})
PE = SimpleNamespace(**{f.column: f.attr for f in schema.STAFF.fields})

UAI_KEYS = schema.UAI_KEYS
"""Check letters of a UAI: ``UAI_KEYS[n % 23]``, n = the 7 leading digits."""


def uai_key(digits: str) -> str:
    """The check letter of a UAI whose first 7 characters are ``digits``."""
    return UAI_KEYS[int(digits) % 23]


@dataclass(slots=True)
class Record:
    """One AAF record as the generator means it.

    ``attrs`` maps AAF attribute names to their values in order; ``None`` is written as an
    empty ``<value/>``. A delete record has no attributes. Records of the two complete
    extractions that did not change are the same objects.
    """

    op: Op
    id: str
    attrs: dict[str, list[str | None]]


@dataclass
class Extraction:
    """One extraction: its archive name and its records by kind name."""

    name: naming.ArchiveName
    records: dict[str, list[Record]]


@dataclass
class Perimeter:
    """The generated extractions in date order, and the ground truth (``truth.json``)."""

    extractions: list[Extraction]
    truth: dict


def date_text(d: dt.date) -> str:
    """``dd/mm/yyyy`` (``schema.DATE_FORMAT``), without strftime's per-call cost."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


_FIELD_COLUMNS = {
    k: tuple((f.attr, f.column) for f in spec.fields) for k, spec in schema.KINDS.items()
}


def new_record(kind: schema.Kind, jointure: str, values: Mapping[str, Any]) -> Record:
    """A complete-file record with every attribute of ``kind``, in schema order.

    ``values`` maps columns to a string, a list of strings, or None/[] (written ``<value/>``).
    """
    attrs: dict[str, list[str | None]] = {}
    for attr, column in _FIELD_COLUMNS[kind.name]:
        v = values.get(column)
        attrs[attr] = [v] if v.__class__ is str else list(v) if v else [None]
    return Record("add", jointure, attrs)
