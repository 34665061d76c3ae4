"""Tiny hand-written AAF fixtures.

Quirks of real files these fixtures reproduce (aaf-format.md), each used by a test:
- encodings: UTF-8 with declaration, ISO-8859-15 with declaration, no declaration at all;
- CRLF line ends; entities (``&amp;``, ``&apos;``) in values;
- ``<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">`` naming a DTD that is not there;
- header comments carrying ``versionAF``, ``versionSDET``, ``codeAcademieExport``, ``degre``,
  ``dateGenerationExport``;
- ``<value/>`` and ``<value></value>`` meaning "no value"; repeated ``<value>`` for multi-valued;
- ``identifier/id`` different from the jointure;
- delta files: ``addRequest``, ``modifyRequest`` with ``modification operation="replace"``,
  ``deleteRequest`` with only operationalAttributes and identifier, in any order;
- the malformed official delta line ``<modification name="…"><value/></attr>``;
- LDAP aliases ``sn``, ``givenName``, ``personalTitle``, ``mail``;
- ``$``-separated values: classes (5 fields), guardians (``id$code``), functions, addresses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

DOCTYPE = '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">'
CATEGORY = {"EtabEducNat": "categorieStructure"}

Values = str | None | Sequence[str | None]


def _values(v: Values) -> str:
    vals = [v] if v is None or isinstance(v, str) else list(v)
    return "".join(
        "<value/>" if x is None else f"<value>{escape(x, {chr(39): '&apos;'})}</value>"
        for x in vals
    )


def record(kind: str, rid: str, attrs: Mapping[str, Values] | None = None, op: str = "add") -> str:
    """One AAF record as real files write it."""
    cat = CATEGORY.get(kind, "categoriePersonne")
    head = (
        f'<operationalAttributes><attr name="{cat}"><value>{kind}</value></attr>'
        f"</operationalAttributes>\n  <identifier><id>{rid}</id></identifier>\n"
    )
    if op == "delete":
        return f"<deleteRequest>\n  {head}</deleteRequest>\n"
    if op == "modify":
        body = "".join(
            f'    <modification name="{n}" operation="replace">{_values(v)}</modification>\n'
            for n, v in (attrs or {}).items()
        )
        return f"<modifyRequest>\n  {head}  <modifications>\n{body}  </modifications>\n</modifyRequest>\n"
    body = "".join(f'    <attr name="{n}">{_values(v)}</attr>\n' for n, v in (attrs or {}).items())
    return f"<addRequest>\n  {head}  <attributes>\n{body}  </attributes>\n</addRequest>\n"


def document(
    records: Sequence[str],
    *,
    encoding: str | None = "UTF-8",
    crlf: bool = False,
    comments: Sequence[str] = ('versionAF="AAF-VE1301"',),
    doctype: bool = True,
) -> bytes:
    """A whole file; ``encoding=None`` writes no XML declaration (UTF-8 then)."""
    lines = []
    if encoding:
        lines.append(f'<?xml version="1.0" encoding="{encoding}"?>')
    if doctype:
        lines.append(DOCTYPE)
    lines.append("<ficAlimMENESR>")
    lines += [f"<!-- {c} -->" for c in comments]
    text = "\n".join(lines) + "\n" + "".join(records) + "</ficAlimMENESR>\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode(encoding or "UTF-8")


@pytest.fixture
def write(tmp_path: Path):
    """Write a fixture file under its AAF name and return its path."""

    def _write(name: str, data: bytes | str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    return _write


SCHOOL = {
    "ENTStructureJointure": "100",
    "ENTStructureUAI": "0310036W",
    "ENTStructureNomCourant": "ECOLE ELEMENTAIRE LOUISE MICHEL$BESSIERES",
    "ENTStructureTypeStruct": "ECOLE",
    "ENTEcoleCirconscription": "Fronton",
    "ENTEcoleCommune": "Bessières",
    "ENTStructureTelephone": "05 61 00 00 00",
}


def pupil(
    jointure: str,
    *,
    level: str = "CE1",
    cycle: str = "CYCLE 2",
    birth: str = "12/03/2019",
    guardians: Sequence[str] = ("300$10",),
    classes: Sequence[str] = ("100$$$C1$CE1 A",),
    **extra: Values,
) -> dict[str, Values]:
    attrs: dict[str, Values] = {
        "ENTPersonJointure": jointure,
        "ENTEleveINE": f"0{jointure:0>9}A",
        "ENTPersonDateNaissance": birth,
        "ENTPersonNom": "Testeur",
        "ENTPersonPrenom": "Zoé",
        "ENTPersonStructRattach": "100",
        "ENTEleveAutoriteParentale": list(guardians),
        "ENTEleveNiveau": level,
        "ENTEleveCycle": cycle,
        "ENTPersonClasses": list(classes),
    }
    attrs.update(extra)
    return attrs


# -- what `make check` leaves out ------------------------------------------------------------

SLOW_FIXTURES = {
    "server",  # a real OpenSSH sshd
    "runs",  # report runs: real kernels
    "quality_runs",
    "generated",  # generated départements audited several ways
    "clean",  # generated départements read back whole
    "defective",
}
"""Tests using these fixtures start a server, a kernel or a browser, or generate a département:
they are ``slow`` without having to say so one by one (``@pytest.mark.slow`` marks others)."""


LONGEST_FIRST = (
    "tests/test_bench_all.py",
    "tests/reports/test_wheel.py",
    "tests/reports/test_every_report.py",
    "tests/reports/test_runner.py",
    "tests/reports/test_delta_report.py",
    "tests/reports/test_activity_report.py",
)
"""The files that take a minute or more: collected first, so that pytest-xdist (which hands
files out in collection order) starts them first instead of leaving one worker alone with
them at the end."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
