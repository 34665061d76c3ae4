"""The ingest pipeline: archives in date order, each one through named guards, then committed.

Each guard is a small function that raises :class:`IngestRefused` naming itself (``guard``)
and the archive; the README lists them with the parameter that overrides each (most have
none: they protect the state). An archive is ingested whole or not at all; a refused one
leaves the store's data byte-for-byte unchanged. The store itself (layout, locks, atomic
commit, verification) is :mod:`ent_audit.store.store`.

Guards, in the order they run:

============================  ===============================================  ==============
guard                         refuses                                          override
============================  ===============================================  ==============
``name``                      a name outside the nomenclature                  none
``perimeter``                 another perimeter than the store's (its first    none (another
                              Complet's)                                       store)
``newer``                     a Complet not newer than the state               none
``archive``                   unsafe members, a corrupt gzip (CRC, length),    none
                              malformed XML, entities, unknown encodings
``files_match_name``          files of another extraction than the name says   none
``complete``                  a Complet missing one of the four kinds, or      none
                              whose kind has no record
``wrong_kind``                a record whose category is not its file's kind   none
``duplicate_jointure``        one jointure twice in one kind of a Complet      none
``delta_records``             a Delta record without jointure, or a            none
                              modification whose operation is unknown
``delta``                     a Delta with a blocking anomaly (any anomaly      ``strict``,
                              with ``strict``)                                 ``max_gap_days``
``mass_change``               removing more than ``max_delete_share`` and      ``accept_mass_
                              more than ``max_delete_count`` of a kind         change``
============================  ===============================================  ==============
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from ent_audit import memory
from ent_audit.aaf import population, schema
from ent_audit.aaf.archive import extract, iter_extract
from ent_audit.aaf.frames import first_rows, isin
from ent_audit.aaf.naming import ArchiveName, parse_archive_name
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot, load_files, load_stream_derived
from ent_audit.aaf.staged import StagedExtraction, load_staged
from ent_audit.exceptions import (
    EntAuditError,
    IngestAborted,
    IngestRefused,
    NamingError,
    StoreError,
)
from ent_audit.io import sha256
from ent_audit.store import journal, partial, presence, pseudonym, sides
from ent_audit.store.apply import MAX_GAP_DAYS, Anomaly, apply_delta, check_delta

if TYPE_CHECKING:
    from ent_audit.store.store import Staging, Store

KINDS = tuple(schema.KINDS.values())

STREAM_MIN_BYTES = 1 << 20
"""An archive this big (compressed) is parsed by the reader pool while it is extracted;
below, starting the pool costs more than it saves: extracted whole, then read."""

MAX_DELETE_SHARE = 0.10
MAX_DELETE_COUNT = 50
"""Mass-change guard defaults: a kind may lose up to 10 % or up to 50 records (whichever is
larger) in one extraction; beyond both, a human confirms (``accept_mass_change``)."""


@dataclass(frozen=True)
class Guards:
    """The overridable guards' settings, one field per command-line option."""

    strict: bool = False
    """``--strict``: a Delta with any anomaly is refused, not only a blocking one."""
    max_gap_days: int = MAX_GAP_DAYS
    """``--max-gap-days``: a Delta further than this after the state is reported (``gap``)."""
    max_delete_share: float = MAX_DELETE_SHARE
    """``--max-delete-share``: share of a kind's records an extraction may remove…"""
    max_delete_count: int = MAX_DELETE_COUNT
    """``--max-delete-count``: …and number; refused only beyond both."""
    accept_mass_change: bool = False
    """``--accept-mass-change``: a human says the mass removal is expected."""
    overlay_days: int = partial.MAX_DAYS
    """``--overlay-days``: a Delta written as an overlay over a base whose first overlay is
    older than this many days writes the whole state instead (:mod:`.partial`)."""


@dataclass(frozen=True)
class IngestResult:
    """What happened to one archive."""

    archive: str
    sha256: str
    status: str
    """``ingested``, ``already`` (same SHA-256 ingested before: nothing done) or ``refused``."""
    extraction: str | None = None
    date: dt.date | None = None
    message: str = ""
    anomalies: tuple[Anomaly, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    guard: str | None = None
    """The guard that refused the archive (see the module's table)."""
    divergences: int = 0
    """A Complet over a state built by Deltas: records and values the Deltas did not give."""

    def to_dict(self, key: bytes | None = None) -> dict:
        """JSON-ready; with ``key`` the anomalies' jointures become pseudonyms (for logs)."""
        out = asdict(self)
        out["date"] = self.date.isoformat() if self.date else None
        anomalies = []
        for a in self.anomalies:
            d = a.to_dict()
            if key is not None and a.jointure is not None:
                d["jointure"] = pseudonym.pseudonym(key, a.kind or "", a.jointure)
            anomalies.append(d)
        out["anomalies"] = anomalies
        return out


# -- the guards ------------------------------------------------------------------------------


def guard_name(archive: Path) -> ArchiveName:
    """The archive's name must follow the nomenclature (it carries perimeter, type, date)."""
    try:
        return parse_archive_name(archive)
    except NamingError as err:
        raise IngestRefused(archive.name, "name", str(err)) from None


def guard_perimeter(archive: str, perimeter: str, store_perimeter: str | None) -> None:
    """A store belongs to the perimeter of its first Complet; nothing else enters it."""
    if store_perimeter is not None and perimeter != store_perimeter:
        raise IngestRefused(
            archive,
            "perimeter",
            f"périmètre {perimeter!r} différent de celui du store ({store_perimeter!r}): "
            "une autre académie ou commune va dans un autre store",
        )


def guard_newer(archive: str, name: ArchiveName, state: ExtractionInfo | None) -> None:
    """A Complet replaces the state only if it is newer (known from the name, before reading)."""
    if (
        name.extraction == "complete"
        and state is not None
        and not (name.date and state.date and name.date > state.date)
    ):
        raise IngestRefused(
            archive, "newer", f"Complet du {name.date} pas postérieur à l'état du {state.date}"
        )


def guard_complete(archive: str, snap: Snapshot) -> None:
    """A Complet carries the four kinds, each with at least one record: a missing or empty
    file would otherwise replace a whole population by nothing."""
    empty = [k.name for k in schema.KINDS.values() if len(getattr(snap, k.frame)) == 0]
    if empty:
        present = set(snap.files["kind"]) if len(snap.files) else set()
        what = ", ".join(f"{k} ({'vide' if k in present else 'absent'})" for k in empty)
        raise IngestRefused(
            archive, "complete", f"Complet incomplet: aucun enregistrement pour {what}"
        )


def guard_kinds(archive: str, snap: Snapshot) -> None:
    """Every record is of its file's kind (no Eleve record inside the EtabEducNat file)."""
    issues = snap.issues
    wrong = issues[issues["code"] == "wrong_category"]
    if len(wrong):
        r = wrong.iloc[0]
        raise IngestRefused(
            archive,
            "wrong_kind",
            f"{r['source_file']}:{r['line']}: enregistrement de type {r['value']!r} dans un "
            f"fichier {r['kind']} ({len(wrong)} en tout)",
        )


def guard_unique(archive: str, snap: Snapshot) -> None:
    """One jointure once per kind of a Complet; a repeated one names both places (this also
    stops a "record bomb" of one record repeated)."""
    for kind in schema.KINDS.values():
        frame = getattr(snap, kind.frame)
        if first_rows(frame, ["jointure"]).all():  # Arrow codes: the usual case, quickly
            continue
        dup = frame["jointure"].duplicated(keep=False) & frame["jointure"].notna()
        if dup.any():
            rows = frame.loc[dup, ["jointure", "source_file", "line"]]
            first = rows.iloc[0]
            second = rows[rows["jointure"] == first["jointure"]].iloc[1]
            raise IngestRefused(
                archive,
                "duplicate_jointure",
                f"{kind.name}: jointure {first['jointure']!r} en double "
                f"({first['source_file']}:{first['line']} et "
                f"{second['source_file']}:{second['line']}; "
                f"{int(dup.sum())} enregistrement(s) concerné(s))",
            )


def guard_delta_records(archive: str, snap: Snapshot) -> None:
    """A Delta record needs a jointure, and each modification an operation DSML defines
    (``replace``, ``add``, ``delete``): a record is never altered on a guess."""
    issues = snap.issues
    bad = issues[issues["code"].isin(["unsupported_operation", "unnamed_attribute"])]
    if len(bad):
        r = bad.iloc[0]
        raise IngestRefused(
            archive,
            "delta_records",
            f"{r['source_file']}:{r['line']}: {r['message']} ({len(bad)} en tout): Delta refusé",
        )
    for kind in schema.KINDS.values():
        frame = getattr(snap, kind.frame)
        missing = frame[frame["jointure"].isna()]
        if len(missing):
            r = missing.iloc[0]
            raise IngestRefused(
                archive,
                "delta_records",
                f"{r['source_file']}:{r['line']}: enregistrement {kind.name} sans jointure "
                f"ni identifiant ({len(missing)} en tout): Delta refusé",
            )


def guard_delta(archive: str, state: Snapshot | None, delta: Snapshot, guards: Guards):
    """The Delta's anomalies; refused with a blocking one (any one with ``strict``)."""
    anomalies = tuple(check_delta(state, delta, max_gap_days=guards.max_gap_days))
    blocking = [a for a in anomalies if a.blocking or guards.strict]
    if blocking:
        more = f" (et {len(blocking) - 1} autre(s) anomalie(s))" if len(blocking) > 1 else ""
        err = IngestRefused(archive, "delta", f"Delta refusé: {blocking[0].message}{more}")
        err.anomalies = anomalies
        raise err
    return anomalies


def removed_per_kind(
    before: Mapping[str, pd.Series],
    after: Snapshot,
    named: Mapping[str, pd.Series] | None = None,
    totals: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, int]]:
    """Per kind: (records before, records of ``before`` no longer in ``after``). ``named``:
    per frame, the only records that can have gone (a Delta's): the others are counted, not
    compared, so the comparison follows the Delta, not the state. ``totals``: records per
    frame before, when ``before`` holds only those ``named`` may remove (a Delta's slice)."""
    out = {}
    for kind in schema.KINDS.values():
        old = before.get(kind.frame)
        if old is None:
            continue
        if totals is not None:
            total = totals[kind.frame]
        else:
            total = len(old.dropna().drop_duplicates())
        new = getattr(after, kind.frame)["jointure"].dropna()
        if named is not None:
            ids = named[kind.frame].dropna()
            old, new = old[isin(old, ids)], new[isin(new, ids)]
        old = old.dropna().drop_duplicates()
        gone = ~isin(old, new)
        out[kind.name] = (total, int(gone.sum()))
    return out


def guard_mass_change(
    archive: str,
    before: Mapping[str, pd.Series] | None,
    after: Snapshot,
    guards: Guards,
    named: Mapping[str, pd.Series] | None = None,
    totals: Mapping[str, int] | None = None,
) -> None:
    """Refuse removing more than both ``max_delete_share`` and ``max_delete_count`` records
    of a kind, unless ``accept_mass_change`` (as directory synchronisation tools do)."""
    if before is None or guards.accept_mass_change:
        return
    counts = removed_per_kind(before, after, named, totals)
    over = {
        k: (n, gone)
        for k, (n, gone) in counts.items()
        if gone > guards.max_delete_count and gone > guards.max_delete_share * n
    }
    if over:
        detail = ", ".join(
            f"{k}: {gone} sur {n} ({gone / n:.0%})" for k, (n, gone) in counts.items() if n
        )
        raise IngestRefused(
            archive,
            "mass_change",
            f"suppression massive refusée ({detail}; seuils: plus de "
            f"{guards.max_delete_share:.0%} et plus de {guards.max_delete_count} par type): "
            "si elle est attendue, relancez avec --accept-mass-change",
        )


# -- the pipeline ----------------------------------------------------------------------------


def in_date_order(paths: list[Path]) -> list[Path]:
    """A Complet before a Delta of the same day; unparsable names last (refused with their
    error, in the log)."""

    def key(p: Path):
        try:
            n = parse_archive_name(p)
        except NamingError:
            return (dt.date.max, 2, p.name)
        return (n.date or dt.date.min, 0 if n.extraction == "complete" else 1, p.name)

    return sorted(paths, key=key)


def ingest(
    store: Store,
    archives: Iterable[Path | str],
    *,
    guards: Guards = Guards(),
    wait: float = 0,
    progress: bool | None = None,
) -> list[IngestResult]:
    """Ingest archives into ``store`` in date order, each one a transaction.

    An error that is not the archive's fault (disk full, store files altered) stops the run
    with :class:`IngestAborted`: the archives before it keep their committed result, and the
    run log says which.
    """
    paths = [Path(a) for a in archives]
    started = dt.datetime.now(dt.UTC)
    results: list[IngestResult] = []
    store.key  # a damaged key stops the run before anything is read  # noqa: B018
    with store.locked(wait):
        failing = "?"
        try:
            for path in in_date_order(paths):
                failing = path.name
                results.append(_ingest_one(store, path, guards, progress))
        except BaseException as err:
            done = [r.archive for r in results if r.status == "ingested"]
            reason = _reason(err)
            store.log(started, results, error={"archive": failing, "message": reason})
            if isinstance(err, KeyboardInterrupt | SystemExit):
                raise
            raise IngestAborted(failing, reason, done) from err
        store.log(started, results)
    return results


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"disque plein en écrivant {err.filename or 'le store'}"
    if isinstance(err, OSError):
        return f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
    if isinstance(err, EntAuditError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _refused(path: Path, digest: str, err: EntAuditError, t0: float, **kw) -> IngestResult:
    return IngestResult(
        path.name,
        digest,
        "refused",
        message=getattr(err, "reason", None) or str(err),
        seconds=time.perf_counter() - t0,
        guard=getattr(err, "guard", "archive"),
        anomalies=getattr(err, "anomalies", ()),
        **kw,
    )


def _ingest_one(store: Store, path: Path, guards: Guards, progress: bool | None) -> IngestResult:
    """One archive, its Complet's parts staged in a private folder removed whatever happens
    (personal data in clear)."""
    parts = Path(tempfile.mkdtemp(prefix="parts-", dir=store.path / "tmp"))  # 0700
    try:
        return _ingest_archive(store, path, guards, progress, parts)
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def _ingest_archive(
    store: Store, path: Path, guards: Guards, progress: bool | None, parts: Path
) -> IngestResult:
    t0 = time.perf_counter()
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "est un dossier, pas une archive", str(path))
        digest = sha256(path)
    except OSError as err:
        reason = f"archive illisible ({err.strerror or err})"
        return IngestResult(path.name, "", "refused", message=reason, guard="archive")
    state_dir = store.current()
    history = store.read_history(state_dir)
    done = next((h for h in history if h["sha256"] == digest), None)
    if done:
        return IngestResult(
            path.name,
            digest,
            "already",
            done["extraction"],
            dt.date.fromisoformat(done["date"]),
            f"déjà ingérée le {done['ingested_at']} (même SHA-256): rien à faire",
        )
    state_info = store.read_info(state_dir) if state_dir else None
    seen: dict = {}
    try:
        name = guard_name(path)
        seen.update(extraction=name.extraction, date=name.date)
        guard_perimeter(path.name, name.perimeter, state_info.perimeter if state_info else None)
        guard_newer(path.name, name, state_info)
        # A Complet's pseudonyms are computed by the reader's workers during the parse.
        derive = presence.pseudonymiser(store.key) if name.extraction == "complete" else None
        # A Delta over a state in step with its presence is applied to its slice of the
        # state (:mod:`.partial`): the state's files are read (Arrow, threads: no GIL) while
        # the archive is parsed.
        partly = name.extraction == "delta" and store.presence_synced(state_dir)
        reading = _background(partial.State.open, state_dir, store.read_meta(state_dir)) if (
            partly
        ) else None  # fmt: skip
        complete = name.extraction == "complete"
        extracted = _read(store, path, progress, derive, parts if complete else None)
        if isinstance(extracted, StagedExtraction):  # its frames on disk, part by part
            incoming, pseudonyms = extracted.view, extracted.derived
        else:
            incoming, pseudonyms = extracted
        info = incoming.extraction
        if (info.perimeter, info.extraction, info.date) != (
            name.perimeter,
            name.extraction,
            name.date,
        ):
            raise IngestRefused(
                path.name,
                "files_match_name",
                f"les fichiers ({info.perimeter} {info.extraction} {info.date}) ne "
                f"correspondent pas au nom de l'archive ({name.perimeter} {name.extraction} "
                f"{name.date})",
            )
        seen["counts"] = incoming.counts()
        guard_kinds(path.name, incoming)
        if info.extraction == "complete":
            guard_complete(path.name, incoming)
            guard_unique(path.name, incoming)
            before = store.read_jointures(state_dir) if state_dir else None
            anomalies: tuple[Anomaly, ...] = ()
            new_state = incoming
            named = None
            partly = False
            totals = None
        else:
            guard_delta_records(path.name, incoming)
            # With the presence in step with the state (every ingestion leaves it so), the
            # Delta is applied to its slice of the state only (:mod:`.partial`).
            totals = None
            if state_dir is None:
                state = None
            elif partly:
                assert reading is not None
                files = reading.result()
                state = partial.delta_slice(files, incoming)
            else:
                state = store.read_snapshot(state_dir)
            anomalies = guard_delta(path.name, state, incoming, guards)
            assert state is not None and state_dir is not None  # no_base_state is blocking
            if partly:  # the slice holds every record of the state the Delta names
                before = {k.frame: getattr(state, k.frame)["jointure"] for k in KINDS}
                totals = files.records()
            else:
                before = store.read_jointures(state_dir)
            new_state = apply_delta(state, incoming)
            named = {k.frame: getattr(incoming, k.frame)["jointure"] for k in KINDS}
        guard_mass_change(path.name, before, new_state, guards, named, totals)
        del before  # the state's ids (~20 MB for an académie), not held through the rest
    except (IngestRefused, NamingError) as err:
        return _refused(path, digest, err, t0, **seen)
    except StoreError:
        raise  # the store's fault, not the archive's
    except EntAuditError as err:
        return _refused(path, digest, err, t0, **seen)
    # A Complet's frames are final: assembled from its parts and written (threads) while the
    # journal and presence run.
    staged = None
    if info.extraction == "complete":
        assert isinstance(extracted, StagedExtraction)
        staged = store.stage(new_state, tables=_streams(extracted))
    try:
        return _ingest_rest(
            store, path, digest, t0, info, incoming, new_state, pseudonyms, anomalies, history,
            state_dir, staged, state if info.extraction == "delta" else None,
            files if partly else None, guards.overlay_days,
        )  # fmt: skip
    except BaseException:
        if staged is not None:
            staged.discard()
        raise


def _ingest_rest(
    store: Store,
    path: Path,
    digest: str,
    t0: float,
    info: ExtractionInfo,
    incoming: Snapshot,
    new_state: Snapshot,
    pseudonyms: Mapping[str, pd.DataFrame],  # a Complet: staged.Derived, read when used
    anomalies: tuple[Anomaly, ...],
    history: list[dict],
    state_dir: Path | None,
    staged: Staging | None,
    state: Snapshot | None,
    files: partial.State | None = None,
    overlay_days: int = partial.MAX_DAYS,
) -> IngestResult:
    """The journal, the presence history and the commit of an archive the guards passed.
    ``files``: ``state`` and ``new_state`` are a Delta's slice of the state, before and after
    of these state files (:mod:`ent_audit.store.partial`): the new files are these with its
    rows replaced."""
    # -- change journal and reconciliation (ent_audit.store.journal) --
    reconcile = bool(history) and history[-1]["extraction"] == "delta"
    history_of = None
    if files is not None:
        # Only the people the Delta may move are placed and pseudonymised again, and only
        # their history is updated (:mod:`.partial` carries everyone else's over); their
        # history is read (Arrow, mostly without the GIL) while the journal is computed.
        people = presence.identified(presence.affected(state, incoming, new_state), store.key)
        history_of = _background(files.presence_of, people["pseudonym"])
        # The new slice's memberships are computed once, for the journal and the presence.
        # The journal is computed here, not by a thread beside the presence: both are
        # pandas and Arrow steps of a few thousand rows, which two threads run slower than
        # one (on an académie's 1 % Delta: 3.04 → 2.96 s, 4.06 → 3.88 s of CPU, median of
        # seven alternated runs), each waiting for the GIL the other just took.
        members = population.memberships(new_state, categorical=True)
        changes = journal.changes(
            state, incoming, new_state, store.key,
            reconcile=reconcile, sliced=True, members_after=members,
        )  # fmt: skip
    elif info.extraction == "delta":
        changes = journal.changes(state, incoming, new_state, store.key, reconcile=reconcile)
    else:
        assert staged is not None
        # A Complet: its frames written (_placing waits for them), then who is where (lean,
        # from its staged files), then its journal, one after the other.
        placed = presence.placed(_placing(staged), store.key, pseudonyms=pseudonyms)
        pseudonyms.clear()  # the workers' pseudonyms (the caller's mapping), used here last
        memory.trim_heap()
        changes = complet_changes(store, state_dir, staged, reconcile)
        memory.trim_heap()  # the two states' batches, read and freed
    # --
    written = None
    if files is not None:
        assert history_of is not None
        now = presence.present(new_state, store.key, people, members=members)
        theirs = history_of.result()
        theirs = presence.typed(theirs[presence.listed(theirs, people)])
        updated = presence.update(theirs, now, info.date)
        written = partial.write_plan(
            files, state, new_state, incoming, updated, people, max_days=overlay_days
        )
        memory.release_unused()
        new_presence = written.presence
    else:
        if staged is not None:  # a Complet: its history updated batch by batch as written
            new_presence = _complete_presence(state_dir, placed, info.date)
        else:
            given = pseudonyms if new_state is incoming else None
            now = presence.present(new_state, store.key, pseudonyms=given)
            # The history is read once who is where is known, not held beside its computation.
            new_presence = presence.update(store.read_presence(state_dir), now, info.date)
    assert changes is not None
    divergences = journal.divergences(changes)
    entry = dict(
        archive=path.name,
        sha256=digest,
        extraction=info.extraction,
        date=info.date.isoformat(),
        perimeter=info.perimeter,
        ingested_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        anomalies=len(anomalies),
        counts=incoming.counts(),
        state_counts=new_state.counts() if written is None else written.counts,
        divergences=divergences,
    )
    if written is not None and not written.compacted:
        store.commit_delta(new_state, written, [*history, entry], changes)
    else:
        reuse = ()
        if info.extraction == "delta":  # frames the Delta left as they were: linked
            before_frames = state.frames()
            reuse = [n for n, df in new_state.frames().items() if before_frames.get(n) is df]
        if written is not None:  # a compaction: the merged frames, whole
            reuse = [n for n, w in written.frames.items() if w is None]
            tables = {n: w for n, w in written.frames.items() if w is not None}
            staged = store.stage(new_state, reuse=reuse, tables=tables)
        history = [*history, entry]
        store.commit(
            new_state, new_presence, history, changes, reuse=reuse, staged=staged, added=True
        )
    message = "ingérée"
    if divergences:
        message += (
            f" ; {divergences} divergence(s) entre l'état construit par les Delta et ce "
            "Complet (le Complet l'emporte, voir le rapport delta)"
        )
    return IngestResult(
        path.name,
        digest,
        "ingested",
        info.extraction,
        info.date,
        message,
        anomalies,
        incoming.counts(),
        time.perf_counter() - t0,
        divergences=divergences,
    )


def complet_changes(
    store: Store, state_dir: Path | None, staged: Staging, reconcile: bool
) -> pd.DataFrame:
    """The journal rows of a Complet whose new state is staged on disk (``staged``): both
    states read from their files, by batches, then around the records that differ
    (:func:`journal.complete_changes`), neither whole in memory. The store's first Complet
    changes nothing."""
    if state_dir is None:
        return journal.empty()
    staged.finish()
    before = sides.FileSide(state_dir, store.read_meta(state_dir))
    after = sides.FileSide(staged.path, store.read_meta(staged.path))
    return journal.complete_changes(before, after, store.key, reconcile=reconcile)


def _complete_presence(state_dir: Path | None, now: pa.Table, date: dt.date) -> partial.Batches:
    """The presence history after a Complet whose presence is ``now``
    (:func:`presence.placed`), batch by batch as it is written: the state's history read a
    batch at a time and updated by pseudonym ranges (:func:`presence.update_batches`); a
    history out of its order is updated whole (the same rows)."""
    from ent_audit.store.store import Store

    meta = Store.read_meta(state_dir) if state_dir is not None else None

    def parts() -> Iterator[pa.Table]:
        if state_dir is None:
            return presence.update_batches((), now, date)
        history = partial.presence_parts(state_dir, meta)
        return presence.update_batches(history, now, date, source=state_dir / partial.PRESENCE)

    def whole() -> pa.Table:
        old = Store.read_presence(state_dir)
        out = presence.update(old, presence.plain(now), date)
        del old
        return pa.Table.from_pandas(out, schema=presence.schema_of(), preserve_index=False)

    return partial.Batches(presence.schema_of(), parts, whole)


PLACING = {**population.NEEDS, "students": (*population.NEEDS["students"], "level")}
"""The columns :func:`presence.present` reads: memberships, and a pupil's level."""


def _placing(staged: Staging) -> Snapshot:
    """The staged state's columns that place people (:data:`PLACING`), read from its files
    once they are written: the presence of a Complet without the whole state in memory."""
    from ent_audit.store.store import Store

    staged.finish()
    return Store.read_snapshot(staged.path, PLACING, dictionary=population.LINKS)


def _streams(extracted: StagedExtraction) -> dict:
    """The staged Complet's big frames, each written from its parts by the staging's writers
    (:class:`ent_audit.store.store.Streamed`); its small ones are written from memory."""
    from ent_audit.store.store import Streamed

    rows = {name: len(df) for name, df in extracted.view.frames().items()}
    return {
        name: Streamed(functools.partial(extracted.write_frame, name), rows[name])
        for name in extracted.streamed()
    }


def _background(fn, *args) -> Future:
    """``fn(*args)`` in a thread of its own, started now (its result is waited for later)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="ent-audit-state")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _read(
    store: Store, path: Path, progress: bool | None, derive=None, parts: Path | None = None
) -> tuple[Snapshot, dict[str, pd.DataFrame]] | StagedExtraction:
    """Extract into the store's private ``tmp/`` and parse; the extracted XML (personal data)
    is removed in a ``finally`` whatever happens. Errors name the archive, not the folder.
    ``derive``: computed per part by the reader's workers (a big archive only), returned per
    kind (:func:`ent_audit.aaf.snapshot.load_stream_derived`); else an empty mapping.
    ``parts``: a private folder where each part's frames are written as it is parsed (a
    Complet, whatever its size: :func:`ent_audit.aaf.staged.load_staged`), never whole in
    memory; the caller removes it."""
    tmp = Path(tempfile.mkdtemp(prefix="extract-", dir=store.path / "tmp"))  # 0700
    try:
        big = path.stat().st_size >= STREAM_MIN_BYTES
        if parts is not None:
            # A big archive's parts are parsed by the pool while the next ones are extracted.
            paths = iter_extract(path, tmp) if big else extract(path, tmp)
            return load_staged(paths, parts, derive, parallel=big)
        if not big:
            return load_files(extract(path, tmp), progress=progress), {}
        # Parts are parsed while the next ones are extracted (the CRC is still checked
        # before the snapshot is returned, so before anything is committed).
        return load_stream_derived(iter_extract(path, tmp), derive)
    except EntAuditError as err:
        text = str(err).replace(f"{tmp}{os.sep}", f"{path.name}:")
        raise IngestRefused(path.name, "archive", text) from None
    except (UnicodeError, LookupError, ValueError) as err:
        raise IngestRefused(path.name, "archive", f"contenu illisible ({err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
