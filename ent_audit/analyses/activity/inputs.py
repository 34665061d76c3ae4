"""The provider's activity files: column mappings, French or English labels, malformed rows.

Three inputs (``docs/design.md``): the raw event log (CSV or JSON lines), the account export and
the pre-aggregated daily CSV. Each has default column names, overridable by a mapping (the
report's ``columns`` parameter: ``{"events": {"timestamp": "horodatage", …}}``). Profiles,
events and devices are accepted in French or English, with or without accents or capitals.

A row that does not parse is never dropped silently: it is counted and listed with its file
and line (:class:`Malformed`), and the rest of the file is read. A file that cannot be read at
all (a required column missing) raises :class:`~ent_audit.exceptions.ActivityInputError`.
Event logs are read in blocks of lines (bounded memory), parsed by Arrow in C++.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from ent_audit import memory
from ent_audit.aaf.population import Profile
from ent_audit.analyses.csvtable import delimiter as _delimiter
from ent_audit.analyses.csvtable import fold as _fold
from ent_audit.analyses.csvtable import parse_dates as _dates
from ent_audit.analyses.csvtable import raise_first, read_rows
from ent_audit.exceptions import ActivityInputError, InputFileError

# -- labels ----------------------------------------------------------------------------------


def _per_value(column: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """``column.map(fn)`` with ``fn`` called once per distinct value: an export has hundreds
    of thousands of rows and a handful of profile labels and flags. The rows take their
    value by code (Arrow's dictionary), never as one Python object each."""
    uniques = column.unique()
    codes = pd.factorize(column, use_na_sentinel=False)[0]  # positions in ``uniques``
    mapped = pd.Series(uniques, dtype=column.dtype).map(
        dict(zip(uniques, map(fn, uniques), strict=True))
    )
    return mapped.take(codes).set_axis(column.index)


PROFILE_LABELS: dict[str, Profile] = {
    _fold(label): profile
    for profile, labels in {
        Profile.PUPIL: ("élève", "élèves", "eleve", "pupil", "pupils", "student", "students",
                        "enfant", "learner"),
        Profile.GUARDIAN: ("parent", "parents", "responsable", "responsables",
                           "responsable légal", "relative", "guardian", "guardians", "famille",
                           "relation", "persrel", "persreleleve"),
        Profile.TEACHER: ("enseignant", "enseignants", "enseignante", "professeur", "teacher",
                          "teachers"),
        Profile.DIRECTOR: ("directeur", "directrice", "directeurs", "direction", "director",
                           "headteacher", "head teacher", "principal"),
        Profile.OTHER_STAFF: ("personnel", "personnels", "autre personnel", "autres personnels",
                              "personnel non enseignant", "staff", "other staff", "other_staff",
                              "agent", "persedu", "perseducnat"),
    }.items()
    for label in labels
}  # fmt: skip
"""Accepted profile labels (compared folded: case, accents, spaces)."""

KIND_OF = {
    Profile.PUPIL: "Eleve",
    Profile.GUARDIAN: "PersRelEleve",
    Profile.TEACHER: "PersEducNat",
    Profile.DIRECTOR: "PersEducNat",
    Profile.OTHER_STAFF: "PersEducNat",
}
"""The AAF kind of a profile: pseudonyms are keyed by kind (``ent_audit.store.pseudonym``)."""


class EventKind(StrEnum):
    LOGIN = "login"
    """A connection: what ENT consoles count as « connexions »."""
    APPLICATION = "application"
    CONNECTOR = "connector"
    """An external resource opened through the ENT (GAR, BRNE, Éduthèque…)."""
    OTHER = "other"


EVENT_LABELS: dict[str, EventKind] = {
    _fold(label): kind
    for kind, labels in {
        EventKind.LOGIN: ("connexion", "login", "connection", "logon", "authentification",
                          "sign in"),
        EventKind.APPLICATION: ("application", "app", "acces application",
                                "ouverture application", "module"),
        EventKind.CONNECTOR: ("connecteur", "connector", "ressource", "resource", "gar"),
    }.items()
    for label in labels
}  # fmt: skip


class Device(StrEnum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    OTHER = "other"


DEVICE_LABELS: dict[str, Device] = {
    _fold(label): device
    for device, labels in {
        Device.DESKTOP: ("ordinateur", "desktop", "pc", "computer", "poste fixe"),
        Device.MOBILE: ("mobile", "smartphone", "telephone", "phone"),
        Device.TABLET: ("tablette", "tablet"),
    }.items()
    for label in labels
}  # fmt: skip

DEVICE_NAMES = {
    Device.DESKTOP: "ordinateur",
    Device.MOBILE: "mobile",
    Device.TABLET: "tablette",
    Device.OTHER: "autre",
}
EVENT_NAMES = {
    EventKind.LOGIN: "connexion",
    EventKind.APPLICATION: "application",
    EventKind.CONNECTOR: "connecteur",
    EventKind.OTHER: "autre",
}

# -- column mappings -------------------------------------------------------------------------

EVENT_COLUMNS = {
    "timestamp": "timestamp",
    "user": "user",
    "profile": "profile",
    "uai": "uai",
    "event": "event",
    "application": "application",
    "device": "device",
}
"""Event log: field -> column (CSV header or JSON key). ``application`` and ``device`` may be
absent from a file."""
EVENT_OPTIONAL = ("application", "device")

ACCOUNT_COLUMNS = {
    "user": "Identifiant",
    "profile": "Profil",
    "uai": "UAI",
    "activated": "Activé",
    "activation_date": "Date d'activation",
    "last_login": "Dernière connexion",
}

DAILY_COLUMNS = {
    "school": "Etablissement",
    "uai": "UAI",
    "date": "Date",
    "profile": "Profil",
    "connections": "Connexions",
    "unique_visitors": "Visiteurs uniques",
    "loaded": "Comptes chargés",
    "activated": "Comptes activés",
}
DAILY_OPTIONAL = ("school",)

TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
)
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d")
TRUE_LABELS = {"oui", "o", "yes", "y", "true", "vrai", "1", "active", "actif", "activated"}
FALSE_LABELS = {"non", "n", "no", "false", "faux", "0", "", "inactive", "inactif"}
UAI = re.compile(r"^\d{7}[A-Z]$")
STRING = pd.StringDtype("pyarrow")


def mapping(defaults: Mapping[str, str], given: Mapping[str, str] | None, what: str) -> dict:
    """The defaults overridden by ``given``; an unknown field is an error naming it."""
    given = dict(given or {})
    extra = sorted(set(given) - set(defaults) - {"timestamp_format"})
    if extra:
        raise ActivityInputError(
            f"columns.{what}",
            f"champ inconnu {extra[0]!r}; champs: {', '.join(defaults)}",
            parameter="columns",
        )
    return {**defaults, **given}


# -- malformed rows ----------------------------------------------------------------------------


class Reason(StrEnum):
    FIELDS = "fields"
    JSON = "json"
    TIMESTAMP = "timestamp"
    USER = "user"
    PROFILE = "profile"
    UAI = "uai"
    VALUE = "value"


REASON_LABELS = {
    Reason.FIELDS: "nombre de champs incorrect",
    Reason.JSON: "JSON illisible",
    Reason.TIMESTAMP: "date ou heure illisible",
    Reason.USER: "identifiant vide",
    Reason.PROFILE: "profil inconnu",
    Reason.UAI: "UAI mal formée",
    Reason.VALUE: "valeur illisible",
}

KEEP_MALFORMED = 200
"""Malformed rows listed per file (all are counted)."""


@dataclass(frozen=True)
class Malformed:
    """One row left out, located. No value of the row is kept (it may hold a jointure)."""

    file: str
    line: int
    reason: Reason

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "reason": str(self.reason)}

    @property
    def label(self) -> str:
        return REASON_LABELS[self.reason]


@dataclass(frozen=True)
class FileReport:
    """What reading one file gave: rows kept, rows left out (the first ones listed)."""

    file: str
    kind: str
    """``events``, ``accounts`` or ``daily``."""
    rows: int
    malformed_count: int
    malformed: tuple[Malformed, ...] = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["malformed"] = [m.to_dict() for m in self.malformed]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> FileReport:
        return cls(
            d["file"],
            d["kind"],
            int(d["rows"]),
            int(d["malformed_count"]),
            tuple(
                Malformed(m["file"], int(m["line"]), Reason(m["reason"])) for m in d["malformed"]
            ),
        )


# -- vectorised parsing ------------------------------------------------------------------------


def _strings(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Trimmed strings, empty as null."""
    arr = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def parse_timestamps(arr: pa.Array, formats: tuple[str, ...] = TIMESTAMP_FORMATS) -> pa.Array:
    """Timestamps (seconds, local time as written) from the first format that reads each value;
    null when none does."""
    out = pa.nulls(len(arr), pa.timestamp("s"))
    for fmt in formats:
        missing = pc.is_null(out)
        if not pc.any(missing).as_py():
            break
        parsed = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
        out = pc.if_else(missing, parsed, out)
    return out


def _by_label(arr: pa.Array, labels: Mapping[str, str], default: str | None) -> pa.Array:
    """Each distinct value folded and looked up once; unknown -> ``default``."""
    enc = pc.dictionary_encode(arr).combine_chunks() if isinstance(arr, pa.ChunkedArray) else (
        pc.dictionary_encode(arr)
    )  # fmt: skip
    names = [labels.get(_fold(v), default) if v is not None else default for v in
             enc.dictionary.to_pylist()]  # fmt: skip
    values = pa.array([None if n is None else str(n) for n in names], pa.string())
    idx = enc.indices
    return values.take(idx) if len(values) else pa.nulls(len(arr), pa.string())


EVENT_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("s")),
        ("user", pa.string()),
        ("kind", pa.string()),
        ("profile", pa.string()),
        ("uai", pa.string()),
        ("event", pa.string()),
        ("application", pa.string()),
        ("device", pa.string()),
    ]
)
"""Normalised events: ``user`` is the jointure as read (pseudonymised before storage)."""


def normalise_events(
    table: pa.Table, lines: np.ndarray, cols: Mapping[str, str], file: str
) -> tuple[pa.Table, list[Malformed], int]:
    """Typed, labelled events and the rows left out (with their line numbers)."""
    n = table.num_rows

    def col(field_: str) -> pa.Array:
        name = cols[field_]
        if name in table.column_names:
            return _strings(table[name])
        return pa.nulls(n, pa.string())

    formats = (cols["timestamp_format"],) if cols.get("timestamp_format") else TIMESTAMP_FORMATS
    ts = parse_timestamps(col("timestamp"), formats)
    user = col("user")
    profile = _by_label(col("profile"), PROFILE_LABELS, None)
    uai = pc.utf8_upper(col("uai"))
    uai_ok = pc.fill_null(pc.match_substring_regex(uai, UAI.pattern), False)
    checks = [
        (Reason.TIMESTAMP, pc.is_null(ts)),
        (Reason.USER, pc.is_null(user)),
        (Reason.PROFILE, pc.is_null(profile)),
        (Reason.UAI, pc.invert(uai_ok)),
    ]
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, -1, dtype=np.int8)
    order = list(Reason)
    for reason, mask in checks:
        m = mask.to_numpy(zero_copy_only=False) & ~bad
        reasons[m] = order.index(reason)
        bad |= m
    malformed = [
        Malformed(file, int(lines[i]), order[reasons[i]])
        for i in np.flatnonzero(bad)[:KEEP_MALFORMED]
    ]
    keep = pa.array(~bad)
    kind = _by_label(profile, {_fold(str(p)): KIND_OF[p] for p in Profile}, None)
    out = pa.table(
        {
            "ts": ts,
            "user": user,
            "kind": kind,
            "profile": profile,
            "uai": uai,
            "event": _by_label(col("event"), EVENT_LABELS, str(EventKind.OTHER)),
            "application": col("application"),
            "device": _by_label(col("device"), DEVICE_LABELS, str(Device.OTHER)),
        },
        schema=EVENT_SCHEMA,
    ).filter(keep)
    return out, malformed, int(bad.sum())


# -- event logs --------------------------------------------------------------------------------

BLOCK_BYTES = 8 << 20
"""Bytes of log parsed at once (whole lines). Each of the two parsing threads holds its block,
its Arrow table and the normalised columns, several times the block: on an académie's year
(919 MB of CSV) a conversion peaked 148 MB above its process's floor with 8 MB blocks against
366 MB with 32 MB ones, for about 5 % more CPU time (115 MB and 15 % with 4 MB blocks)."""


def event_format(path: Path) -> str:
    """``jsonl`` for ``.jsonl``/``.json``/``.ndjson`` files, else ``csv``."""
    suffixes = [s.lower() for s in path.suffixes]
    return "jsonl" if {".jsonl", ".json", ".ndjson"} & set(suffixes) else "csv"


def _blocks(path: Path, skip_header: bool) -> Iterator[tuple[bytes, bytes, int]]:
    """(header, block of whole lines, number of the block's first line)."""
    with open(path, "rb") as fh:
        header = fh.readline() if skip_header else b""
        if header.startswith(b"\xef\xbb\xbf"):
            header = header[3:]
        line = 2 if skip_header else 1
        size = BLOCK_BYTES
        while True:
            start = fh.tell()
            chunk = fh.read(size)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if cut == 0 and len(chunk) == size:  # a line longer than a block: read more
                fh.seek(start)
                size *= 2
                continue
            if cut == 0:  # the last line, without its line break
                chunk, cut = chunk + b"\n", len(chunk) + 1
            elif cut < len(chunk):
                fh.seek(start + cut)  # the cut line is read again with the next block
                chunk = chunk[:cut]
            yield header, chunk, line
            line += chunk.count(b"\n")
            size = BLOCK_BYTES


def _empty_lines(block: bytes, first: int) -> list[int]:
    """Line numbers of the block's empty lines (found by C searches, not a regex)."""
    out = {first} if block.startswith((b"\n", b"\r\n")) else set()
    for sep in (b"\n\n", b"\n\r\n"):
        i = block.find(sep)
        while i != -1:
            out.add(first + block.count(b"\n", 0, i + 1))
            i = block.find(sep, i + 1)
    return sorted(out)


def _csv_block(header: bytes, block: bytes, first: int, cols: Mapping[str, str], file: str):
    bad: list[int] = []

    def invalid(row) -> str:
        bad.append(row.number)
        return "skip"

    names = [c.strip().strip('"') for c in header.decode("utf-8").rstrip("\r\n").split(
        _delimiter(header))]  # fmt: skip
    wanted = [c for c in cols.values() if c in names]
    table = pacsv.read_csv(
        io.BytesIO(header + block),
        read_options=pacsv.ReadOptions(use_threads=False, block_size=len(block) + len(header) + 1),
        parse_options=pacsv.ParseOptions(
            delimiter=_delimiter(header), invalid_row_handler=invalid, ignore_empty_lines=True
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in names},
            include_columns=wanted,
            strings_can_be_null=False,
        ),
    )
    n_lines = block.count(b"\n")
    empty = _empty_lines(block, first)
    bad_lines = np.array(
        sorted([first + b - 2 for b in bad if b is not None] + empty), dtype=np.int64
    )
    bad = bad + empty
    keep = np.ones(n_lines, dtype=bool)
    keep[bad_lines - first] = False
    lines = np.arange(first, first + n_lines, dtype=np.int64)[keep]
    if len(lines) != table.num_rows:  # a quoted field held a line break: lines are unknown
        lines = np.arange(first, first + table.num_rows, dtype=np.int64)
    out, malformed, n_bad = normalise_events(table, lines, cols, file)
    fields = [Malformed(file, int(x), Reason.FIELDS) for x in bad_lines[:KEEP_MALFORMED]]
    return out, fields + malformed, n_bad + len(bad)


def _jsonl_block(_header: bytes, block: bytes, first: int, cols: Mapping[str, str], file: str):
    keys = list(dict.fromkeys(v for k, v in cols.items() if k != "timestamp_format"))
    n_lines = block.count(b"\n")
    schema = pa.schema([(k, pa.string()) for k in keys])
    try:
        table = pajson.read_json(
            io.BytesIO(block),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(block) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
        if table.num_rows != n_lines:
            raise ValueError("blank lines")
        bad: list[int] = []
        lines = np.arange(first, first + n_lines, dtype=np.int64)
    except (pa.ArrowInvalid, ValueError):  # find the bad lines one by one
        rows, good, bad = [], [], []
        for i, raw in enumerate(block.split(b"\n")[:n_lines]):
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                bad.append(first + i)
                continue
            rows.append({k: None if obj.get(k) is None else str(obj[k]) for k in keys})
            good.append(first + i)
        table = pa.Table.from_pylist(rows, schema=schema)
        lines = np.array(good, dtype=np.int64)
    out, malformed, n_bad = normalise_events(table, lines, cols, file)
    fields = [Malformed(file, int(x), Reason.JSON) for x in bad[:KEEP_MALFORMED]]
    return out, fields + malformed, n_bad + len(bad)


class EventLog:
    """One event log, read in blocks of normalised events: ``for table in log: …``; after the
    loop ``log.report`` says how many rows were kept and which lines were left out."""

    def __init__(
        self, path: Path | str, columns: Mapping[str, str] | None = None, *, workers: int = 2
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ActivityInputError(self.path, "fichier introuvable", parameter="events")
        self.columns = mapping(EVENT_COLUMNS, columns, "events")
        self.format = event_format(self.path)
        self.workers = max(1, workers)
        self.report: FileReport | None = None
        if self.format == "csv":
            self._check_header()

    def _check_header(self) -> None:
        with open(self.path, "rb") as fh:
            header = fh.readline().lstrip(b"\xef\xbb\xbf")
        text = header.decode("utf-8", "replace").rstrip("\r\n")
        names = {c.strip().strip('"') for c in text.split(_delimiter(header))}
        required = [f for f in EVENT_COLUMNS if f not in EVENT_OPTIONAL]
        missing = [f for f in required if self.columns[f] not in names]
        if missing:
            raise ActivityInputError(
                self.path,
                f"colonne {self.columns[missing[0]]!r} ({missing[0]}) absente de l'en-tête "
                f"({', '.join(sorted(names))}); précisez columns.events.{missing[0]}",
                parameter="columns",
            )

    def __iter__(self) -> Iterator[pa.Table]:
        parse = _csv_block if self.format == "csv" else _jsonl_block
        rows = bad = 0
        found: list[Malformed] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending = []
            blocks = _blocks(self.path, skip_header=self.format == "csv")
            for header, block, first in blocks:
                pending.append(
                    pool.submit(parse, header, block, first, self.columns, self.path.name)
                )
                while len(pending) > self.workers or (pending and pending[0].done()):
                    table, malformed, n_bad = pending.pop(0).result()
                    rows, bad = rows + table.num_rows, bad + n_bad
                    found += malformed[: max(0, KEEP_MALFORMED - len(found))]
                    yield table
            for f in pending:
                table, malformed, n_bad = f.result()
                rows, bad = rows + table.num_rows, bad + n_bad
                found += malformed[: max(0, KEEP_MALFORMED - len(found))]
                yield table
        found.sort(key=lambda m: m.line)
        self.report = FileReport(self.path.name, "events", rows, bad, tuple(found))


def read_events_frame(
    path: Path | str, columns: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, FileReport]:
    """A whole (small) log as one frame, and its report: for tests and exploration."""
    log = EventLog(path, columns)
    tables = list(log)
    table = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    assert log.report is not None
    return table.to_pandas(), log.report


# -- account export and daily figures ---------------------------------------------------------


ACCOUNT_ALIASES = {
    "user": ("jointure",),
    "profile": ("profil",),
    "activated": ("active",),
    "activation_date": ("date_activation",),
    "last_login": ("derniere_connexion",),
}
"""Other headers recognised for a field of the account export when its mapping is not given
(the first exports the retention checks read: ``jointure;profil;uai;active;date_activation;
derniere_connexion``). Headers are compared folded (case, accents, spaces)."""
ACCOUNT_FIELD_ALIASES = {"jointure": "user"}
"""Older names of mapping keys (the retention report's ``account_columns`` said ``jointure``)."""
ACCOUNT_REQUIRED = ("user", "profile", "uai", "activated")
"""Fields the pilot console needs; the retention checks need only ``user`` and ``profile``
(an account exists), :data:`RETENTION_REQUIRED`."""
RETENTION_REQUIRED = ("user", "profile")


ACCOUNT_DATE_FORMATS = (
    *TIMESTAMP_FORMATS,
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    *DATE_FORMATS,
)
"""A date, or a date and time, ISO or French: what account exports write."""


def account_mapping(
    columns: Mapping[str, str] | None, parameter: str = "columns.accounts"
) -> dict[str, str]:
    """The account export's headers: :data:`ACCOUNT_COLUMNS` overridden by ``columns``
    (``jointure`` accepted for ``user``); an unknown field is an error naming it."""
    given = {ACCOUNT_FIELD_ALIASES.get(k, k): v for k, v in (columns or {}).items()}
    extra = sorted(set(given) - set(ACCOUNT_COLUMNS))
    if extra:
        raise ActivityInputError(
            parameter,
            f"champ inconnu {extra[0]!r}; champs: {', '.join(ACCOUNT_COLUMNS)}",
            parameter=parameter.split(".")[0],
        )
    return {**ACCOUNT_COLUMNS, **given}


def read_accounts(
    path: Path | str,
    columns: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
    required: tuple[str, ...] = ACCOUNT_REQUIRED,
    parameter: str = "columns.accounts",
) -> tuple[pd.DataFrame, FileReport]:
    """The provider's account export, the one reader (pilot console and retention checks).

    One row per account: ``user`` (the jointure), ``kind`` (AAF kind), ``profile``
    (:class:`~ent_audit.aaf.population.Profile`), ``uai`` (NA when empty), ``activated``,
    ``activation_date``, ``last_login`` (NaT when empty). ``columns`` maps fields to headers
    (:data:`ACCOUNT_COLUMNS` by default, :data:`ACCOUNT_ALIASES` also recognised); ``;`` or
    ``,``, UTF-8 with or without BOM. A row with an empty id, an unknown profile, an unreadable
    activation flag or date, or a wrong number of fields is left out and listed with its line
    in the :class:`FileReport`; ``strict`` raises the first one instead
    (:class:`~ent_audit.exceptions.InputFileError`: file:line (colonne …)), for checks that a
    partial export would pass wrongly. A missing file or ``required`` column raises the same
    error; ``parameter`` is the report parameter its message points to.
    """
    path = Path(path)
    cols = account_mapping(columns, parameter)
    given = {ACCOUNT_FIELD_ALIASES.get(k, k) for k in columns or {}}
    aliases = {f: a for f, a in ACCOUNT_ALIASES.items() if f not in given}
    rows = read_rows(path, cols, required, parameter, aliases, InputFileError)
    lines, bad_fields = rows.lines, rows.bad_fields
    get = {f: rows.get(f) for f in rows.found}
    profile = _per_value(get["profile"], lambda v: PROFILE_LABELS.get(_fold(v)))
    flag = _per_value(get["activated"], _fold)
    activated = flag.isin(TRUE_LABELS)
    activation = _dates(get["activation_date"], ACCOUNT_DATE_FORMATS)
    last = _dates(get["last_login"], ACCOUNT_DATE_FORMATS)
    checks = [
        (Reason.USER, get["user"].eq(""), "user"),
        (Reason.PROFILE, profile.isna(), "profile"),
        (Reason.VALUE, ~(activated | flag.isin(FALSE_LABELS)), "activated"),
        (Reason.TIMESTAMP, activation.isna() & get["activation_date"].ne(""), "activation_date"),
        (Reason.TIMESTAMP, last.isna() & get["last_login"].ne(""), "last_login"),
    ]
    if strict:
        raise_first(rows, [(REASON_LABELS[r], m, f, STRICT_HINTS.get(r)) for r, m, f in checks])
    df = pd.DataFrame(
        {
            "user": get["user"].astype(STRING),
            "kind": _per_value(profile, lambda p: KIND_OF.get(p) if p else None).astype(STRING),
            "profile": _per_value(profile, lambda p: str(p) if p else None).astype(STRING),
            "uai": get["uai"].str.upper().replace("", None).astype(STRING),
            "activated": activated.astype(bool),
            "activation_date": activation.astype("datetime64[ns]"),
            "last_login": last.astype("datetime64[ns]"),
        }
    )
    return _kept(df, lines, [c[:2] for c in checks], path, "accounts", bad_fields)


STRICT_HINTS = {
    Reason.PROFILE: " (élève, parent, enseignant, directeur, personnel…)",
    Reason.VALUE: " (oui/non, O/N, 1/0)",
    Reason.TIMESTAMP: " (attendu JJ/MM/AAAA ou AAAA-MM-JJ, heure permise)",
}
"""What a strict read says after the bad value it quotes; an empty id is never quoted."""


def read_daily(
    path: Path | str, columns: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, FileReport]:
    """The daily figures: uai, date, profile, connections, unique_visitors, loaded, activated."""
    path = Path(path)
    cols = mapping(DAILY_COLUMNS, columns, "daily")
    rows = read_rows(
        path,
        cols,
        tuple(f for f in cols if f not in DAILY_OPTIONAL),
        "columns.daily",
        error=ActivityInputError,
    )
    raw, found, lines, bad_fields = rows.raw, rows.found, rows.lines, rows.bad_fields
    raw = raw.rename(columns={h: cols[f] for f, h in found.items() if h is not None})
    profile = _per_value(raw[cols["profile"]], lambda v: PROFILE_LABELS.get(_fold(v)))
    date = _dates(raw[cols["date"]].str.strip(), DATE_FORMATS)
    numbers = {
        f: pd.to_numeric(raw[cols[f]].str.strip(), errors="coerce")
        for f in ("connections", "unique_visitors", "loaded", "activated")
    }
    bad_number = np.zeros(len(raw), dtype=bool)
    for s in numbers.values():
        bad_number |= (s.isna() | (s < 0)).to_numpy()
    uai = raw[cols["uai"]].str.strip().str.upper()
    checks = [
        (Reason.TIMESTAMP, date.isna()),
        (Reason.PROFILE, profile.isna()),
        (Reason.UAI, ~uai.str.fullmatch(UAI.pattern)),
        (Reason.VALUE, pd.Series(bad_number, index=raw.index)),
    ]
    df = pd.DataFrame(
        {
            "uai": uai,
            "date": date,
            "profile": profile.map(lambda p: str(p) if p else None),
            **{f: s.fillna(0).astype("int64") for f, s in numbers.items()},
        }
    )
    return _kept(df, lines, checks, path, "daily", bad_fields)


def _kept(df, lines, checks, path: Path, kind: str, bad_fields: np.ndarray):
    bad = np.zeros(len(df), dtype=bool)
    found: list[Malformed] = [Malformed(path.name, int(x), Reason.FIELDS) for x in bad_fields]
    for reason, mask in checks:
        m = mask.fillna(True).to_numpy(dtype=bool) & ~bad
        found += [Malformed(path.name, int(x), reason) for x in lines[m]]
        bad |= m
    found.sort(key=lambda m: m.line)
    # The intermediate Arrow strings (stripped, folded) are freed: give their pages back.
    memory.release_unused()
    report = FileReport(
        path.name, kind, int((~bad).sum()), int(bad.sum()) + len(bad_fields),
        tuple(found[:KEEP_MALFORMED]),
    )  # fmt: skip
    return (df[~bad].reset_index(drop=True) if bad.any() else df), report
