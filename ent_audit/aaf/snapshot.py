"""A ``Snapshot``: one extraction as four entity frames and link tables, and its loader.

``load`` accepts a folder, a ``.tar.gz`` archive or a list of XML files; the parts of every kind
are read in parallel processes (one per core) and concatenated in part order.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.archive import extracted
from ent_audit.aaf.frames import (
    EXTRA_COLUMNS,
    ISSUE_COLUMNS,
    MODIFICATION_COLUMNS,
    SKIPPED_COLUMNS,
    STRING,
    PartFrames,
    build,
    concat,
    finish,
    read_frames,
)
from ent_audit.aaf.naming import FIRST_DEGREE_KINDS, PartGroup, group_parts, parse_name
from ent_audit.aaf.reader import RawPart
from ent_audit.exceptions import EntAuditError, SnapshotError

T = TypeVar("T")

ENTITY_FRAMES = tuple(k.frame for k in schema.KINDS.values())

PARALLEL_MIN_BYTES = 32 << 20
"""Below this many bytes in all, starting worker processes costs more than it saves: a
Delta of an académie (15 MB of XML) reads in 1.4 s in this process, 2–3 s with two new
workers (each imports pandas and pyarrow before it reads)."""


@dataclass(frozen=True)
class ExtractionInfo:
    """Which extraction a snapshot holds."""

    perimeter: str
    extraction: str
    """``complete`` or ``delta``."""
    date: dt.date | None


@dataclass
class Snapshot:
    """The frames of one extraction. Link tables are attributes too (``snap.student_class``)."""

    extraction: ExtractionInfo
    structures: pd.DataFrame
    students: pd.DataFrame
    guardians: pd.DataFrame
    staff: pd.DataFrame
    links: dict[str, pd.DataFrame]
    extras: pd.DataFrame
    """Values of attributes the schema does not declare for their kind, kept aside."""
    issues: pd.DataFrame
    """What the reader noticed: id mismatches, untypable values, unknown attributes…"""
    skipped: pd.DataFrame
    """Records left out of a malformed file by ``recover=True``."""
    files: pd.DataFrame
    """One row per XML part read: kind, part, records, bytes, encoding, header metadata."""
    notes: list[str] = field(default_factory=list)
    """Files recognised but not read (second-degree kinds), kinds absent from the extraction."""
    modifications: pd.DataFrame = field(default_factory=lambda: finish(None, MODIFICATION_COLUMNS))
    """A Delta's modifyRequest operations, attribute by attribute (empty otherwise; never
    stored: a state is complete)."""

    def __getattr__(self, name: str) -> pd.DataFrame:
        links = self.__dict__.get("links", {})
        if name in links:
            return links[name]
        raise AttributeError(name)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every frame by name: entities, link tables, then extras, issues, skipped, files."""
        out = {name: getattr(self, name) for name in ENTITY_FRAMES}
        out.update(self.links)
        out.update(extras=self.extras, issues=self.issues, skipped=self.skipped, files=self.files)
        return out

    def counts(self) -> dict[str, int]:
        """Rows per entity frame."""
        return {name: len(getattr(self, name)) for name in ENTITY_FRAMES}

    def roster(self, uai: str) -> pd.DataFrame:
        """One school's pupils: one row each, with class, level, cycle and guardians.

        Who belongs to the school is :func:`ent_audit.aaf.population.memberships`.
        ``guardians`` reads ``NOM Prénom (lien)``, joined by ``; `` in a stable order.
        """
        from ent_audit.aaf import population

        schools = self.structures.loc[self.structures["uai"] == uai, "jointure"]
        if schools.empty:
            raise SnapshotError(f"UAI {uai!r} absente des structures de l'extraction")
        ids = set(schools)
        m = population.memberships(self)
        here = (m["uai"] == uai).fillna(False) & (m["kind"] == schema.STUDENT.name)
        members = set(m.loc[here.to_numpy(dtype=bool), "jointure"])
        classes = self.links["student_class"]
        classes = classes[classes["structure"].isin(ids)]
        pupils = self.students[self.students["jointure"].isin(members)]
        cols = ["jointure", "last_name", "first_name", "birth_date", "level", "cycle", "class_type"]
        out = pupils[cols].drop_duplicates("jointure")
        per_class = (
            classes.sort_values(["student", "class_id"])
            .groupby("student", sort=False)
            .agg(
                class_id=("class_id", lambda s: ", ".join(s.dropna())),
                class_name=("class_name", lambda s: ", ".join(s.dropna())),
            )
        )
        links = self.links["student_guardian"]
        links = links[(links["seen_from"] == "student") & links["student"].isin(members)]
        g = links.merge(
            self.guardians[["jointure", "last_name", "first_name"]].drop_duplicates("jointure"),
            left_on="guardian",
            right_on="jointure",
            how="left",
        )
        label = (
            (g["last_name"].fillna("?").str.upper() + " " + g["first_name"].fillna("")).str.strip()
            + " ("
            + g["link_label"].fillna("lien inconnu")
            + ")"
        )
        g = g.assign(label=label).sort_values(["student", "link_code", "guardian"])
        per_pupil = g.groupby("student", sort=False).agg(
            guardian_count=("guardian", "nunique"), guardians=("label", "; ".join)
        )
        out = out.merge(per_class, left_on="jointure", right_index=True, how="left").merge(
            per_pupil, left_on="jointure", right_index=True, how="left"
        )
        out["guardian_count"] = out["guardian_count"].fillna(0).astype("int64")
        for c in ("class_id", "class_name", "guardians"):
            out[c] = out[c].astype(STRING)
        level_rank = {lvl: i for i, lvl in enumerate(schema.LEVELS)}
        return (
            out.assign(_rank=out["level"].map(level_rank))
            .sort_values(["_rank", "class_name", "last_name", "first_name"])
            .drop(columns="_rank")
            .reset_index(drop=True)
        )


def _xml_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")


def load(
    path: str | Path | Sequence[str | Path],
    *,
    recover: bool = False,
    workers: int | None = None,
    progress: bool | None = False,
) -> Snapshot:
    """Load one extraction from a folder, a ``.tar.gz`` archive or a list of XML files.

    Strict by default: a malformed file, a missing part or files of several extractions raise.
    With ``recover=True`` well-formed records are kept and what was left out is in
    ``Snapshot.skipped``. ``workers`` processes read parts in parallel (default: one per core);
    ``progress`` shows a bar (``None``: only on a terminal).
    """
    kw = dict(recover=recover, workers=workers, progress=progress)
    if isinstance(path, (str, Path)):
        p = Path(path)
        if p.is_dir():
            return load_files(_xml_files(p), **kw)
        if p.name.endswith((".tar.gz", ".tgz")):
            with extracted(p) as files:
                return load_files(files, **kw)
        if p.suffix.lower() == ".xml":
            return load_files([p], **kw)
        raise SnapshotError(f"{p}: ni dossier, ni archive .tar.gz, ni fichier .xml")
    return load_files([Path(x) for x in path], **kw)


def _one_extraction(groups: list[PartGroup], recover: bool) -> tuple[ExtractionInfo, list[str]]:
    if not groups:
        raise SnapshotError("aucun fichier d'extraction AAF (.xml) trouvé")
    keys = sorted({(g.perimeter, g.extraction, g.date or dt.date.min) for g in groups})
    if len(keys) > 1:
        listed = ", ".join(f"{p} {e} {d:%Y%m%d}" for p, e, d in keys)
        raise SnapshotError(f"plusieurs extractions mêlées ({listed}): chargez-les une à une")
    notes = []
    for g in groups:
        if g.missing:
            msg = (
                f"{g.kind}: partie(s) {', '.join(f'{n:04d}' for n in g.missing)} absente(s) "
                f"entre {g.numbers[0]:04d} et {g.numbers[-1]:04d}"
            )
            if not recover:
                raise SnapshotError(msg)
            notes.append(msg)
    g = groups[0]
    return ExtractionInfo(g.perimeter, g.extraction, g.date), notes


def load_files(
    paths: Iterable[Path],
    *,
    recover: bool = False,
    workers: int | None = None,
    progress: bool | None = False,
) -> Snapshot:
    """Load the XML parts of one extraction (see :func:`load`).

    ``progress``: a progress bar over the parts (``None``: only on a terminal)."""
    groups = group_parts(paths)
    info, notes = _one_extraction(groups, recover)
    tasks = _tasks(groups, info, notes)
    results = _read_all(tasks, recover, workers, progress)
    return _assemble(info, tasks, results, notes)


def load_stream(
    paths: Iterable[Path], *, recover: bool = False, workers: int | None = None
) -> Snapshot:
    """Load the XML parts of one extraction as they arrive (an archive being extracted:
    :func:`ent_audit.aaf.archive.iter_extract`): each part goes to the reader pool as soon
    as it is there, so extraction and parsing overlap.

    The same snapshot and the same errors as :func:`load_files`, in the same order of
    precedence: an error of ``paths`` itself (a refused member, a bad CRC: raised while
    iterating) first, then one of the set of files (missing parts, mixed extractions), then
    a parse error.
    """
    return load_stream_derived(paths, None, recover=recover, workers=workers)[0]


def load_stream_derived(
    paths: Iterable[Path],
    derive: Callable[[str, pd.Series], pd.Series] | None,
    *,
    recover: bool = False,
    workers: int | None = None,
) -> tuple[Snapshot, dict[str, pd.DataFrame]]:
    """:func:`load_stream`, and per kind (``Eleve``…) a frame (``jointure``, ``derived``)
    with ``derive(kind, jointures)`` computed by the worker that parsed each part (a
    picklable function: the store passes its pseudonyms, so that they are computed on both
    cores during the parse instead of on one after it). Rows in the order of the kind's
    frame in the snapshot."""
    workers = workers or os.cpu_count() or 1
    read = functools.partial(read_frames, recover=recover, derive=derive)
    with worker_pool(workers) as pool:
        info, notes, tasks, results = gather_parts(paths, pool, read, recover)
    snap = _assemble(info, tasks, results, notes)
    derived: dict[str, pd.DataFrame] = {}
    if derive is not None:
        for kind in schema.KINDS:
            parts = [r for (k, _, _), r in zip(tasks, results, strict=True) if k == kind]
            derived[kind] = pd.DataFrame(
                {
                    "jointure": getattr(snap, schema.KINDS[kind].frame)["jointure"].to_numpy(),
                    "derived": pd.concat([r.derived for r in parts], ignore_index=True)
                    if parts
                    else pd.Series([], dtype=STRING),
                }
            )
    return snap, derived


SHARE_BACKLOG = 2
"""Parts a helper worker may hold (one being parsed, one queued) before the main process,
sharing the parse (``gather_parts(share=True)``), parses the next part itself: the helper
never waits for work, and the main process parses what the helper cannot take."""


def gather_parts(
    paths: Iterable[Path],
    pool: ProcessPoolExecutor | None,
    read: Callable[[Path, str], T],
    recover: bool,
    *,
    share: bool = False,
    helpers: int = 1,
) -> tuple[ExtractionInfo, list[str], list[tuple[str, Path, int]], list[T]]:
    """Each first-degree part to ``pool`` as soon as it arrives (an archive being extracted:
    extraction and parsing overlap), then the set judged (missing parts, mixed extractions),
    then each part's ``read(path, kind)`` (picklable) gathered in part order. A part the pool
    cannot take (none, or workers that could not start) is read in this process. Errors in the
    order :func:`load_stream` documents. The one loop of the in-memory and staged loads.

    ``share``: this process parses too, between two extracted parts, whenever the pool's
    ``helpers`` workers already hold :data:`SHARE_BACKLOG` parts each: one worker process
    fewer for the same two cores. A part it read that failed raises at its turn in part
    order, as a worker's failure does."""
    seen: list[Path] = []
    futures: dict[Path, Future] = {}
    backlog = SHARE_BACKLOG * max(helpers, 1)

    def submit(path: Path, kind: str) -> None:
        if pool is None:
            return
        if share and sum(not f.done() for f in futures.values()) >= backlog:
            futures[path] = _read_here(read, path, kind)
            return
        with contextlib.suppress(BrokenProcessPool):  # then read in this process
            futures[path] = pool.submit(read, path, kind)

    try:
        for p in paths:
            seen.append(p)
            with contextlib.suppress(EntAuditError):  # judged with the whole set below
                kind = parse_name(p).kind
                if kind in FIRST_DEGREE_KINDS:
                    submit(p, kind)
        groups = group_parts(seen)
        info, notes = _one_extraction(groups, recover)
        tasks = _tasks(groups, info, notes)
        results = []
        for kind, path, _ in tasks:
            if path not in futures:
                submit(path, kind)
            future = futures.get(path)  # None: no workers, read in this process
            try:
                results.append(read(path, kind) if future is None else future.result())
            except BrokenProcessPool:  # workers that could not start: read in this process
                results.append(read(path, kind))
    except BaseException:
        futures.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    return info, notes, tasks, results


def _read_here(read: Callable[[Path, str], T], path: Path, kind: str) -> Future:
    """``read(path, kind)`` in this process, now, as a finished :class:`Future`: its result
    or its error is given at the part's turn, as a worker's is (the errors of the whole set
    come first)."""
    done: Future = Future()
    try:
        done.set_result(read(path, kind))
    except Exception as err:
        done.set_exception(err)
    return done


def _tasks(
    groups: list[PartGroup], info: ExtractionInfo, notes: list[str]
) -> list[tuple[str, Path, int]]:
    """(kind, path, part number) of every part to read, in part order; ``notes`` gets the
    second-degree files left out and the kinds a complete extraction lacks."""
    tasks: list[tuple[str, Path, int]] = []
    for g in groups:
        if g.kind not in FIRST_DEGREE_KINDS:
            notes.append(
                f"{g.kind}: fichier du second degré ignoré ({', '.join(p.name for p in g.parts)})"
            )
            continue
        tasks.extend((g.kind, Path(p), n) for p, n in zip(g.parts, g.numbers, strict=False))
    present = {k for k, _, _ in tasks}
    if info.extraction == "complete":
        notes.extend(
            f"{k}: aucun fichier dans cette extraction complète"
            for k in FIRST_DEGREE_KINDS
            if k not in present
        )
    return tasks


PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Worker initializer: end this worker when the main process ends, even by SIGKILL.

    A pool worker otherwise waits on its task queue for minutes after its parent was killed,
    holding ~100 MB and the extracted personal data's memory. Two means, both cheap: the
    kernel kills the worker when its own parent (the forkserver, which itself exits when the
    main process goes) dies (``prctl(PR_SET_PDEATHSIG)``, Linux), and a daemon thread
    checks every half second that the main process still exists (other systems, races).
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own C library
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(0.5)

    threading.Thread(target=watch, name="ent-audit-watchdog", daemon=True).start()


PRELOAD = ("ent_audit.aaf.frames",)
"""What the forkserver imports once for all its workers (each then starts at once)."""


def worker_pool(workers: int, *, preload: Sequence[str] | None = PRELOAD) -> ProcessPoolExecutor:
    """The reader's pool: workers that end with the main process (:func:`_die_with`).

    ``preload``: the modules a forkserver imports once for all its workers, forked from it
    (workers that do not copy the caller's memory, whatever it holds). ``None``: the workers
    are forked from this process itself, at once, with nothing to import, when it runs no
    other thread (the command line at the start of a Complet's parse, holding only its
    imports): their resident memory is only the pages they touch (~105 MB against ~145 MB
    for a fresh interpreter importing pandas), and no resource tracker process runs beside
    them (a spawned pool starts one for its semaphores, 12 MB, until the process ends).
    With other threads (a notebook's kernel), whose locks a fork would copy held, or off
    Linux (macOS's system libraries are not safe to fork), each worker is a fresh
    interpreter (``spawn``)."""
    if preload is None:
        alone = threading.active_count() == 1 and sys.platform == "linux"
        ctx = multiprocessing.get_context("fork" if alone else "spawn")
    else:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_die_with, initargs=(os.getpid(),)
    )


class _NoBar:
    """A progress bar not shown."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress_bar(total: int, progress: bool | None):
    """tqdm's bar of ``total`` bytes read, if ``progress`` (None: if standard error is a
    terminal, as tqdm decides). Not shown, no bar is made: tqdm takes 16–19 ms to import and
    5–7 ms to make a bar, even disabled (it makes a lock between processes)."""
    if not (progress or (progress is None and sys.stderr.isatty())):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="lecture XML", leave=False)


def _read_all(
    tasks: list[tuple[str, Path, int]],
    recover: bool,
    workers: int | None,
    progress: bool | None = False,
) -> list[PartFrames]:
    workers = workers or os.cpu_count() or 1
    sizes = [p.stat().st_size for _, p, _ in tasks]
    with _progress_bar(sum(sizes), progress) as bar:
        if workers == 1 or len(tasks) == 1 or sum(sizes) < PARALLEL_MIN_BYTES:
            out = []
            for (k, p, _), size in zip(tasks, sizes, strict=True):
                out.append(read_frames(p, k, recover=recover))
                bar.update(size)
            return out
        order = sorted(range(len(tasks)), key=lambda i: -sizes[i])  # biggest first: balance
        results: dict[int, PartFrames] = {}
        try:
            with worker_pool(min(workers, len(tasks))) as pool:
                futures = {
                    pool.submit(read_frames, tasks[i][1], tasks[i][0], recover=recover): i
                    for i in order
                }
                try:
                    for fut in as_completed(futures):
                        results[futures[fut]] = fut.result()
                        bar.update(sizes[futures[fut]])
                except EntAuditError:
                    # The worker's own error (it pickles): the other parts are not worth
                    # reading, and it is not a reason to read everything again serially.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        except BrokenProcessPool as err:
            # Workers could not start (e.g. a __main__ read from standard input): same work,
            # one process, said out loud.
            warnings.warn(
                f"lecture parallèle impossible ({err}): lecture dans ce processus",
                RuntimeWarning,
                stacklevel=3,
            )
            for i in order:
                if i not in results:
                    results[i] = read_frames(tasks[i][1], tasks[i][0], recover=recover)
                    bar.update(sizes[i])
        return [results[i] for i in range(len(tasks))]


def _assemble(
    info: ExtractionInfo,
    tasks: list[tuple[str, Path, int]],
    results: list[PartFrames],
    notes: list[str],
) -> Snapshot:
    by_kind: dict[str, list[PartFrames]] = {k: [] for k in schema.KINDS}
    for (kind, _, _), res in zip(tasks, results, strict=False):
        by_kind[kind].append(res)
    for kind, parts in by_kind.items():
        if not parts:  # absent kind: empty frames with the right columns and dtypes
            parts.append(build(RawPart("", "UTF-8", False, {}), schema.KINDS[kind], ""))
    entities = {
        schema.KINDS[k].frame: concat([p.entity for p in parts]) for k, parts in by_kind.items()
    }
    link_parts: dict[str, list[pd.DataFrame]] = {}
    for parts in by_kind.values():
        for p in parts:
            for name, df in p.links.items():
                link_parts.setdefault(name, []).append(df)
    links = {name: concat(link_parts[name]) for name in schema.LINK_TABLES}

    files = files_frame(tasks, [r.info for r in results])
    return Snapshot(
        extraction=info,
        links=links,
        extras=gathered(results, "extras", EXTRA_COLUMNS),
        issues=all_issues(info, results, entities),
        skipped=gathered(results, "skipped", SKIPPED_COLUMNS),
        modifications=gathered(results, "modifications", MODIFICATION_COLUMNS),
        files=files,
        notes=notes,
        **entities,
    )


FILES_COLUMNS = (
    "source_file",
    "kind",
    "part",
    "records",
    "skipped",
    "bytes",
    "encoding",
    "declared",
    "metadata",
)


def files_frame(tasks: Sequence[tuple[str, Path, int]], infos: Sequence[dict]) -> pd.DataFrame:
    """``Snapshot.files``: one row per part read (its reader's ``info``), in part order."""
    return pd.DataFrame(
        [
            {
                **info,
                "part": n,
                "bytes": p.stat().st_size,
                "metadata": json.dumps(info["metadata"], ensure_ascii=False),
            }
            for (_, p, n), info in zip(tasks, infos, strict=False)
        ],
        columns=list(FILES_COLUMNS),
    )


def gathered(results: Sequence, attr: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """The parts' ``attr`` frames (issues, skipped records…) one after the other, in part
    order, with ``columns`` and their dtypes even when there is none."""
    frames = [f for f in (getattr(r, attr) for r in results) if f is not None and len(f)]
    return finish(pd.concat(frames, ignore_index=True) if frames else None, columns)


def all_issues(
    info: ExtractionInfo, results: Sequence, entities: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The parts' issues, then, in a complete extraction, every record that is not an
    addition (``entities``: each kind's frame, with its ``op``)."""
    issues = [gathered(results, "issues", ISSUE_COLUMNS)]
    if info.extraction == "complete":
        issues += [
            _delta_operations(kind, df)
            for kind, df in ((schema.KIND_BY_FRAME[f].name, df) for f, df in entities.items())
        ]
    return finish(
        pd.concat([i for i in issues if len(i)] or issues[:1], ignore_index=True), ISSUE_COLUMNS
    )


def _delta_operations(kind: str, entity: pd.DataFrame) -> pd.DataFrame:
    """A complete extraction holds additions only: anything else is reported, row by row."""
    odd = entity[entity["op"] != "add"]
    return pd.DataFrame(
        {
            "code": "unexpected_operation",
            "kind": kind,
            "jointure": odd["jointure"],
            "attribute": None,
            "value": odd["op"].astype(str),
            "message": "modifyRequest/deleteRequest dans une extraction complète",
            "source_file": odd["source_file"].astype(str),
            "record": odd["record"],
            "line": odd["line"],
        }
    )
