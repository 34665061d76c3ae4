"""The national view: what each académie publishes, and the aggregation of those publications.

France is about 30 académies, each ingested into its own store with its own pseudonym key:
pseudonyms are not comparable across stores and nothing personal may leave one. So each
académie **publishes** a small, pseudonym-free Parquet file of the pilot console's indicators
(:mod:`ent_audit.analyses.activity`, whose definitions it reuses as they are), and the national
level only ever reads those files:

- ``academie`` rows (one per profile and ``*``): the store's own figures, exact distinct counts;
- ``departement`` rows (one per département and profile; département = the UAI's first three
  characters, :func:`~ent_audit.analyses.activity.indicators.departement_of`): the store's own
  distinct counts per département, grouped in the activity computation's queries, so a person
  in schools of two départements (a guardian, a teacher) counts once in each and once in the
  académie, never twice. Schema version 1 summed them from circonscriptions; its files are
  refused (republish them);
- ``circonscription`` and ``school`` rows (profile ``*`` only): people counts masked under the
  small-cell threshold (:func:`ent_audit.privacy.mask_partition`: schools within their
  circonscription, circonscriptions within their département, and a masked circonscription
  always keeps a masked school, so it cannot be rebuilt from its schools). A masked cell is
  null in the file and named in ``masked``. These rows are for the académie's own maps: the
  national aggregation never reads them.

**Where the publication is written, and why there.** ``ent-audit activity-summary --store DIR``
(:func:`publish_store`) writes ``DIR/published/activity-summary.parquet``: a report writes only
under its run folder and its runs are rotated (``--keep``), whereas the publication is a
property of the store (its académie, its state, its key's identity) that the national level
names by the store's folder; it is the store's output, computed by the analyses, after the
store in the flow fetch → ingest → store → analyses → outputs. The académie ships the file (or
its ``published/`` folder) to the national level: no personal data, no pseudonym in it.

**Aggregation** (:func:`aggregate`, ``ent-audit national --stores DIR...``): the queries of
``national.sql``, plain SQL run by DuckDB over ``read_parquet([...], union_by_name = true)``,
that a distributed engine runs unchanged over the same files. National sums are exact because
académies' populations are disjoint (a person is in one académie's AAF): unique visitors of
several académies add up; unique visitors of several periods never do, so every publication
must cover the same period. Rates are recomputed from the summed counts, never averaged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ent_audit.analyses.activity.indicators import (
    ALL,
    LABELS,
    PROFILE_NAMES,
    ActivityResult,
    departement_of,
)
from ent_audit.exceptions import NationalInputError
from ent_audit.io import private_dir, write_atomic, write_csv, write_json
from ent_audit.privacy import SMALL_CELL, mask_partition

SCHEMA_VERSION = 2
"""Bumped on any change of :data:`COLUMNS` or of what a row means: the national level refuses
another version. 2: exact département rows (distinct people), no ``exact`` column."""
PUBLISHED = Path("published") / "activity-summary.parquet"
"""Where a store's publication lives, relative to the store (or a folder that holds a copy)."""
FILE_NAME = PUBLISHED.name
META_KEY = b"ent_audit.schema_version"

PEOPLE = ("loaded", "activated", "active_7d", "active_30d", "unique_visitors")
"""Counts of people: masked under the small-cell threshold in circonscription and school rows."""
EVENTS = ("visits", "connections")
SCHOOLS = ("schools_total", "schools_open", "schools_stopped")

COLUMNS = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("academie", pa.string()),
        ("store_id", pa.string()),
        ("code_version", pa.string()),
        ("state_date", pa.date32()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("small_cell", pa.int32()),
        ("level", pa.string()),
        ("departement", pa.string()),
        ("circonscription", pa.string()),
        ("uai", pa.string()),
        ("profile", pa.string()),
        *[(c, pa.int64()) for c in SCHOOLS],
        *[(c, pa.int64()) for c in PEOPLE],
        *[(c, pa.int64()) for c in EVENTS],
        ("masked", pa.string()),
    ],
    metadata={META_KEY: str(SCHEMA_VERSION).encode()},
)
"""The stable schema of a publication (one row per level, place and profile)."""

LEVELS = ("academie", "departement", "circonscription", "school")


def store_id(key: bytes) -> str:
    """A store's identity, derived from its key (which it does not reveal): two copies of one
    store have the same id, two stores different ones."""
    return hmac.new(key, b"ent-audit national store id", hashlib.sha256).hexdigest()[:16]


# -- what an académie publishes ----------------------------------------------------------------


def publication(
    profiles: pd.DataFrame,
    schools: pd.DataFrame,
    *,
    academie: str,
    store: str,
    period: tuple[dt.date, dt.date],
    state_date: dt.date,
    small_cell: int = SMALL_CELL,
    code_version: str = "",
) -> pa.Table:
    """The publication of one académie, as an Arrow table of :data:`COLUMNS`.

    ``profiles``: the activity's long table (``level`` school / circonscription / departement
    / department = the whole store, ``key``, ``profile``, counts, as
    :attr:`ActivityResult.profiles`); ``schools``: one row per school (``uai``,
    ``circonscription``, ``open``, ``stopped``).
    """
    code_version = code_version or _code_version()
    figures = [*PEOPLE, *EVENTS]
    sch = schools[["uai", "circonscription", "open", "stopped"]].copy()
    sch["departement"] = departement_of(sch["uai"])
    dept_of_circ = sch.sort_values("uai").drop_duplicates("circonscription")
    dept_of_circ = dept_of_circ.set_index("circonscription")["departement"]
    sch_counts = sch.assign(
        schools_total=1,
        schools_open=sch["open"].astype(int),
        schools_stopped=sch["stopped"].astype(int),
    )

    def rows(level: str) -> pd.DataFrame:
        p = profiles[profiles["level"] == level]
        return p[["key", "profile", *figures]].copy()

    # académie: the store's exact figures; school counts on the '*' row only
    acad = rows("department").drop(columns="key")
    acad["level"] = "academie"
    for c in SCHOOLS:
        acad[c] = np.where(acad["profile"] == ALL, sch_counts[c].sum(), None)

    # départements: the computation's own distinct counts per département (every département
    # with a school has its '*' row, zero when nobody is there)
    per_dept = sch_counts.groupby("departement")[list(SCHOOLS)].sum()
    dept = rows("departement").rename(columns={"key": "departement"})
    every = pd.DataFrame({"departement": per_dept.index, "profile": ALL})
    dept = every.merge(dept, how="outer", on=["departement", "profile"])
    dept[figures] = dept[figures].fillna(0).astype("int64")
    dept["level"] = "departement"
    for c in SCHOOLS:
        dept[c] = np.where(dept["profile"] == ALL, dept["departement"].map(per_dept[c]), None)

    # circonscriptions and schools: '*' only, people masked
    circ = rows("circonscription")
    circ = (
        circ[circ["profile"] == ALL]
        .drop(columns="profile")
        .rename(columns={"key": "circonscription"})
    )
    per_circ = sch_counts.groupby("circonscription")[list(SCHOOLS)].sum().reset_index()
    circ = per_circ.merge(circ, how="left", on="circonscription")
    circ["departement"] = circ["circonscription"].map(dept_of_circ)
    school = rows("school")
    school = school[school["profile"] == ALL].drop(columns="profile").rename(columns={"key": "uai"})
    school = sch_counts.drop(columns=["open", "stopped"]).merge(school, how="left", on="uai")
    for df in (circ, school):
        df[figures] = df[figures].fillna(0).astype("int64")
        df["profile"] = ALL
    circ["level"], school["level"] = "circonscription", "school"
    circ_hidden = _hide(circ, "departement", small_cell)
    school_hidden = _hide(school, "circonscription", small_cell)
    _keep_one_hidden(school, school_hidden, circ, circ_hidden)
    circ = _apply(circ, circ_hidden)
    school = _apply(school, school_hidden)

    out = pd.concat([acad, dept, circ, school], ignore_index=True)
    out["schema_version"] = SCHEMA_VERSION
    out["academie"] = academie
    out["store_id"] = store
    out["code_version"] = code_version
    out["state_date"] = state_date
    out["period_start"], out["period_end"] = period
    out["small_cell"] = small_cell
    for c in ("departement", "circonscription", "uai", "masked"):
        if c not in out:
            out[c] = None
    for c in (*SCHOOLS, *PEOPLE, *EVENTS):
        out[c] = pd.array(out[c], dtype="Int64")
    out = out[COLUMNS.names]
    return pa.Table.from_pandas(out, schema=COLUMNS, preserve_index=False)


def _code_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("ent-audit")
    except metadata.PackageNotFoundError:
        return "absent"


def _hide(df: pd.DataFrame, group: str, threshold: int) -> pd.DataFrame:
    """Boolean frame: the people cells to mask, each column partitioned within ``group``."""
    hidden = pd.DataFrame(False, index=df.index, columns=list(PEOPLE))
    for c in PEOPLE:
        small = (df[c] > 0) & (df[c] < threshold)
        # only groups holding a small cell need the partition rule (a few, not thousands)
        for key in df.loc[small, group].unique():
            idx = df.index[df[group] == key]
            masked = mask_partition(df.loc[idx, c], threshold)
            hidden.loc[idx, c] = masked.map(lambda v: isinstance(v, str)).to_numpy(bool)
    return hidden


def _keep_one_hidden(school, school_hidden, circ, circ_hidden) -> None:
    """A masked circonscription whose schools all show would be their sum: mask its smallest
    non-zero school too (its value then stays unknown, as the circonscription's)."""
    for c in PEOPLE:
        masked_circs = set(circ.loc[circ_hidden[c], "circonscription"])
        if not masked_circs:
            continue
        in_masked = school["circonscription"].isin(masked_circs)
        has_hidden = school_hidden[c].groupby(school["circonscription"]).transform("any")
        cand = school[in_masked & ~has_hidden & (school[c] > 0)]
        if len(cand):
            first = cand.sort_values([c, "uai"]).drop_duplicates("circonscription").index
            school_hidden.loc[first, c] = True


def _apply(df: pd.DataFrame, hidden: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in PEOPLE:
        out[c] = pd.array(df[c], dtype="Int64")
        out.loc[hidden[c].to_numpy(), c] = pd.NA
    names = np.array(PEOPLE, dtype=object)
    out["masked"] = [",".join(names[row]) or None for row in hidden.to_numpy()]
    return out


def from_result(
    result: ActivityResult,
    *,
    academie: str,
    store: str,
    state_date: dt.date,
) -> pa.Table:
    """The publication of an activity result (what :func:`publish_store` writes)."""
    return publication(
        result.profiles,
        result.schools,
        academie=academie,
        store=store,
        period=(result.period.start, result.period.end),
        state_date=state_date,
        small_cell=result.small_cell,
    )


def write_publication(table: pa.Table, folder: Path | str) -> Path:
    """``folder/activity-summary.parquet``, atomically (0600, folder 0700)."""
    folder = private_dir(folder)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return write_atomic(folder / FILE_NAME, buf.getvalue())


ACADEMIE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def publish_store(
    store: Path | str,
    *,
    academie: str = "",
    accounts: str = "",
    daily: str = "",
    period_start: str | dt.date = "",
    period_end: str | dt.date = "",
    open_threshold: int = 1,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    small_cell: int = SMALL_CELL,
) -> Path:
    """``ent-audit activity-summary``: compute the store's indicators (the activity report's
    own computation) and write its publication into ``STORE/published/``."""
    from ent_audit.analyses import activity
    from ent_audit.store.store import Store

    st = Store(store, create=False)
    extraction = st.latest(columns={}).extraction  # its name and date: no column read
    academie = academie or extraction.perimeter
    if not ACADEMIE.match(academie):
        raise NationalInputError(
            store, f"code d'académie {academie!r} invalide (lettres, chiffres, _ -)"
        )
    result = activity.from_store(
        store, accounts=accounts, daily=daily, period_start=period_start, period_end=period_end,
        open_threshold=open_threshold, columns=columns, small_cell=small_cell,
    )  # fmt: skip
    table = from_result(
        result, academie=academie, store=store_id(st.key), state_date=extraction.date
    )
    return write_publication(table, st.path / PUBLISHED.parent)


# -- the national aggregation ------------------------------------------------------------------


def queries() -> dict[str, str]:
    """The named queries of ``national.sql`` (``-- name: x`` starts one)."""
    text = (Path(__file__).with_name("national.sql")).read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        name, _, body = block.partition("\n")
        out[name.strip()] = body.strip().rstrip(";")
    return out


@dataclass(frozen=True)
class Source:
    """One académie's publication as read."""

    folder: str
    file: str
    academie: str
    store_id: str
    state_date: dt.date
    code_version: str

    def to_dict(self) -> dict:
        return {**self.__dict__, "state_date": str(self.state_date)}


@dataclass(frozen=True)
class NationalResult:
    """The indicators at national, académie and département level (``frame``: one row per
    level, place and profile; rates from summed counts)."""

    period: tuple[dt.date, dt.date]
    sources: tuple[Source, ...]
    frame: pd.DataFrame
    extra: dict = field(default_factory=dict)

    def row(self, level: str, academie: str | None = None, profile: str = ALL) -> dict:
        f = self.frame
        sel = (f["level"] == level) & (f["profile"] == profile)
        if academie is not None:
            sel &= f["academie"] == academie
        return f[sel].iloc[0].to_dict()

    def to_dict(self) -> dict:
        """``summary.json``: stable English keys."""

        def clean(r: dict) -> dict:
            return {k: _plain(r[k]) for k in _FIGURES}

        f = self.frame
        every = f[f["profile"] == ALL]
        nat = every[every["level"] == "national"]
        return {
            "schema_version": SCHEMA_VERSION,
            "period_start": str(self.period[0]),
            "period_end": str(self.period[1]),
            "academies": len(self.sources),
            "sources": [s.to_dict() for s in self.sources],
            "national": clean(nat.iloc[0].to_dict()) if len(nat) else {},
            "by_profile": {
                r["profile"]: clean(r)
                for r in f[(f["level"] == "national") & (f["profile"] != ALL)].to_dict("records")
            },
            "by_academie": {
                r["academie"]: clean(r)
                for r in every[every["level"] == "academie"].to_dict("records")
            },
            "by_departement": {
                f"{r['academie']}/{r['departement']}": clean(r)
                for r in every[every["level"] == "departement"].to_dict("records")
            },
        }


_FIGURES = ("schools_total", "schools_open", "open_share", "schools_stopped", "loaded", "activated",
            "activation_rate", "active_7d", "active_30d", "active_rate", "visits",
            "unique_visitors", "visits_per_visitor", "connections")  # fmt: skip


def _plain(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def locate(folder: Path | str) -> Path:
    """The publication file of ``folder``: a store's ``published/`` file, or a folder holding a
    copy of it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NationalInputError(
            folder, "dossier introuvable (attendu un store ou un dossier de résumé)"
        )
    for candidate in (folder / PUBLISHED, folder / FILE_NAME):
        if candidate.is_file():
            return candidate
    if (folder / "states").is_dir():
        raise NationalInputError(
            folder,
            "store sans résumé d'activité publié (lancez ent-audit activity-summary --store)",
        )
    raise NationalInputError(folder, f"ni un store ni un dossier contenant {FILE_NAME}")


def _check_schema(folder: Path, file: Path) -> None:
    try:
        meta = pq.read_schema(file)
    except (pa.ArrowException, OSError) as err:
        raise NationalInputError(folder, f"résumé illisible ({file.name}: {err})") from None
    version = (meta.metadata or {}).get(META_KEY)
    if version != str(SCHEMA_VERSION).encode():
        shown = version.decode(errors="replace") if version else "absente"
        raise NationalInputError(
            folder, f"résumé de version de schéma {shown}, attendu {SCHEMA_VERSION} "
            "(republiez-le avec cette version d'ent-audit)",
        )  # fmt: skip
    missing = [n for n in COLUMNS.names if n not in meta.names]
    if missing:
        raise NationalInputError(folder, f"résumé sans la colonne {missing[0]!r}")
    wrong = [n for n in COLUMNS.names if not meta.field(n).type.equals(COLUMNS.field(n).type)]
    if wrong:
        raise NationalInputError(folder, f"résumé dont la colonne {wrong[0]!r} n'a pas le bon type")


def connect(files: Sequence[Path | str], *, memory_limit: str = "1GB"):
    """A DuckDB connection with the ``publications`` view over ``files`` (union by name)."""
    import duckdb

    con = duckdb.connect(config={"memory_limit": memory_limit})
    con.execute("SET enable_progress_bar = false")
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    con.execute(
        "CREATE VIEW publications AS SELECT * FROM "
        f"read_parquet([{listed}], union_by_name = true, filename = true)"
    )
    return con


def aggregate(stores: Sequence[Path | str]) -> NationalResult:
    """The national indicators from the publications of ``stores`` (store folders or folders
    holding a copy of a publication). Every refusal names the folder at fault."""
    if not stores:
        raise NationalInputError("--stores", "aucun dossier donné")
    folders = [Path(s) for s in stores]
    seen: dict[Path, Path] = {}
    for f in folders:
        if f.resolve() in seen:
            raise NationalInputError(f, f"dossier donné deux fois (déjà comme {seen[f.resolve()]})")
        seen[f.resolve()] = f
    files = [locate(f) for f in folders]
    for folder, file in zip(folders, files, strict=True):
        _check_schema(folder, file)
    q = queries()
    con = connect(files)
    try:
        ids = con.execute(q["identities"]).df()
        folder_of = {str(f): d for f, d in zip(files, folders, strict=True)}
        ids["folder"] = ids["filename"].map(folder_of)
        ids = ids.set_index("folder").loc[folders].reset_index()
        _check_identities(ids)
        frame = con.execute(q["indicators"]).df()
    finally:
        con.close()
    first = ids.iloc[0]
    sources = tuple(
        Source(
            str(r["folder"]),
            str(r["filename"]),
            r["academie"],
            r["store_id"],
            pd.Timestamp(r["state_date"]).date(),
            r["code_version"],
        )
        for r in ids.to_dict("records")
    )
    period = (pd.Timestamp(first["period_start"]).date(), pd.Timestamp(first["period_end"]).date())
    counts = ["publications", *SCHOOLS, *PEOPLE, *EVENTS]
    frame[counts] = frame[counts].astype("Int64")  # sums over nulls came back as floats
    return NationalResult(period, sources, frame)


def _check_identities(ids: pd.DataFrame) -> None:
    seen_acad: dict[str, Path] = {}
    seen_store: dict[str, Path] = {}
    ref = None
    for r in ids.to_dict("records"):
        folder = r["folder"]
        if r["rows"] == 0 or r["academie"] is None:
            raise NationalInputError(folder, "résumé vide")
        if r["academie"] != r["academie_max"]:
            raise NationalInputError(folder, "résumé mêlant plusieurs académies")
        if r["period_start"] != r["period_start_max"] or r["period_end"] != r["period_end_max"]:
            raise NationalInputError(folder, "résumé mêlant plusieurs périodes")
        if r["academie"] in seen_acad:
            raise NationalInputError(
                folder, f"académie {r['academie']} déjà fournie par {seen_acad[r['academie']]}"
            )
        if r["store_id"] in seen_store:
            raise NationalInputError(
                folder, f"même store (identifiant {r['store_id']}) que {seen_store[r['store_id']]}"
            )
        seen_acad[r["academie"]] = folder
        seen_store[r["store_id"]] = folder
        period = (pd.Timestamp(r["period_start"]).date(), pd.Timestamp(r["period_end"]).date())
        if ref is None:
            ref = (period, folder)
        elif period != ref[0]:
            raise NationalInputError(
                folder, f"période du {period[0]} au {period[1]}, différente de celle de "
                f"{ref[1]} (du {ref[0][0]} au {ref[0][1]}) : les visiteurs uniques de périodes "
                "différentes ne s'additionnent pas",
            )  # fmt: skip


LEVEL_NAMES = {"national": "France", "academie": "académie", "departement": "département"}
CSV_LABELS = {
    "level": "niveau",
    "academie": "académie",
    "departement": "département",
    "profile": "profil",
    "publications": "résumés",
    **{k: v for k, v in LABELS.items() if k in _FIGURES},
}


def people_frame(result: NationalResult) -> pd.DataFrame:
    """The CSV for people: French headers, levels and profiles in French."""
    f = result.frame.copy()
    f["level"] = f["level"].map(LEVEL_NAMES)
    f["profile"] = f["profile"].map(PROFILE_NAMES).fillna(f["profile"])
    return f[list(CSV_LABELS)].rename(columns=CSV_LABELS)


def write(result: NationalResult, out: Path | str) -> dict[str, Path]:
    """``national.csv`` (French, ``;``, BOM) and ``summary.json`` (English keys) in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = write_csv(out / "national.csv", people_frame(result), perms=0o644)
    summary = write_json(out / "summary.json", result.to_dict(), perms=0o644)
    return {"csv": csv, "summary": summary}
