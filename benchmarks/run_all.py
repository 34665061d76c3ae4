"""The whole chain on an académie, in one run: fetch, ingest, activity, reports, purge, explorer.

    .venv/bin/python benchmarks/run_all.py [--schools 2400 --pupils 260000 --events 10000000]
        [--results benchmarks/results.md] [--work DIR] [--cache outputs/bench]

Generates once (cached under ``--cache``, in another process, not counted): a seeded
``synth.series`` (Complet → Delta → Delta → Complet, unpacked too), the provider's account
export and destruction requests, and a school year of activity events for the final Complet's
population. Then times each stage as users run it, each in its own process (so each peak is its
own): ``ent-audit fetch`` from a real OpenSSH sshd on 127.0.0.1 (``tests/sshd.py``, the one the
SFTP tests start), ``ent-audit ingest`` of the Complet, of each Delta and of the next Complet
(reconciliation), ``ent-audit activity-import``, ``ent-audit report NAME`` for every scheduled
report, ``ent-audit purge`` (dry run) and the roster explorer's school switch. A bare
``lxml.etree.iterparse`` loop over the Complet's XML runs in the same run, as the reference
rate of the ingestion.

Per stage: wall time, peak memory (resident set of the process and its descendants, summed,
sampled every 50 ms, and at least the child's own ``ru_maxrss``), the size of the Parquet it
reads and the ratio; and the peak above the floor of its kind of process, measured in the same
run by two reference stages that read no data (``baseline``: Python and ent_audit's imports, for
a command; ``baseline_report``: the runner and a kernel running a notebook with the report
notebooks' imports, for a report), with (peak − floor) / Parquet, on which the 3 × bound is
judged. The table, the machine, versions, commit, date and load average go to
``--results`` (Markdown) and to the terminal; ``--json`` writes the same as data. Exit status:
0 when every stage ran (a stage that exits 1 ran and found something, as the demo's injected
defects make the quality report do), 2 when a stage failed; with ``--enforce-targets`` a missed
target of issue 16 gives 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import BENCH, Measured, measure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))  # this checkout's ent_audit, whatever the venv's install points at
sys.path.append(str(ROOT / "tests"))  # the shared sshd starter lives with the SFTP tests

START, END = dt.date(2026, 9, 1), dt.date(2027, 7, 2)
"""The school year of generated activity."""

TARGETS = {
    "chain_seconds": 600,
    "peak_mb": 6e9 / 2**20,
    "delta_seconds": 3,
    "ingest_vs_bare": 1.0,
    "parquet_ratio": 3,
}
"""Issue 16: chain under 10 min and 6 GB, a 1 % Delta under 3 s, ingestion at least the bare
iterparse rate, no stage above 3 times its Parquet inputs."""

DELTA_RUNS = 3
"""The 1 % Delta, a process of about 3 s judged against 3 s, is also run this many times,
each on a copy of the store it started from, timed alone, and judged on their median: one
run of it on a 2-core virtual machine varies by ±10 % from one minute to the next (2.5 to
3.3 s for the same code; from one machine to the next, medians of 1.80–1.91 s on a faster
one), more than the margin the verdict is about on the slower one; and the chain's
run is slowed by the memory sampler that watches it (reading the tree's ``/proc`` every
50 ms: 3.07 → 3.21 s, medians of four alternated runs). The chain's run gives the stage's
memory and its time in the table."""

COMPLET_PAIRS = 3
"""The Complet's speed against the bare loop is judged on this many pairs run after the chain:
the bare loop, then the Complet's ingestion on a new store, one right after the other, and
the median of the pairs' ratios. The machine's speed drifts within minutes (the same bare
loop took 33.6 to 43.7 s within 35 minutes), and the chain's bare loop and Complet run
minutes apart, the Complet under the memory sampler, which slows a command that keeps both
cores busy (the académie's Complet: 33.4–33.8 s alone, 38.5–39.7 s sampled, three alternated
runs each): over eight runs of the chain on two machines, that ratio ranged over 0.95–1.10×,
the pairs' medians over the seven that ran them 1.10–1.19×. The chain's runs still give the
table's figures."""


# -- generation (cached, in its own process) ------------------------------------------------


def generate(folder: Path, schools: int, pupils: int, staff: int, events: int, seed: int) -> None:
    """The series, the retention inputs, the activity; ``DONE`` written last."""
    from ent_audit.synth import generate as draw
    from ent_audit.synth import series, write_perimeter
    from ent_audit.synth.activity import write_activity
    from ent_audit.synth.retention import write_inputs

    t0 = time.perf_counter()
    base = draw(schools=schools, pupils=pupils, staff=staff, seed=seed)
    res = write_perimeter(series.build(base, seed=seed), folder / "series", unpack=True)
    # The generator's own truth says who left in its Delta: the account export is drawn from it.
    write_inputs(base, folder / "retention", seed=seed)
    del base
    write_activity(
        res.archives[-1], folder / "activite", seed=seed, start=START, end=END,
        events=events, malformed=0, jsonl=False,
    )  # fmt: skip
    (folder / "DONE").write_text(f"{time.perf_counter() - t0:.1f}\n")


def generated(cache: Path, schools: int, pupils: int, staff: int, events: int, seed: int) -> Path:
    folder = cache / f"chain-s{schools}-p{pupils}-t{staff}-e{events}-seed{seed}"
    if not (folder / "DONE").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"génération (une fois, en cache) : {folder}", flush=True)
        subprocess.run(
            [sys.executable, __file__, "--phase", "generate", "--dir", str(folder),
             f"--schools={schools}", f"--pupils={pupils}", f"--staff={staff}", f"--events={events}",
             f"--seed={seed}"],
            check=True,
        )  # fmt: skip
    return folder


# -- phases run in a child process of this script ----------------------------------------


def phase_bare(folder: Path) -> dict:
    """The bare iterparse loop over every XML file of an unpacked extraction."""
    from bench_reader import bare

    files = sorted(folder.rglob("*.xml"))
    t0 = time.perf_counter()
    elements = bare(files)
    return {"seconds": time.perf_counter() - t0, "elements": elements,
            "xml_mb": sum(p.stat().st_size for p in files) / 1e6}  # fmt: skip


def phase_roster(store_path: Path, target: int = 600, runs: int = 5) -> dict:
    """Open the explorer, then switch to the school nearest ``target`` pupils ``runs`` times,
    alternating with the largest one so nothing is cached (as ``bench_roster.py`` does)."""
    from ent_audit.store.store import Store
    from ent_audit.widgets import RosterExplorer

    with tempfile.TemporaryDirectory() as exports:
        t0 = time.perf_counter()
        explorer = RosterExplorer(Store(store_path, create=False), export_dir=exports)
        opening = time.perf_counter() - t0
        counts = explorer.roster.members.query("profile == 'pupil'").groupby("uai").size()
        uai = str((counts - target).abs().idxmin())
        other = str(counts.drop(uai).idxmax()) if len(counts) > 1 else uai
        times = []
        for _ in range(runs):
            explorer.select(other)
            t0 = time.perf_counter()
            explorer.select(uai)
            times.append(time.perf_counter() - t0)
    return {"opening": opening, "median": statistics.median(times), "max": max(times),
            "pupils": int(counts[uai])}  # fmt: skip


FLOOR_NOTEBOOK = """\
# What every report notebook imports, and the page helpers' set-up, with no data: the kernel's
# floor. Run by ``baseline_report`` through the runner as a report is (papermill, nbconvert).
import datetime as dt
from pathlib import Path

import plotly.express as px
from IPython.display import Markdown, display

from ent_audit import privacy
from ent_audit.aaf import population
from ent_audit.analyses import activity, delta, overview, quality, retention
from ent_audit.analyses.activity import tables
from ent_audit.io import write_csv
from ent_audit.privacy import Pseudonymiser
from ent_audit.reports import labels, notebook, runner
from ent_audit.store import Store

notebook.setup()
st = Store(store, create=False)
"""
"""The reference report's one code cell (after its ``parameters`` cell): the imports of every
scheduled report's notebook, nothing read from the store."""


def phase_baseline_report(store_path: Path) -> dict:
    """A report's floor, measured: the runner (``ent_audit.cli``'s imports, papermill,
    nbconvert) runs a notebook that imports what the report notebooks import, draws one tiny
    chart and publishes an empty summary, in the same kernel, rendered to the same HTML. The
    notebook stands in for a registered report in a temporary notebooks folder, so the path is
    the runner's own, not a copy of it."""
    import nbformat

    import ent_audit.cli  # noqa: F401  (the CLI process's imports, as ``ent-audit report``)
    from ent_audit.reports import registry, runner

    report = registry.scheduled()[0]
    with tempfile.TemporaryDirectory() as tmp:
        notebooks = Path(tmp) / "notebooks"
        notebooks.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.metadata = nbformat.read(registry.notebook_path(report), as_version=4).metadata
        params = nbformat.v4.new_code_cell('store = ""  # dossier du store')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [
            params,
            nbformat.v4.new_code_cell(FLOOR_NOTEBOOK),
            nbformat.v4.new_code_cell('px.bar(x=["a", "b"], y=[1, 2], title="socle")'),
            nbformat.v4.new_code_cell("notebook.publish({}, [], headline=())"),
        ]
        nbformat.write(nb, notebooks / report.notebook)
        t0 = time.perf_counter()
        r = runner.run(report.name, {"store": str(store_path)}, outputs=Path(tmp) / "outputs",
                       notebooks=notebooks)  # fmt: skip
        if r.exit_code:
            raise SystemExit(f"socle du rapport : {r.status} {r.message}")
    return {"seconds": time.perf_counter() - t0}


PHASES = {"bare": phase_bare, "roster": phase_roster, "baseline_report": phase_baseline_report}


# -- the chain -------------------------------------------------------------------------------


@dataclass
class Stage:
    """One timed stage: what ran, how long, how much memory, on what inputs."""

    name: str
    label: str
    argv: list[str]
    parquet: list[Path] = field(default_factory=list)
    """Parquet the stage reads (sized just before it runs)."""
    inputs: list[Path] = field(default_factory=list)
    """Other inputs (XML archives, CSV logs), shown for scale."""
    in_chain: bool = True
    """False for the references (bare loop, floors): not part of the chain total."""
    floor: str | None = None
    """The reference stage measuring the floor of this kind of process: ``baseline`` (Python
    and ent_audit's imports) for a command, ``baseline_report`` (runner + kernel, no data) for
    a report."""
    seconds: float = 0.0
    peak_mb: float = 0.0
    returncode: int | None = None
    parquet_mb: float | None = None
    inputs_mb: float | None = None
    result: dict = field(default_factory=dict)
    log: str = ""
    floor_mb: float | None = None
    """The peak of the ``floor`` stage in the same run (MiB), set once the chain has run."""
    pss_mb: float = 0.0
    """Peak of the tree's proportional set sizes (MiB): pages shared between its processes
    (libraries, what workers inherit from the forkserver) counted once. Shown, not judged."""
    floor_pss_mb: float | None = None
    repeats: list[float] = field(default_factory=list)
    """Wall times of the same command run again, alone (no memory sampler), on copies of the
    store it started from (:data:`DELTA_RUNS`, :data:`COMPLET_PAIRS`)."""
    references: list[float] = field(default_factory=list)
    """The reference loop's own seconds, run just before each repeat (the Complet's bare
    loop: :data:`COMPLET_PAIRS`)."""

    @property
    def typical(self) -> float:
        """The median wall time of its repeats (of the chain's run, if none)."""
        return statistics.median(self.repeats or [self.seconds])

    @property
    def repeats_shown(self) -> str:
        """The repeats' times, in French figures."""
        return " ; ".join(_fr(t, 2, "s") for t in self.repeats)

    @property
    def paired(self) -> list[float]:
        """Each reference's seconds over its repeat's (the Complet's speed, pair by pair)."""
        if not self.references:
            return []
        return [r / t for r, t in zip(self.references, self.repeats, strict=True)]

    @property
    def ok(self) -> bool:
        """Ran: exit 0, or 1 (it ran and found something: anomalies, findings, overdue)."""
        return self.returncode in (0, 1)

    @property
    def ratio(self) -> float | None:
        if not self.parquet_mb:
            return None
        return _mb(self.peak_mb) / self.parquet_mb

    @property
    def above_mb(self) -> float | None:
        """Peak above the floor of its kind of process (MiB): what the stage's data costs."""
        return None if self.floor_mb is None else max(self.peak_mb - self.floor_mb, 0.0)

    @property
    def above_ratio(self) -> float | None:
        """(peak − floor) / Parquet inputs: the measure the 3 × bound is judged on."""
        if not self.parquet_mb or self.above_mb is None:
            return None
        return _mb(self.above_mb) / self.parquet_mb

    @property
    def pss_above_ratio(self) -> float | None:
        """(PSS peak − PSS floor) / Parquet inputs: the same measure with shared pages
        counted once; shown beside the judged one."""
        if not self.parquet_mb or self.floor_pss_mb is None or not self.pss_mb:
            return None
        return _mb(max(self.pss_mb - self.floor_pss_mb, 0.0)) / self.parquet_mb


def _repeat(
    stage: Stage,
    store: Path,
    before: Path | None,
    logs: Path,
    env: dict[str, str],
    runs: int,
    reference: Stage | None = None,
) -> None:
    """``stage`` run ``runs`` times more, timed alone (no memory sampler), each on a fresh
    copy of ``before`` (the store as it was before the chain's run; None: none, each run on a
    new store) in place of ``store``; ``before`` is removed after. ``reference``: a phase of
    this script (the bare loop) run right before each, its own seconds kept
    (:attr:`Stage.references`)."""
    for i in range(1, runs + 1):
        copy = store.with_name(f"{store.name}-run{i}")
        if before is not None:
            shutil.copytree(before, copy, symlinks=True)
        os.sync()  # the copy's writes are not the stage's
        if reference is not None:
            done = subprocess.run(reference.argv, capture_output=True, text=True, env=env)
            log = logs / f"{reference.name}-run{i}.log"
            log.write_text(done.stderr + done.stdout, encoding="utf-8")
            if done.returncode:
                raise RuntimeError(f"{reference.name}, exécution {i} : code {done.returncode}, "
                                   f"voir {log}")  # fmt: skip
            stage.references.append(_result(done.stdout)["seconds"])
        argv = [str(copy) if a == str(store) else a for a in stage.argv]
        with open(logs / f"{stage.name}-run{i}.log", "w") as log:
            t0 = time.perf_counter()
            code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
            stage.repeats.append(time.perf_counter() - t0)
        shutil.rmtree(copy, ignore_errors=True)
        if code != stage.returncode:
            stage.returncode = code  # a run that fails makes the stage fail
    if before is not None:
        shutil.rmtree(before)
    shown = f"{runs} exécutions seules : {stage.repeats_shown} ; "
    shown += f"médiane {_fr(stage.typical, 2, 's')}"
    if reference is not None:
        shown += f" ; rapport à {reference.name} juste avant : {_fr_ratios(stage.paired)}"
    print(f"  {'':<52} {shown}", flush=True)


def _fr_ratios(ratios: list[float], median: bool = True) -> str:
    """Ratios in French figures, then (``median``) their median."""
    each = " ; ".join(f"{_fr(r, 2)} ×" for r in ratios)
    if not (median and ratios):
        return each
    return f"{each} (médiane {_fr(statistics.median(ratios), 2)} ×)"


def _size_mb(paths: list[Path]) -> float:
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def _state_parquet(store: Path) -> list[Path]:
    """The live state's Parquet files (none before the first ingestion)."""
    current = store / "CURRENT"
    if not current.exists():
        return []
    return sorted((store / "states" / current.read_text().strip()).rglob("*.parquet"))


def _result(output: str) -> dict:
    """What a phase of this script found: the JSON it prints as its output's last line."""
    return json.loads(output.strip().splitlines()[-1])


def _run(stage: Stage, logs: Path, env: dict[str, str]) -> Stage:
    stage.parquet_mb = _size_mb(stage.parquet) if stage.parquet else None
    stage.inputs_mb = _size_mb(stage.inputs) if stage.inputs else None
    log = logs / f"{stage.name}.log"
    os.sync()  # each stage starts with the previous one's writes on disk, not its own
    m: Measured = measure(stage.argv, log, env)
    stage.seconds, stage.peak_mb, stage.returncode = m.seconds, m.peak_mb, m.returncode
    stage.pss_mb = m.pss_mb
    stage.log = str(log)
    text = log.read_text(errors="replace").strip()
    if stage.argv[1] == __file__ and stage.ok and text:
        stage.result = _result(text)
    own = [float(m) for m in re.findall(r"\((\d+\.\d+) s\)$", text, re.M)]
    if stage.name.startswith("ingest") and own:  # the CLI prints the ingestion's own time
        stage.result["own_seconds"] = sum(own)
    mark = "ok" if stage.ok else f"ÉCHEC (code {stage.returncode}, voir {log})"
    print(f"  {stage.label:<52} {stage.seconds:8.1f} s {_mb(stage.peak_mb):8.0f} Mo  {mark}",
          flush=True)  # fmt: skip
    return stage


def _params(path: Path, store: Path, data: Path, work: Path) -> Path:
    """One parameter file for every scheduled report (as ``params/demo.yaml``)."""
    import yaml

    demo = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text(encoding="utf-8"))
    demo.update(
        store=str(store),
        requests=str(data / "retention" / "demandes.csv"),
        archives=str(work / "archives"),
        outputs=str(work / "outputs"),
        accounts=str(data / "activite" / "comptes.csv"),
        daily=str(data / "activite" / "statistiques-quotidiennes.csv"),
        period_start=START.isoformat(),
        period_end=END.isoformat(),
    )
    path.write_text(yaml.safe_dump(demo, allow_unicode=True), encoding="utf-8")
    return path


def chain(data: Path, work: Path) -> tuple[list[Stage], dict]:
    """Serve the archives from a real sshd, then run every stage in order."""
    from sshd import Keys, SSHServer

    from ent_audit.reports import registry

    series = data / "series"
    archives = sorted(series.glob("*.tar.gz"), key=lambda p: p.name.rsplit("_", 1)[1])
    complet = archives[0]
    remote, dest, store, logs = (work / d for d in ("remote", "archives", "store", "logs"))
    for d in (remote, logs, work / "sshd"):
        d.mkdir(parents=True, exist_ok=True)
    for a in archives:  # what the académie deposits, with the files' own mtimes
        os.link(a, remote / a.name)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
    cli = [sys.executable, "-m", "ent_audit.cli"]
    me = [sys.executable, __file__, "--phase"]
    params = _params(work / "params.yaml", store, data, work)
    fetched = [dest / a.name for a in archives]

    keys = Keys.rsa4096(work / "sshd")
    server = SSHServer.started(work / "sshd", keys)
    try:
        known = server.known_hosts()
        stages = [
            Stage("fetch", "fetch (SFTP, sshd local)", [*cli, "fetch", "--host", "127.0.0.1",
                  "--port", str(server.port), "--user", getpass.getuser(),
                  "--key", str(keys.authorized[0]), "--known-hosts", str(known),
                  "--remote-dir", str(remote), "--dest", str(dest)],
                  inputs=archives, floor="baseline"),
        ]  # fmt: skip
        _run(stages[0], logs, env)
    finally:
        server.kill()
    stages.append(_run(
        Stage("baseline", "socle : Python + imports d'ent_audit (référence)",
              [sys.executable, "-c", "import ent_audit.cli, ent_audit.widgets, pyarrow.parquet"],
              in_chain=False),
        logs, env,
    ))  # fmt: skip
    bare = _run(
        Stage("bare_iterparse", "iterparse nu, XML du Complet (référence)",
              [*me, "bare", "--dir", str(series / complet.name.removesuffix(".tar.gz"))],
              in_chain=False),
        logs, env,
    )  # fmt: skip
    stages.append(bare)
    for name, label, archive in (
        ("ingest_complet", "ingest du Complet", fetched[0]),
        ("ingest_delta1", "ingest du Delta 1", fetched[1]),
        ("ingest_delta2", "ingest du Delta 2", fetched[2]),
        ("ingest_complet2", "ingest du Complet suivant (réconciliation)", fetched[3]),
    ):
        # run again on copies (the Complet: on new stores, each after a bare loop): judged
        # on the median
        runs = {"ingest_delta1": DELTA_RUNS, "ingest_complet": COMPLET_PAIRS}.get(name, 0)
        before = work / f"{store.name}-before-{name}" if store.exists() else None
        if runs and before is not None:
            shutil.copytree(store, before, symlinks=True)
        stages.append(_run(
            Stage(name, label, [*cli, "ingest", str(archive), "--store", str(store)],
                  parquet=_state_parquet(store), inputs=[archive], floor="baseline"),
            logs, env,
        ))  # fmt: skip
        if runs:
            reference = bare if name == "ingest_complet" else None
            _repeat(stages[-1], store, before, logs, env, runs, reference)
    events = sorted((data / "activite").glob("evenements-*.csv"))
    stages.append(_run(
        Stage("activity_import", "activity-import (journaux CSV → Parquet)",
              [*cli, "activity-import", *map(str, events), "--store", str(store)],
              parquet=_state_parquet(store), inputs=events, floor="baseline"),
        logs, env,
    ))  # fmt: skip
    stages.append(_run(
        Stage("baseline_report", "socle d'un rapport : lanceur + noyau, sans données (référence)",
              [*me, "baseline_report", "--store", str(store)], in_chain=False),
        logs, env,
    ))  # fmt: skip
    activity = sorted((store / "activity").rglob("*.parquet"))
    for r in registry.scheduled():
        extra = activity if r.name == "activity" else []
        stages.append(_run(
            Stage(f"report_{r.name}", f"report {r.name}",
                  [*cli, "report", r.name, "-p", str(params), "--outputs", str(work / "outputs")],
                  parquet=_state_parquet(store) + extra, floor="baseline_report"),
            logs, env,
        ))  # fmt: skip
    stages.append(_run(
        Stage("purge_dry_run", "purge (simulation)",
              [*cli, "purge", "--store", str(store), "--archives", str(dest),
               "--outputs", str(work / "outputs"),
               "--requests", str(data / "retention" / "demandes.csv"),
               "--convention-signed", "2026-09-01"],
              parquet=_state_parquet(store), floor="baseline"),
        logs, env,
    ))  # fmt: skip
    stages.append(_run(
        Stage("roster_switch", "explorateur : ouverture + changement d'école",
              [*me, "roster", "--store", str(store)], parquet=_state_parquet(store),
              floor="baseline"),
        logs, env,
    ))  # fmt: skip
    peaks = {s.name: s.peak_mb for s in stages if s.ok}
    pss = {s.name: s.pss_mb for s in stages if s.ok and s.pss_mb}
    for s in stages:
        s.floor_mb = peaks.get(s.floor) if s.floor else None
        s.floor_pss_mb = pss.get(s.floor) if s.floor else None
    return stages, _sizes(store, data)


def _sizes(store: Path, data: Path) -> dict:
    """Rows of the final state, the Deltas' records and the events, for the table's header."""
    import pyarrow.parquet as pq

    sizes = {}
    for path in _state_parquet(store):
        if path.parent.name == "snapshot" and path.stem in (
            "structures", "students", "guardians", "staff"
        ):  # fmt: skip
            sizes[path.stem] = pq.ParquetFile(path).metadata.num_rows
    truth = json.loads((data / "series" / "truth.json").read_text(encoding="utf-8"))
    for archive, kinds in truth["changes"].items():
        sizes.setdefault("deltas", {})[archive] = sum(
            len(c[op]) for c in kinds.values() for op in ("add", "modify", "delete")
        )
    activity = json.loads((data / "activite" / "activity-truth.json").read_text("utf-8"))
    sizes["events"] = activity["generated"]["events"]
    return sizes


# -- the table -------------------------------------------------------------------------------


def machine() -> dict:
    """CPU model, cores, RAM, load, versions and commit: what a reader needs to compare runs."""
    from importlib.metadata import version

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor() or "?",
    )  # fmt: skip
    mem = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )  # fmt: skip
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    libs = ("pandas", "pyarrow", "lxml", "duckdb", "papermill", "nbconvert", "paramiko")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem / 2**20, 1),
        "python": platform.python_version(),
        "libraries": {name: version(name) for name in libs} | {"openssh": ssh.split(",")[0]},
        "commit": commit + (" (modifié)" if dirty else ""),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
    }


def verdicts(stages: list[Stage]) -> dict[str, dict]:
    """Each target of issue 16: the value measured, the bound, met or not."""
    by = {s.name: s for s in stages}
    chain_stages = [s for s in stages if s.in_chain]
    total = sum(s.seconds for s in chain_stages)
    peak = max(s.peak_mb for s in chain_stages)
    bare, ingest = by["bare_iterparse"], by["ingest_complet"]
    base = bare.result.get("seconds", 0)
    in_chain = base / ingest.seconds if ingest.seconds else 0
    speed = statistics.median(ingest.paired) if ingest.paired else in_chain
    own = ingest.result.get("own_seconds")
    sampled = f"{_fr(in_chain, 2)} × sur la durée du processus" + (
        f" ; {_fr(base / own, 2)} × sur sa durée propre" if own else ""
    )
    speed_shown = (
        f"{_fr(speed, 2)} × (médiane de {len(ingest.paired)} paires : iterparse nu, durée de "
        f"sa boucle, puis ingestion, durée de son processus : "
        f"{_fr_ratios(ingest.paired, median=False)} ; dans la chaîne, sous l'échantillonneur "
        f"de mémoire : {sampled})"
    ) if ingest.paired else sampled  # fmt: skip
    worst = max(
        (s for s in stages if s.above_ratio is not None), key=lambda s: s.above_ratio, default=None
    )
    absolute = max((s for s in stages if s.ratio is not None), key=lambda s: s.ratio, default=None)
    shown = (
        f"{_fr(worst.above_ratio)} × au-dessus du socle ({worst.name}) ; "
        f"pic absolu : {_fr(absolute.ratio)} × ({absolute.name})"
        if worst and absolute
        else "sans objet"
    )
    return {
        "chain_seconds": {"label": "chaîne complète < 10 min", "value": total,
                          "ok": total < TARGETS["chain_seconds"], "shown": _fr(total, 0, "s")},
        "peak_mb": {"label": "pic mémoire < 6 Go", "value": peak, "ok": peak < TARGETS["peak_mb"],
                    "shown": _fr(_mb(peak) / 1000, 2, "Go")},
        "delta_seconds": {"label": "Delta 1 ingéré < 3 s", "value": by["ingest_delta1"].typical,
                          "ok": by["ingest_delta1"].typical < TARGETS["delta_seconds"],
                          "shown": _delta_shown(by)},
        "ingest_vs_bare": {"label": "ingest du Complet ≥ 1,0 × iterparse nu", "value": speed,
                           "ok": speed >= TARGETS["ingest_vs_bare"],
                           "shown": speed_shown},
        "parquet_ratio": {
            "label": "aucune étape > 3 × ses entrées Parquet (pic − socle)",
            "value": worst.above_ratio if worst else None,
            "absolute": absolute.ratio if absolute else None,
            "ok": worst is None or worst.above_ratio <= TARGETS["parquet_ratio"],
            "shown": shown,
        },
    }  # fmt: skip


def _delta_shown(by: dict) -> str:
    """The Delta's process time, and what of it is the ingestion and the process floor."""
    d, floor = by["ingest_delta1"], by.get("baseline")
    text = _fr(d.typical, 2, "s")
    parts = []
    if d.repeats:
        parts.append(
            f"médiane de {len(d.repeats)} exécutions seules : {d.repeats_shown} ; dans la chaîne, "
            f"observée par l'échantillonneur de mémoire : {_fr(d.seconds, 2, 's')}"
        )
    if "own_seconds" in d.result:
        parts.append(f"ingestion elle-même {_fr(d.result['own_seconds'], 1, 's')}")
    if floor is not None:
        parts.append(f"socle du processus {_fr(floor.seconds, 1, 's')}")
    return text + (f" ({' ; '.join(parts)})" if parts else "")


def _fr(v: float | None, digits: int = 1, unit: str = "") -> str:
    """French figures: « 1 234,5 Mo »; empty for None."""
    if v is None:
        return ""
    text = f"{v:,.{digits}f}".translate(str.maketrans({",": " ", ".": ","}))
    return f"{text} {unit}".strip()


def _mb(mib: float) -> float:
    return mib * 2**20 / 1e6


def _detail(s: Stage) -> str:
    if s.name == "bare_iterparse" and s.result:
        mb = s.result["xml_mb"]
        return f"{_fr(mb, 0)} Mo de XML, {_fr(mb / s.result['seconds'])} Mo/s"
    if s.name == "roster_switch" and s.result:
        r = s.result
        return (
            f"ouverture {_fr(r['opening'], 1, 's')} ; école de {_fr(r['pupils'], 0)} élèves : "
            f"médiane {_fr(r['median'], 3, 's')}, max {_fr(r['max'], 3, 's')}"
        )
    if "own_seconds" in s.result:
        own = f"dont l'ingestion elle-même {_fr(s.result['own_seconds'], 1, 's')}"
        if s.references:
            own += (
                f" ; relancé seul sur un store neuf, chaque fois juste après iterparse nu "
                f"({', '.join(_fr(r, 1, 's') for r in s.references)}) : {s.repeats_shown}"
            )
        elif s.repeats:
            own += (
                f" ; relancé seul sur des copies du store : {s.repeats_shown} "
                f"(médiane {_fr(s.typical, 2, 's')})"
            )
        return own
    return "" if s.ok else f"ÉCHEC (code {s.returncode})"


def render(stages: list[Stage], info: dict, sizes: dict, args: argparse.Namespace) -> str:
    v = verdicts(stages)
    lib = ", ".join(f"{k} {x}" for k, x in info["libraries"].items())
    deltas = " et ".join(_fr(n, 0) for n in sizes.get("deltas", {}).values())
    people = sum(sizes.get(k, 0) for k in ("students", "guardians", "staff"))
    d1 = list(sizes.get("deltas", {}).values())[:1]
    lines = [
        "# La chaîne complète (`make bench-all`)",
        "",
        f"`benchmarks/run_all.py --schools {args.schools} --pupils {args.pupils} "
        f"--staff {args.staff} --events {args.events} --seed {args.seed}`, {info['date']}.",
        "",
        f"- Machine : {info['cpu']}, {info['cores']} cœurs, {_fr(info['ram_gb'])} Gio de RAM ; "
        f"charge moyenne (1, 5, 15 min) avant {_load(info['load_before'])}, "
        f"après {_load(info['load_after'])}",
        f"- Python {info['python']} ; {lib}",
        f"- Commit {info['commit']}",
        f"- État final : {_fr(sizes.get('structures', 0), 0)} structures, "
        f"{_fr(sizes.get('students', 0), 0)} élèves, {_fr(sizes.get('guardians', 0), 0)} "
        f"responsables, {_fr(sizes.get('staff', 0), 0)} personnels ; Deltas de {deltas} "
        "enregistrements"
        + (f" (Delta 1 : {_fr(100 * d1[0] / people)} % des personnes)" if d1 and people else "")
        + f" ; {_fr(sizes.get('events', 0), 0)} événements d'activité",
        "",
        "| étape | durée | pic mémoire | socle | pic − socle | entrées Parquet | pic / Parquet "
        "| (pic − socle) / Parquet | pic PSS | (PSS − socle PSS) / Parquet | autres entrées "
        "| code | détail |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in stages:
        lines.append(
            f"| {s.label} | {_fr(s.seconds, 1, 's')} | {_fr(_mb(s.peak_mb), 0, 'Mo')} "
            f"| {_fr(_mb(s.floor_mb) if s.floor_mb is not None else None, 0, 'Mo')} "
            f"| {_fr(_mb(s.above_mb) if s.above_mb is not None else None, 0, 'Mo')} "
            f"| {_fr(s.parquet_mb, 1, 'Mo')} | {_fr(s.ratio, 1, '×')} "
            f"| {_fr(s.above_ratio, 1, '×')} "
            f"| {_fr(_mb(s.pss_mb) if s.pss_mb else None, 0, 'Mo')} "
            f"| {_fr(s.pss_above_ratio, 1, '×')} "
            f"| {_fr(s.inputs_mb, 1, 'Mo')} | {s.returncode} | {_detail(s)} |"
        )
    lines += ["", "| objectif (issue 16) | mesuré | verdict |", "|---|---:|---|"]
    lines += [f"| {t['label']} | {t['shown']} | {'PASS' if t['ok'] else 'FAIL'} |"
              for t in v.values()]  # fmt: skip
    lines += [
        "",
        "Durée : temps réel du processus de l'étape, lancé comme un utilisateur le lance "
        "(`ent-audit …`). Pic mémoire : mémoire résidente du processus et de ses descendants "
        "(lecteurs parallèles, noyau papermill) additionnée, échantillonnée toutes les 50 ms, et "
        "au moins son propre `ru_maxrss`. Socle : le pic, mesuré dans la même exécution, d'un "
        "processus du même genre qui ne lit aucune donnée : pour une commande (`ingest`, "
        "`purge`, explorateur…), l'étape « socle » (Python et les imports d'ent_audit) ; pour un "
        "rapport, l'étape « socle d'un rapport » (le lanceur `ent-audit report`, papermill et "
        "nbconvert, plus un noyau Jupyter qui exécute un notebook important tout ce "
        "qu'importent les notebooks des rapports, trace un petit graphique et publie un "
        "résumé vide, par le même chemin que les rapports). Pic − socle : ce que coûtent les "
        "données de l'étape ; c'est sur (pic − socle) / Parquet que l'objectif des 3 × est "
        "jugé, le rapport du pic absolu restant affiché (un socle de 150 à 400 Mo ne peut pas "
        "tenir dans 3 × 60 Mo). Entrées Parquet : l'état vivant du store lu par l'étape (et les "
        "événements pour `activity`). La chaîne totale exclut la génération (en cache) et les "
        "références (boucle `iterparse` nue, socles). Code 1 : l'étape a tourné et signale "
        "quelque chose (anomalies, constats, échéances dépassées). Pic PSS : la même somme en "
        "taille proportionnelle (`Pss` de `/proc/PID/smaps_rollup`), où une page partagée "
        "entre processus (le code des bibliothèques, ce que les lecteurs héritent du "
        "forkserver) compte une fois en tout au lieu d'une fois par processus : ce que l'arbre "
        "prend vraiment à la machine. Affiché à côté, il ne change aucun verdict.",
        "",
    ]
    return "\n".join(lines)


def _load(loads: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}".replace(".", ",") for x in loads)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=2400)
    ap.add_argument("--pupils", type=int, default=260_000)
    ap.add_argument("--staff", type=int, default=20_000, help="staff records (synth staff=)")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=BENCH, help="generated data, reused")
    ap.add_argument("--work", type=Path, help="store, archives, outputs (default: a temporary "
                    "folder under --cache, removed at the end)")  # fmt: skip
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results.md")
    ap.add_argument("--json", type=Path, help="the same results as JSON")
    ap.add_argument("--enforce-targets", action="store_true", help="exit 1 on a missed target")
    ap.add_argument("--phase", choices=[*PHASES, "generate"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase == "generate":
        generate(args.dir, args.schools, args.pupils, args.staff, args.events, args.seed)
        return 0
    if args.phase:
        target = args.dir if args.phase == "bare" else args.store
        print(json.dumps(PHASES[args.phase](target)))
        return 0

    args.cache = args.cache.resolve()  # sshd's configuration needs absolute paths
    data = generated(args.cache, args.schools, args.pupils, args.staff, args.events, args.seed)
    info = machine()
    if args.work and args.work.exists() and any(args.work.iterdir()):
        ap.error(f"--work {args.work}: dossier non vide (la chaîne part d'un store neuf)")
    work = (args.work or Path(tempfile.mkdtemp(prefix="chain-", dir=args.cache))).resolve()
    print(f"chaîne sur {data} (travail : {work})", flush=True)
    try:
        stages, sizes = chain(data, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    info["load_after"] = os.getloadavg()
    text = render(stages, info, sizes, args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text, encoding="utf-8")
    print("\n" + text)
    v = verdicts(stages)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": info, "sizes": sizes, "targets": v,
            "stages": [asdict(s) | {"ok": s.ok, "ratio": s.ratio, "above_mb": s.above_mb,
                                    "above_ratio": s.above_ratio, "typical": s.typical,
                                    "paired": s.paired, "pss_above_ratio": s.pss_above_ratio}
                       for s in stages],
        }, indent=1, default=str), encoding="utf-8")  # fmt: skip
    failed = [s.name for s in stages if not s.ok]
    if failed:
        print(f"étapes en échec : {', '.join(failed)}", file=sys.stderr)
        return 2
    return 1 if args.enforce_targets and not all(t["ok"] for t in v.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
