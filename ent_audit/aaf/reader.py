"""Streaming, hardened reader of one AAF XML part (complete or delta).

The reader turns one file into columnar raw strings: per record its operation, identifier and
line, and per AAF attribute the list of values of each record that carries it. Typing, link
tables and validation against the schema happen in :mod:`ent_audit.aaf.frames`; this module only
reads, and reports what it could not read.

Hardening: the file is first parsed up to its root element, and a DOCTYPE whose internal
subset declares any entity (external entity, expansion bomb), as libxml2 reports it, is
refused before any record is read; a declared encoding Python does not know as a text
encoding is refused. lxml is then told explicitly never
to load a DTD, resolve entities, touch the network or lift its size limits.
"""

from __future__ import annotations

import codecs
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from ent_audit.exceptions import AAFSyntaxError, UnsafeXMLError

ROOT_TAG = "ficAlimMENESR"
OPERATIONS = {"addRequest": "add", "modifyRequest": "modify", "deleteRequest": "delete"}
RECORD_TAGS = tuple(OPERATIONS)
MODIFY_OPERATIONS = ("replace", "add", "delete")
"""What a DSML ``<modification operation=…>`` may say; anything else refuses the Delta."""
CATEGORY_ATTRS = frozenset({"categoriePersonne", "categorieStructure"})
"""The operational attribute of a record: the kind it claims to be."""

PARSER_OPTIONS = dict(
    resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False, dtd_validation=False
)
"""Passed explicitly on every parse: lxml's defaults have moved across versions."""

MAX_RECORDS = 2_000_000
"""Records one XML part may hold. An AAF part of the largest académie holds a few hundred
thousand; a "record bomb" (millions of tiny records packed in a small gzip) is refused while it
is streamed, at the first record over the limit, before its records fill the memory."""

PROLOGUE_LIMIT = 1 << 20
"""Bytes read from the start for the declaration and the header comments."""

_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_RECORD_START = re.compile(rb"<(?:addRequest|modifyRequest|deleteRequest)[\s>/]")
_COMMENT = re.compile(rb"<!--(.*?)-->", re.S)
_META_PAIR = re.compile(r"""([A-Za-z][\w.-]*)\s*=\s*["']([^"']*)["']""")
_ID = re.compile(rb"<id>\s*([^<]*?)\s*</id>")


@dataclass(frozen=True)
class Skipped:
    """A record left out by ``recover=True``, located so it can be reported to the academy."""

    path: str
    line: int
    column: int
    message: str
    record_id: str | None = None


@dataclass(frozen=True)
class Issue:
    """Something the reader noticed in a well-formed record; never fatal."""

    code: str
    path: str
    line: int | None
    record: int | None
    record_id: str | None
    attribute: str | None
    value: str | None
    message: str


@dataclass
class RawPart:
    """One XML part as read: columnar raw strings, no typing yet."""

    path: str
    encoding: str
    declared: bool
    """Whether the file had an XML declaration (without one, UTF-8 is assumed)."""
    metadata: dict[str, str]
    ops: list[str] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)
    attrs: dict[str, tuple[list[int], list[str | None]]] = field(default_factory=dict)
    """AAF attribute -> (record index of each value, raw value text), in file order.

    Texts are as lxml gives them (``None`` for ``<value/>``); stripping is vectorised later."""
    issues: list[Issue] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    modified: list[tuple[int, str, str]] = field(default_factory=list)
    """(record index, attribute, operation) of every ``<modification>`` of a modifyRequest."""
    changes: dict[tuple[str, str], tuple[list[int], list[str | None]]] = field(default_factory=dict)
    """(``add`` or ``delete``, attribute) -> the values of those modifications, as ``attrs``
    holds those of ``replace`` (DSML: add values, remove values)."""

    @property
    def n_records(self) -> int:
        return len(self.ops)


def _text_encoding(name: str, path: str) -> str:
    """``name`` if Python knows it as a text encoding; ``hex`` or ``rot13`` are not."""
    try:
        "<".encode(name)  # an empty input would not even look the codec up
    except LookupError as err:
        raise AAFSyntaxError(
            path, 1, None, f"encodage déclaré {name!r} inconnu ou non textuel ({err})"
        ) from None
    return name


def _prologue(head: bytes, path: str) -> tuple[str, bool, dict[str, str]]:
    """Encoding, whether declared, and the header comments' metadata, from the file's start."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # A byte pattern cannot read UTF-16: ask the codec, then read the declaration.
        text = head[: 4096 - 4096 % 2].decode("utf-16", errors="replace")
        return "UTF-16", text.lstrip().startswith("<?xml"), {}
    m = _DECL_ENCODING.match(head)
    declared = head.lstrip().startswith(b"<?xml")
    encoding = _text_encoding(m.group(1).decode("ascii"), path) if m else "UTF-8"
    # Header comments: before the first record, in or before the root element.
    first = _RECORD_START.search(head)
    header = head[: first.start()] if first else head
    metadata: dict[str, str] = {}
    for c in _COMMENT.finditer(header):
        text = c.group(1).decode(encoding, errors="replace")
        for key, value in _META_PAIR.findall(text):
            metadata[key] = value
    return encoding, declared, metadata


def _refuse_entities(fh: BinaryIO, head: bytes, encoding: str, path: str) -> None:
    """Refuse a file whose internal DTD declares any entity, from what libxml2 itself parsed.

    The parse stops at the root element's start tag: the internal subset is read (it always
    is, ``load_dtd`` or not) but no entity is ever resolved and nothing is loaded. A byte scan
    would miss UTF-16, a comment naming the root element, or a long prologue; the parser
    does not.
    """
    context = etree.iterparse(fh, events=("start",), **PARSER_OPTIONS)
    try:
        _, root = next(iter(context))
    except StopIteration:
        return
    except etree.XMLSyntaxError as err:
        raise _syntax_error(path, err) from None
    dtd = root.getroottree().docinfo.internalDTD
    names = [e.name for e in dtd.iterentities()] if dtd is not None else []
    if names:
        text = head.decode(encoding if encoding != "UTF-16" else "utf-16", errors="replace")
        at = text.find("<!ENTITY")
        raise UnsafeXMLError(
            path,
            text.count("\n", 0, at) + 1 if at >= 0 else None,
            None,
            f"la DOCTYPE déclare des entités ({', '.join(names[:5])}): entité externe ou "
            "bombe d'expansion, fichier refusé sans être lu",
        )


def _syntax_error(path: str, err: etree.XMLSyntaxError) -> AAFSyntaxError:
    line, column = err.position if err.position else (err.lineno, None)
    return AAFSyntaxError(path, line, column, err.msg or str(err))


class _Collector:
    """Accumulates records into a :class:`RawPart`, one shared path for both parse modes."""

    def __init__(self, part: RawPart) -> None:
        self.part = part

    def _refused(self, el: etree._Element, name: str | None, i: int, shift: int) -> None:
        part = self.part
        if name is None:
            code, value = "unnamed_attribute", None
            message = f"<{el.tag}> sans attribut name: valeurs ignorées"
        else:
            code, value = "unsupported_operation", el.get("operation")
            message = (
                f"modification {name!r}: opération {value!r} inconnue (DSML: replace, add, delete)"
            )
        texts = [v.text for v in el if v.text]
        part.issues.append(
            Issue(
                code,
                part.path,
                el.sourceline + shift,
                i,
                None,
                name,
                value if name else "$".join(texts) or None,
                message,
            )
        )

    def record(self, rec: etree._Element, line: int | None = None) -> None:
        """Collect one record; ``line`` overrides lxml's when the record was parsed alone.

        One flat walk over the record's ``attr``/``modification``, ``value`` and ``id``
        elements (filtered in C by lxml): each value goes to the lists of the attribute
        opened last. This is the hot loop of the whole package.
        """
        part = self.part
        i = len(part.ops)
        shift = line - rec.sourceline if line is not None else 0
        for ent in rec.iter(etree.Entity):  # undeclared entity: its text would be lost
            raise AAFSyntaxError(
                part.path,
                ent.sourceline + shift,
                None,
                f"entité {ent.text} non déclarée (la DTD n'est jamais lue): valeur illisible",
            )
        record_id = None
        acc = part.attrs
        category: tuple[list, list] = ([], [])
        ignored: tuple[list, list] = ([], [])
        stray: tuple[list, list] = ([], [])
        ix, vs = stray
        for el in rec.iter("value", "attr", "modification", "id", "attributes", "modifications"):
            tag = el.tag
            if tag == "value":
                ix.append(i)
                vs.append(el.text)
            elif tag == "id":
                record_id = el.text.strip() if el.text else None
            elif tag == "attributes" or tag == "modifications":
                ix, vs = stray
            else:
                name = el.get("name")
                if tag == "modification" and name is not None:
                    op = el.get("operation")
                    if op in MODIFY_OPERATIONS:
                        part.modified.append((i, name, op))
                    if op in ("add", "delete"):
                        entry = part.changes.get((op, name))
                        if entry is None:
                            entry = part.changes[op, name] = ([], [])
                        ix, vs = entry
                        continue
                    if op != "replace":
                        self._refused(el, name, i, shift)
                        ix, vs = ignored
                        continue
                if name is None:
                    self._refused(el, name, i, shift)
                    ix, vs = ignored
                elif name in CATEGORY_ATTRS:
                    ix, vs = category
                else:
                    entry = acc.get(name)
                    if entry is None:
                        entry = acc[name] = ([], [])
                    ix, vs = entry
        if stray[1]:
            part.issues.append(
                Issue(
                    "stray_value",
                    part.path,
                    rec.sourceline + shift,
                    i,
                    None,
                    None,
                    "$".join(t or "" for t in stray[1]),
                    "<value> hors de tout <attr>: ignorée",
                )
            )
        part.ops.append(OPERATIONS[rec.tag])
        part.ids.append(record_id)
        part.lines.append(line if line is not None else rec.sourceline)
        part.categories.append(category[1][0] if category[1] else None)


def read_part(path: str | Path, *, recover: bool = False) -> RawPart:
    """Read one AAF XML part.

    Strict by default: a malformed file raises :class:`AAFSyntaxError` naming file, line and
    column. With ``recover=True`` the well-formed records are returned and every record that
    could not be read is listed in ``RawPart.skipped``.
    """
    path = Path(path)
    spath = str(path)
    with open(path, "rb") as fh:
        head = fh.read(PROLOGUE_LIMIT)
        encoding, declared, metadata = _prologue(head, spath)
        fh.seek(0)
        _refuse_entities(fh, head, encoding, spath)
        fh.seek(0)
        part = RawPart(spath, encoding, declared, metadata)
        try:
            _stream(fh, _Collector(part))
        except UnsafeXMLError:
            raise  # a record bomb is not salvaged record by record
        except (etree.XMLSyntaxError, AAFSyntaxError) as err:
            error = err if isinstance(err, AAFSyntaxError) else _syntax_error(spath, err)
            if not recover:
                raise error from None
            part = RawPart(spath, encoding, declared, metadata)
            part.issues.append(
                Issue(
                    "malformed_file",
                    spath,
                    error.line,
                    None,
                    None,
                    None,
                    None,
                    f"fichier mal formé ({error}): lecture enregistrement par enregistrement",
                )
            )
            fh.seek(0)
            _salvage(fh, _Collector(part), encoding)
    return part


def _stream(fh: BinaryIO, out: _Collector) -> None:
    """iterparse over record elements only, clearing each one and its predecessors."""
    context = etree.iterparse(
        fh, events=("end",), tag=RECORD_TAGS, remove_comments=True, **PARSER_OPTIONS
    )
    record = out.record
    root_checked = False
    limit = MAX_RECORDS
    for count, (_, rec) in enumerate(context, start=1):
        if count > limit:
            raise _record_bomb(out.part.path, rec.sourceline, limit)
        parent = rec.getparent()
        if not root_checked:
            if parent is None or parent.tag != ROOT_TAG or parent.getparent() is not None:
                where = parent.tag if parent is not None else "racine"
                raise etree.XMLSyntaxError(
                    f"enregistrement <{rec.tag}> hors de <{ROOT_TAG}> (dans <{where}>)",
                    None,
                    rec.sourceline,
                    0,
                    out.part.path,
                )
            root_checked = True
        record(rec)
        rec.clear()
        while rec.getprevious() is not None:
            del parent[0]
    root = context.root
    if root is not None and root.tag != ROOT_TAG:
        raise etree.XMLSyntaxError(
            f"élément racine <{root.tag}> au lieu de <{ROOT_TAG}>", None, 1, 0, out.part.path
        )


def _record_bomb(path: str, line: int | None, limit: int) -> UnsafeXMLError:
    return UnsafeXMLError(
        path,
        line,
        None,
        f"plus de {limit} enregistrements dans une seule partie (bombe d'enregistrements?): "
        "fichier refusé pendant sa lecture",
    )


def _salvage(fh: BinaryIO, out: _Collector, encoding: str) -> None:
    """Parse each record on its own, from one record start to the next; list the failures.

    A record is cut at the next record start, so a broken record (a missing or wrong closing
    tag) costs that record only.
    """
    path = out.part.path
    parser = etree.XMLParser(encoding=encoding, remove_comments=True, **PARSER_OPTIONS)
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        starts = []
        for m in _RECORD_START.finditer(data):
            if len(starts) == MAX_RECORDS:
                line = data.count(b"\n", 0, m.start()) + 1
                raise _record_bomb(path, line, MAX_RECORDS)
            starts.append(m.start())
        end_root = data.rfind(b"</" + ROOT_TAG.encode())
        ends = [*starts[1:], end_root if end_root > (starts[-1] if starts else 0) else len(data)]
        line = 1
        pos = 0
        for start, end in zip(starts, ends, strict=False):
            line += data[pos:start].count(b"\n")
            pos = start
            chunk = data[start:end]
            m = _ID.search(chunk)
            record_id = m.group(1).decode(encoding, errors="replace") if m else None
            try:
                out.record(etree.fromstring(chunk, parser), line)
            except etree.XMLSyntaxError as err:
                eline, ecol = err.position if err.position else (1, 0)
                if eline == 1:
                    ecol += start - (data.rfind(b"\n", 0, start) + 1)
                out.part.skipped.append(
                    Skipped(path, line + eline - 1, ecol, err.msg or str(err), record_id)
                )
            except AAFSyntaxError as err:
                out.part.skipped.append(
                    Skipped(path, err.line or line, err.column or 0, err.reason, record_id)
                )
