"""AAF XML files, parts, encodings and tar.gz archives, as the academy ships them.

One ``tar.gz`` per extraction, one XML file per kind and part, mixed encodings and line ends,
header comments, DOCTYPE, escaped values. File and archive names come from
:mod:`ent_audit.aaf.naming`. Byte-identical for identical records: tar and gzip times are the
extraction date.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ent_audit.aaf import schema
from ent_audit.synth.records import KINDS, Extraction, Record, date_text

GZIP_LEVEL = 6


@dataclass(frozen=True)
class _FileStyle:
    """How one kind's files are written (real files vary across kinds)."""

    encoding: str
    declaration: bool
    newline: str
    empty: str


FILE_STYLES: dict[str, _FileStyle] = {
    "EtabEducNat": _FileStyle("ISO-8859-15", True, "\r\n", "<value/>"),
    "Eleve": _FileStyle("UTF-8", True, "\n", "<value/>"),
    "PersRelEleve": _FileStyle("UTF-8", False, "\r\n", "<value/>"),
    "PersEducNat": _FileStyle("ISO-8859-15", True, "\n", "<value></value>"),
}
"""Encoding, XML declaration, line ends and empty-value form per kind."""

VERSION_AF = "AAF-VE1301"
VERSION_SDET = "V6.5"
ACADEMY_CODE = "16"


def _escape(v: str) -> str:
    if "&" in v or "<" in v or ">" in v or "'" in v or '"' in v:
        return (
            v.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace("'", "&apos;")
            .replace('"', "&quot;")
        )
    return v


_TAGS = {
    "add": ("addRequest", "attributes", "attr name", "</attr>"),
    "modify": ("modifyRequest", "modifications", "modification name", "</modification>"),
}


class _Renderer:
    """Renders the records of one kind as XML bytes, with string templates."""

    def __init__(self, kind: str) -> None:
        spec = schema.KINDS[kind]
        style = FILE_STYLES[kind]
        self.nl = nl = style.newline
        self.encoding = style.encoding
        self.declaration = style.declaration
        self.empty = style.empty
        self.operational = (
            f'  <operationalAttributes><attr name="{spec.category_attr}">'
            f"<value>{spec.name}</value></attr></operationalAttributes>{nl}"
        )
        self._open: dict[str, dict[str, str]] = {"add": {}, "modify": {}}

    def header(self, date: dt.date) -> bytes:
        nl = self.nl
        decl = f'<?xml version="1.0" encoding="{self.encoding}"?>{nl}' if self.declaration else ""
        return (
            f'{decl}<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">{nl}'
            f"<ficAlimMENESR>{nl}"
            f'<!-- versionAF="{VERSION_AF}" -->{nl}'
            f'<!-- versionSDET="{VERSION_SDET}" codeAcademieExport="{ACADEMY_CODE}" '
            f'degre="1D" dateGenerationExport="{date_text(date)}" -->{nl}'
        ).encode(self.encoding)

    def footer(self) -> bytes:
        return f"</ficAlimMENESR>{self.nl}".encode(self.encoding)

    def _opening(self, op: str, name: str) -> str:
        """``<attr name="X">`` or ``<modification name="X" operation="replace">``, cached."""
        text = f'    <{_TAGS[op][2]}="{_escape(name)}"'
        text += ' operation="replace">' if op == "modify" else ">"
        self._open[op][name] = text
        return text

    def render(self, rec: Record) -> bytes:
        nl = self.nl
        ident = f"  <identifier><id>{_escape(rec.id)}</id></identifier>{nl}"
        if rec.op == "delete":
            text = f"<deleteRequest>{nl}{self.operational}{ident}</deleteRequest>{nl}"
            return text.encode(self.encoding, "xmlcharrefreplace")
        tag, block, _, close = _TAGS[rec.op]
        close += nl
        opening = self._open[rec.op]
        empty = self.empty
        out = [f"<{tag}>{nl}{self.operational}{ident}  <{block}>{nl}"]
        for name, values in rec.attrs.items():
            head = opening.get(name) or self._opening(rec.op, name)
            if len(values) == 1:
                v = values[0]
                out.append(
                    f"{head}{empty}{close}"
                    if v is None
                    else f"{head}<value>{_escape(v)}</value>{close}"
                )
            else:
                out.append(
                    head
                    + "".join(
                        empty if v is None else f"<value>{_escape(v)}</value>" for v in values
                    )
                    + close
                )
        out.append(f"  </{block}>{nl}</{tag}>{nl}")
        return "".join(out).encode(self.encoding, "xmlcharrefreplace")


def _parts(kind: str, records: list[Record], date: dt.date, part_size: int) -> Iterator[bytes]:
    """The files of one kind: records packed into parts of at most ``part_size`` bytes.

    A record is never split; a part holds at least one record (one kind always yields at
    least one part, possibly empty of records).
    """
    renderer = _Renderer(kind)
    head, foot = renderer.header(date), renderer.footer()
    chunks: list[bytes] = [head]
    size = len(head) + len(foot)
    count = 0
    for rec in records:
        body = renderer.render(rec)
        if count and size + len(body) > part_size:
            chunks.append(foot)
            yield b"".join(chunks)
            chunks, size, count = [head], len(head) + len(foot), 0
        chunks.append(body)
        size += len(body)
        count += 1
    chunks.append(foot)
    yield b"".join(chunks)


def _tarinfo(name: str, size: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(
    extraction: Extraction, out: Path, part_size: int, unpack: bool
) -> tuple[Path, Path | None]:
    """One extraction as ``<name>.tar.gz`` (files in a ``<name>/`` sub-folder), and with
    ``unpack`` as a plain ``<name>/`` folder; tar and gzip times are the extraction date."""
    name = extraction.name
    assert name.date is not None
    stem = name.filename.removesuffix(".tar.gz")
    mtime = int(dt.datetime.combine(name.date, dt.time(5, 0), dt.UTC).timestamp())
    archive = out / name.filename
    folder = out / stem if unpack else None
    if folder is not None:
        folder.mkdir(exist_ok=True)
    with (
        open(archive, "wb") as raw,
        gzip.GzipFile(
            filename=stem + ".tar", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=mtime
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        tar.addfile(_tarinfo(stem, 0, mtime, directory=True))
        for kind in KINDS:
            for part, data in enumerate(
                _parts(kind, extraction.records[kind], name.date, part_size)
            ):
                filename = name.file(kind, part).filename
                tar.addfile(_tarinfo(f"{stem}/{filename}", len(data), mtime), io.BytesIO(data))
                if folder is not None:
                    (folder / filename).write_bytes(data)
    return archive, folder
