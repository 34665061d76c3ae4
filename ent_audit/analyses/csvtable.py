"""The provider's small CSV files (account export, daily figures, destruction requests): one
reader for all, so that every such file is read, and refused, the same way.

Headers are matched folded (case, accents, spaces, ``_`` and ``-``), a field's aliases tried
after its mapped name; ``;``, ``,``, tab or ``|``; UTF-8 with or without BOM. Each row keeps
its line number, so that a row with a wrong number of fields, a value that does not parse or a
foreign encoding is located at file:line (:class:`~ent_audit.exceptions.InputFileError`: one
French line, exit status 2 from the CLI). Values stay strings here: each reader parses its
own fields and decides, row by row, with :func:`raise_first` when strict.
"""

from __future__ import annotations

import array
import csv
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ent_audit.exceptions import ActivityInputError, InputFileError

FIELDS_LABEL = "nombre de champs incorrect"
BOM = b"\xef\xbb\xbf"


def fold(text: str) -> str:
    """Lower case, no accents, single spaces: how headers and labels are compared."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_\-]+", " ", text).strip().lower()


def delimiter(header: bytes) -> str:
    """The separator a header line uses most."""
    text = header.decode("utf-8", "replace")
    return max((";", ",", "\t", "|"), key=text.count)


@dataclass(frozen=True)
class Rows:
    """A CSV file's rows as strings, before any parsing."""

    path: Path
    raw: pd.DataFrame
    """One column per header, strings ("" when empty)."""
    found: dict[str, str | None]
    """Field -> the header found for it (None: absent)."""
    lines: np.ndarray
    """The line number of each row of ``raw``."""
    bad_fields: np.ndarray
    """Lines left out of ``raw``: their number of fields is not the header's."""

    def get(self, field: str) -> pd.Series:
        """A field's values, trimmed; "" for every row when its column is absent. The trimmed
        values replace the column's in ``raw``: a reader holds one copy of its file, not two
        (trimming again changes nothing)."""
        header = self.found[field]
        if header is None:
            return pd.Series("", index=self.raw.index, dtype=object)
        trimmed = self.raw[header].str.strip()
        self.raw[header] = trimmed
        return trimmed


def read_rows(
    path: Path | str,
    columns: Mapping[str, str],
    required: Sequence[str],
    parameter: str,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    error: type[Exception] = InputFileError,
) -> Rows:
    """Read ``path`` (``columns``: field -> expected header). A missing file, a foreign
    encoding, a broken CSV or a ``required`` column absent raise ``error``: an
    :class:`InputFileError` naming file:line, or an :class:`ActivityInputError` pointing at
    the report parameter ``parameter``."""
    path = Path(path)

    def fail(message: str, line: int | None = None) -> Exception:
        if error is InputFileError:
            return InputFileError(path, message, line=line)
        return ActivityInputError(path, message, parameter="columns")

    if not path.is_file():
        if error is InputFileError:
            raise InputFileError(path, "fichier introuvable")
        raise ActivityInputError(path, "fichier introuvable", parameter=parameter)
    with open(path, "rb") as fh:
        sep = delimiter(fh.readline().removeprefix(BOM))
    rows: list[list[str]] = []
    lines, bad = array.array("q"), array.array("q")
    chunks: list[list[pa.Array]] = []
    start = 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            header = [c.strip() for c in next(reader, [])]
            chunks = [[] for _ in header]
            start = reader.line_num + 1  # a row's line is where it starts (quotes span lines)
            for row in reader:
                if len(row) == len(header):
                    rows.append(row)
                    lines.append(start)
                    if len(rows) == CHUNK_ROWS:
                        _to_arrow(rows, chunks)
                elif row:
                    bad.append(start)
                start = reader.line_num + 1
            _to_arrow(rows, chunks)
    except UnicodeDecodeError:
        raise fail(*_undecodable(path)) from None
    except csv.Error as err:
        limit = csv.field_size_limit()
        why = f"champ de plus de {limit} caractères" if "field limit" in str(err) else str(err)
        raise fail(f"CSV illisible ({why})", start) from None
    folded = {fold(h): h for h in header}
    found: dict[str, str | None] = {}
    for f, c in columns.items():
        names = (c, *(aliases or {}).get(f, ()))
        found[f] = next((folded[fold(n)] for n in names if fold(n) in folded), None)
    missing = [f for f in required if found[f] is None]
    if missing:
        raise fail(
            f"colonne {columns[missing[0]]!r} ({missing[0]}) absente ({', '.join(header)}); "
            f"précisez {parameter}.{missing[0]}",
            1,
        )
    raw = pd.DataFrame(
        {j: pd.arrays.ArrowStringArray(pa.chunked_array(c, pa.string())) for j, c in
         enumerate(chunks)},
        index=pd.RangeIndex(len(lines)),
    )  # fmt: skip
    raw.columns = header
    return Rows(
        path, raw, found, np.frombuffer(lines, dtype=np.int64), np.frombuffer(bad, dtype=np.int64)
    )


CHUNK_ROWS = 1 << 16
"""Rows parsed as Python strings at a time before they become Arrow columns: a provider's
export of a million rows held as lists of ``str`` costs several hundred MB, as Arrow strings a
tenth of that."""


def _to_arrow(rows: list[list[str]], chunks: list[list[pa.Array]]) -> None:
    """Append ``rows`` to the per-column Arrow chunks, then empty ``rows``."""
    if rows:
        for j, values in enumerate(zip(*rows, strict=True)):
            chunks[j].append(pa.array(values, pa.string()))
    rows.clear()


def _undecodable(path: Path) -> tuple[str, int]:
    """Where a file stops being UTF-8 (read again whole: only on that error)."""
    body = path.read_bytes().removeprefix(BOM)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        byte = body[err.start : err.start + 1].hex()
        line = body.count(b"\n", 0, err.start) + 1
        return f"encodage non UTF-8 (octet 0x{byte}) : enregistrez le fichier en UTF-8", line
    return "encodage non UTF-8", 1


Label = str | Callable[[int], str]
"""What a check says of a bad row: text, or text made from the row's position in ``raw``."""


def raise_first(rows: Rows, checks: Sequence[tuple[Label, pd.Series, str, str | None]]) -> None:
    """Raise the file's first bad row as an :class:`InputFileError` naming file:line (colonne
    …); nothing when every row is good. ``checks``: (label, mask of bad rows, field, hint).
    With a hint the bad value is quoted, then the hint; with None it is not (an id is never
    echoed). A row with a wrong number of fields is bad too."""
    first: tuple[int, str, str | None] | None = None
    if len(rows.bad_fields):
        expected = f" ({len(rows.raw.columns)} attendus)"
        first = (int(rows.bad_fields.min()), FIELDS_LABEL + expected, None)
    for label, mask, field, hint in checks:
        m = mask.fillna(True).to_numpy(dtype=bool)
        if not m.any():
            continue
        i = int(np.flatnonzero(m)[0])
        if first is None or rows.lines[i] < first[0]:
            text = label(i) if callable(label) else label
            if hint is not None:
                text += f" {rows.get(field).iloc[i]!r}{hint}"
            first = (int(rows.lines[i]), text, rows.found[field])
    if first is not None:
        raise InputFileError(rows.path, first[1], line=first[0], column=first[2])


def parse_dates(values: pd.Series, formats: Sequence[str]) -> pd.Series:
    """Each value read with the first of ``formats`` that reads it; NaT when none does or the
    value is empty."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    for fmt in formats:
        todo = out.isna() & values.ne("")
        if not todo.any():
            break
        out[todo] = pd.to_datetime(values[todo], format=fmt, errors="coerce")
    return out
