"""Run a report notebook through papermill, render it for auditors, record how it was made.

``run("overview", {"store": …})`` validates the parameters against the notebook's
``parameters`` cell (an unknown or mistyped name is an error before anything runs), executes it
in the project's own Jupyter kernel, and writes ``outputs/NAME/<timestamp>/``: the executed
notebook (without plotly.js), a self-contained HTML (verdict first, no code, no prompts,
plotly.js once, nothing from a network, provenance footer: :mod:`ent_audit.reports.page`),
``summary.json`` (what the notebook published, with its verdict) and ``manifest.json`` (inputs
and outputs with SHA-256, parameters actually used, code version, times, exit status).
``outputs/index.html`` lists the runs, the latest of each report first; ``keep`` removes a
report's older runs. A notebook that declares a ``run_dir`` parameter is given the run folder,
to write files beside its HTML.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ent_audit import privacy
from ent_audit.checks import Check, ExitCode, blocking_failures, failure_message, verdict
from ent_audit.exceptions import (
    EntAuditError,
    ParameterError,
    ParameterFileError,
    ReportParameterError,
)
from ent_audit.io import sha256, write_json
from ent_audit.reports import labels, page, registry
from ent_audit.reports.notebook import PLOTLY_MIME, SUMMARY_MIME

TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLESHEET = TEMPLATES / "ent_audit" / "static" / "report.css"
CHECKOUT = Path(__file__).resolve().parents[2]
KEEP = registry.KEEP
OUTPUT_MODE = 0o644
"""summary.json and manifest.json are for auditors: readable, unlike the store's files."""
RUN_NAME = re.compile(r"\d{8}T\d{6}\d*Z")
KERNEL_NAME = "ent-audit"
LIBRARIES = (
    "ent-audit",
    "pandas",
    "pyarrow",
    "lxml",
    "papermill",
    "nbconvert",
    "nbclient",
    "ipykernel",
    "plotly",
)

EXIT_OK, EXIT_BLOCKING, EXIT_ERROR = ExitCode.OK, ExitCode.FINDINGS, ExitCode.ERROR


# -- parameters ------------------------------------------------------------------------------


def read_params(specs: list[str]) -> tuple[dict[str, Any], list[Path]]:
    """``-p`` values in order: a YAML file (merged) or ``key=value`` (value read as YAML)."""
    params: dict[str, Any] = {}
    files: list[Path] = []
    for spec in specs:
        if "=" in spec and not spec.endswith((".yaml", ".yml")):
            key, _, value = spec.partition("=")
            try:
                params[key.strip()] = yaml.safe_load(value) if value else None
            except yaml.YAMLError as err:
                problem = getattr(err, "problem", None) or "valeur illisible"
                raise ParameterError(
                    "-p", key.strip(), f"valeur YAML invalide ({problem})"
                ) from None
            continue
        path = Path(spec)
        params.update(_read_param_file(path))
        files.append(path)
    return params, files


def _read_param_file(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ParameterFileError(path, "attendu, c'est un dossier")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterFileError(path, "introuvable") from None
    except UnicodeDecodeError as err:
        raise ParameterFileError(path, f"non UTF-8 (octet {err.start})") from None
    except OSError as err:
        raise ParameterFileError(path, f"illisible ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" ligne {mark.line + 1}, colonne {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntaxe"
        raise ParameterFileError(path, f"YAML invalide{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParameterFileError(path, "attendu: un dictionnaire clé: valeur")
    return data


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _declared_type(param: dict) -> str | None:
    """The type of a parameter: papermill's annotation, else its default value's type."""
    inferred = param.get("inferred_type_name")
    if inferred and inferred != "None":
        return inferred.split("[")[0]
    try:
        default = ast.literal_eval(param.get("default") or "None")
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default).__name__


RUN_DIR = "run_dir"
"""A notebook that declares this parameter receives its run folder from the runner, to write
files beside its HTML (``findings.csv``); with plain papermill it is whatever is passed."""


def declared_params(path: Path) -> dict[str, dict]:
    """The parameters a notebook's ``parameters`` cell declares, by name."""
    import papermill

    return {p["name"]: p for p in papermill.inspect_notebook(str(path)).values()}


def check_params(
    name: str, path: Path, params: dict[str, Any], declared: dict[str, dict] | None = None
) -> dict[str, Any]:
    """Refuse names no report declares, wrong types and ``run_dir`` (the runner's); return the
    parameters this notebook declares.

    One parameter file serves every report (``report all -p params/demo.yaml``): a name
    another notebook of the same folder declares is left out here, not refused.
    """
    declared = declared_params(path) if declared is None else declared
    if not declared:
        raise ReportParameterError(name, "*", "le notebook n'a pas de cellule 'parameters'")
    if RUN_DIR in params:
        raise ReportParameterError(name, RUN_DIR, "fixé par le lanceur (dossier de l'exécution)")
    elsewhere: set[str] | None = None  # read only when a name is not this notebook's
    kept = {}
    for key, value in params.items():
        if key not in declared:
            if elsewhere is None:
                elsewhere = {
                    k
                    for other in registry.REPORTS
                    if (path.parent / other.notebook) != path
                    and (path.parent / other.notebook).is_file()
                    for k in declared_params(path.parent / other.notebook)
                }
            if key in elsewhere:
                continue
            raise ReportParameterError(
                name, key, f"inconnu; paramètres déclarés: {', '.join(sorted(declared))}"
            )
        expected = _declared_type(declared[key])
        if expected == "str" and isinstance(value, dt.date):
            value = value.isoformat()  # YAML reads 2026-10-20 as a date: one is expected here
        types = _TYPES.get(expected or "")
        if (
            types
            and value is not None
            and (
                not isinstance(value, types)
                or (expected in ("int", "float") and isinstance(value, bool))
            )
        ):
            raise ReportParameterError(name, key, f"attendu {expected}, reçu {value!r}")
        kept[key] = value
    return kept


# -- kernel ----------------------------------------------------------------------------------


def ensure_kernel() -> str:
    """A kernel spec for this very interpreter, inside its environment (``sys.prefix``).

    The generic ``python3`` spec runs whatever ``python`` is first on PATH, not necessarily
    this virtualenv's. The kernel logs errors only (no transport chatter in cron mails).
    """
    spec_dir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec = {
        "argv": [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--IPKernelApp.log_level=ERROR",
        ],
        "display_name": "Python (ent-audit)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    path = spec_dir / "kernel.json"
    if not path.exists() or json.loads(path.read_text()) != spec:
        spec_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec, indent=1))
    return KERNEL_NAME


# -- a run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One report run, as the scheduler and the index see it."""

    report: str
    status: str
    """``ok``, ``blocking`` (a blocking check failed) or ``error`` (could not run)."""
    exit_code: int
    run_dir: Path | None = None
    html: Path | None = None
    summary: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir) if self.run_dir else None
        d["html"] = str(self.html) if self.html else None
        return d


def _inputs(notebook: Path, files: list[Path], params: dict[str, Any]) -> list[dict]:
    """Every file the run reads: notebook, parameter files, the store's live state.

    Of a store only the live state is listed (never its key, logs or locks).
    """
    paths = [notebook, *files]
    for value in params.values():
        if not isinstance(value, str) or not value:
            continue
        p = Path(value)
        if (p / "CURRENT").is_file():
            state = p / "states" / (p / "CURRENT").read_text().strip()
            paths += sorted(q for q in state.rglob("*") if q.is_file())
        elif p.is_file():
            paths.append(p)
    return [{"path": str(p), "sha256": sha256(p), "bytes": p.stat().st_size} for p in paths]


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def _summary(nb) -> dict:
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if SUMMARY_MIME in data:
                payload = data[SUMMARY_MIME]
                return json.loads(payload) if isinstance(payload, str) else payload
    return {}


def _uses_plotly(nb) -> bool:
    return any(
        "plotly-graph-div" in str(out.get("data", {}).get("text/html", ""))
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


def render_html(
    nb,
    title: str,
    *,
    header: str = "",
    footer: str = "",
    files: list[tuple[str, str]] | None = None,
) -> str:
    """HTML for auditors: our stylesheet, ``lang="fr"``, outputs only, no prompts, plotly.js
    once in ``<head>`` (only when a chart needs it), nothing loaded from the network; the
    runner's ``header`` (verdict first) and ``footer`` (provenance) around the outputs, and a
    table of contents of the notebook's level-2 headings."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="ent_audit",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title
    for cell in nb.cells:  # the published summary is for the runner, not for readers
        if cell.get("outputs"):
            cell.outputs = [o for o in cell.outputs if SUMMARY_MIME not in o.get("data", {})]
    plotly_js = ""
    if _uses_plotly(nb):
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    resources = {
        "ent_audit": {
            "css": STYLESHEET.read_text(encoding="utf-8"),
            "plotly_js": plotly_js,
            "side": page.side(files or []),
            "header": header,
            "footer": footer,
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    cells = body[body.find('<div class="ea-cells">') : body.rfind('<footer class="ea-footer">')]
    return body.replace(page.TOC_MARK, page.toc(cells), 1)


def _strip_plotly_json(nb) -> None:
    """plotly's JSON is for JupyterLab; the stored notebook keeps the HTML only (lighter)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(PLOTLY_MIME, None)


def _check_store(
    params: dict[str, Any], name: str, declared: dict[str, dict], outputs: Path
) -> None:
    """``store`` is required (never a default store) and must be an ingested store; the
    outputs never go inside it (a report reads the store, it does not write there)."""
    if "store" not in declared:
        return
    store = params.get("store")
    if not store:
        raise ReportParameterError(
            name, "store", "obligatoire (-p store=DOSSIER ou store: dans le fichier YAML)"
        )
    if not isinstance(store, str) or not (Path(store) / "CURRENT").is_file():
        raise ReportParameterError(
            name, "store", f"{store} n'est pas un store ingéré (ent-audit ingest … --store)"
        )
    if outputs.resolve().is_relative_to(Path(store).resolve()):
        raise ReportParameterError(
            name, "--outputs", f"{outputs} est dans le store {store}: un rapport n'y écrit pas"
        )


def _check_outputs(outputs: Path) -> None:
    """``--outputs`` must be a folder we may write in (its owner's write bit is honoured even
    for root: a folder made read-only stays read-only)."""
    if outputs.exists() and not outputs.is_dir():
        raise ParameterError("report", "--outputs", f"{outputs} n'est pas un dossier")
    if outputs.is_dir() and (
        not os.stat(outputs).st_mode & 0o200 or not os.access(outputs, os.W_OK | os.X_OK)
    ):
        raise ParameterError("report", "--outputs", f"{outputs}: dossier en lecture seule")


def run(
    name: str,
    params: dict[str, Any],
    *,
    param_files: list[Path] | None = None,
    outputs: Path | str = "outputs",
    notebooks: Path | None = None,
    keep: int | None = None,
) -> RunResult:
    """Run one report; never raises for a failed run: the result says what happened.

    ``keep``: afterwards, remove this report's runs beyond the ``keep`` newest."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    outputs = Path(outputs)
    try:
        path = registry.notebook_path(registry.get(name), notebooks)
        declared = declared_params(path)
        params = check_params(name, path, params, declared)
        _check_store(params, name, declared, outputs)
        _check_outputs(outputs)
    except EntAuditError as err:
        return RunResult(name, "error", EXIT_ERROR, message=str(err))
    started = dt.datetime.now(dt.UTC)
    run_dir = outputs / name / started.strftime("%Y%m%dT%H%M%S%fZ")
    run_dir.mkdir(parents=True, exist_ok=False)
    executed = run_dir / f"{name}.ipynb"
    if RUN_DIR in declared:
        params = {**params, RUN_DIR: str(run_dir)}
    t0 = time.perf_counter()
    status, code, message = "ok", EXIT_OK, ""
    try:
        papermill.execute_notebook(
            str(path),
            str(executed),
            parameters=params,
            kernel_name=ensure_kernel(),
            cwd=os.getcwd(),
            progress_bar=False,
            request_save_on_cell_execute=False,
        )
    except PapermillExecutionError as err:
        status, code = "error", EXIT_ERROR
        message = f"{err.ename}: {err.evalue} (cellule {err.exec_count})"
    except Exception as err:  # kernel died, notebook unreadable: the run could not happen
        status, code, message = "error", EXIT_ERROR, f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - t0
    summary: dict = {}
    nb = None
    if executed.exists():
        nb = nbformat.read(executed, as_version=4)
        summary = _summary(nb)
        _strip_plotly_json(nb)
        nbformat.write(nb, executed)
    checks = [Check.from_dict(c) for c in summary.get("checks", [])]
    if status == "ok" and blocking_failures(checks):
        status, code = "blocking", EXIT_BLOCKING
        message = failure_message(checks)
    if summary:
        summary["verdict"] = str(verdict(checks))
    used = parameters_used(declared, params, summary.get("parameters", {}))
    small_cell = summary.get("small_cell") or next(
        (p["value"] for p in used if p["name"] == "small_cell"), privacy.SMALL_CELL
    )
    write_json(run_dir / "summary.json", summary, perms=OUTPUT_MODE)
    inputs = _inputs(path, param_files or [], params)
    code_version = _code_version()
    html_path = None
    if nb is not None:
        html_path = run_dir / f"{name}.html"
        report = registry.get(name)
        files = [("manifest.json", "manifest.json"), ("summary.json", "summary.json")]
        files += [(p.name, p.name) for p in sorted(run_dir.glob("*.csv"))]
        files.append(("index des rapports", "../../index.html"))
        state = summary.get("state_date") or summary.get("figures", {}).get("state_date")
        title = report.title + (f" · état du {labels.date(state)}" if state else "")
        html_path.write_text(
            render_html(
                nb,
                f"{title} · ent-audit",
                header=page.header(report.title, summary, status, message, started.isoformat()),
                footer=page.footer(
                    inputs=inputs,
                    parameters=used,
                    code={**_versions(), **code_version},
                    started=started.isoformat(),
                    seconds=seconds,
                    small_cell=int(small_cell),
                    files=files,
                ),
                files=files,
            ),
            encoding="utf-8",
        )
    manifest = {
        "report": name,
        "status": status,
        "verdict": summary.get("verdict"),
        "exit_code": code,
        "message": message,
        "started": started.isoformat(timespec="seconds"),
        "ended": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "parameters": params,
        "parameters_used": {p["name"]: p["value"] for p in used},
        "inputs": inputs,
        "outputs": [
            {"path": p.name, "sha256": sha256(p), "bytes": p.stat().st_size}
            for p in sorted(run_dir.iterdir())
            if p.is_file() and p.name != "manifest.json"
        ],
        "code": code_version,
        "versions": _versions(),
        "kernel": KERNEL_NAME,
    }
    write_json(run_dir / "manifest.json", manifest, perms=OUTPUT_MODE)
    result = RunResult(name, status, code, run_dir, html_path, summary, message)
    if keep:
        prune(outputs, name, keep)
    write_index(outputs)
    return result


def parameters_used(
    declared: dict[str, dict], given: dict[str, Any], resolved: dict[str, Any]
) -> list[dict]:
    """Every parameter the notebook declares with the value it ran with and where it came
    from: its default, the caller (``-p``), or the notebook itself (an empty ``today``
    resolved to the date of the run)."""
    out = []
    for name, param in declared.items():
        try:
            value, origin = ast.literal_eval(param.get("default") or "None"), "défaut"
        except (ValueError, SyntaxError):
            value, origin = param.get("default"), "défaut"
        if name in given:
            value, origin = given[name], "fourni"
        if name == RUN_DIR and value:
            origin = "lanceur"
        if name in resolved and resolved[name] != value:
            value, origin = resolved[name], f"résolu par le rapport (donné : {value!r})"
        out.append({"name": name, "value": value, "origin": origin})
    return out


def _code_version() -> dict[str, Any]:
    """The package version, and the git commit when run from a checkout (dirty or not)."""
    out: dict[str, Any] = {"version": _versions().get("ent-audit", "absent")}
    if not (CHECKOUT / ".git").exists() or not shutil.which("git"):
        return out
    try:
        commit = subprocess.run(
            ["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(CHECKOUT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return out
    return {**out, "commit": commit, "dirty": bool(dirty)}


# -- earlier runs --------------------------------------------------------------------------


def runs(outputs: Path | str, name: str) -> list[dict]:
    """A report's runs, newest first: ``dir``, ``manifest``, ``summary`` (empty if absent).

    What a trend is built from: each earlier run's ``summary.json``, traceable to its run.
    """
    out = []
    folder = Path(outputs) / name
    if not folder.is_dir():
        return out
    for run_dir in sorted(
        (d for d in folder.iterdir() if RUN_NAME.fullmatch(d.name)), reverse=True
    ):
        manifest = run_dir / "manifest.json"
        if not manifest.is_file():
            continue
        summary = run_dir / "summary.json"
        out.append(
            {
                "dir": run_dir,
                "manifest": json.loads(manifest.read_text(encoding="utf-8")),
                "summary": json.loads(summary.read_text(encoding="utf-8"))
                if summary.is_file()
                else {},
            }
        )
    return out


def earlier_summaries(outputs: Path | str, name: str, before: Path | None = None) -> list[dict]:
    """The ``summary.json`` of a report's earlier runs (newest first), each with its run
    folder as ``run``; ``before`` leaves out that run and the later ones."""
    return [
        {**r["summary"], "run": str(r["dir"])}
        for r in runs(outputs, name)
        if r["summary"] and (before is None or r["dir"].name < Path(before).name)
    ]


def prune(outputs: Path | str, name: str, keep: int = KEEP) -> list[Path]:
    """Remove a report's runs beyond the ``keep`` newest (only folders named like runs)."""
    if keep < 1:
        raise ReportParameterError(name, "keep", f"attendu un entier >= 1, reçu {keep}")
    folder = Path(outputs) / name
    if not folder.is_dir():
        return []
    dirs = sorted(d for d in folder.iterdir() if d.is_dir() and RUN_NAME.fullmatch(d.name))
    removed = dirs[: max(0, len(dirs) - keep)]
    for d in removed:
        shutil.rmtree(d)
    return removed


# -- the index -------------------------------------------------------------------------------

STATUS_LABELS = page.RUN_STATUS


def write_index(outputs: Path | str) -> Path:
    """``outputs/index.html``: the latest run of each report first (verdict, French title,
    dates, key figures, links, one-line message), then the older runs grouped by report."""
    outputs = Path(outputs)
    outputs.mkdir(parents=True, exist_ok=True)
    names = [r.name for r in registry.REPORTS]
    names += sorted(
        d.name
        for d in outputs.iterdir()
        if d.is_dir() and d.name not in names and runs(outputs, d.name)
    )
    groups = []
    for name in names:
        title = registry.BY_NAME[name].title if name in registry.BY_NAME else name
        found = runs(outputs, name)
        for r in found:
            r["title"] = title
        groups.append((title, found))
    index = outputs / "index.html"
    index.write_text(page.index_page(groups, outputs), encoding="utf-8")
    return index
