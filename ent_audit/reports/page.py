"""The parts of a report page the runner adds around the notebook's outputs, and the index.

First screen: the report's title, the state date, the verdict banner (one line per failed or
warned check, skipped checks named « non contrôlés »), the key figures. Side: the table of
contents and the run's files. Footer: provenance (inputs with SHA-256, parameters actually
used, code version, duration) and the small-cell rule. Every page gets them from what the
notebook published (``summary.json``) and what the runner recorded (``manifest.json``), so a
new report has them without a line of HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ent_audit import privacy
from ent_audit.checks import (
    VERDICT_LABELS,
    Check,
    Status,
    Verdict,
    attention,
    failure_message,
    verdict,
)
from ent_audit.reports import labels as fr

ERROR = "error"
"""The banner's class when the report could not run to its end (no verdict)."""

RUN_STATUS = {
    "ok": "réussi",
    "blocking": "contrôle bloquant en échec",
    "error": "n'a pas pu s'exécuter",
}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def figure_value(value: Any) -> str:
    """A published figure as the page shows it: « 50 179 », « 14/09/2026 », « <5 »."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return fr.date(value)
    if isinstance(value, float):
        return fr.number(value, 1)
    if isinstance(value, (int, str)) or value is None:
        return fr.number(value)
    return fr.EMPTY


def check_line(check: Check) -> str:
    """« <b>title</b> : detail (id) », the id kept for whoever searches the logs."""
    detail = f" : {esc(check.detail)}" if check.detail else ""
    return f"<li><strong>{esc(check.title)}</strong>{detail} <code>{esc(check.id)}</code></li>"


def verdict_of(status: str, checks: list[Check]) -> str:
    """The banner's class: a :class:`Verdict` value, or ``error`` for a run that broke."""
    return ERROR if status == "error" else str(verdict(checks))


def verdict_label(kind: str) -> str:
    return "NON EXÉCUTÉ" if kind == ERROR else VERDICT_LABELS[Verdict(kind)]


def banner(status: str, checks: list[Check], message: str = "") -> str:
    """The verdict and why, in a few lines."""
    kind = verdict_of(status, checks)
    failed = [c for c in attention(checks) if c.failed]
    skipped = [c for c in checks if c.status == Status.SKIPPED]
    passed = sum(c.status == Status.PASSED for c in checks)
    parts = [f'<p class="ea-verdict-label">{verdict_label(kind)}</p>']
    if kind == ERROR:
        parts.append(
            "<p>Le rapport s'est arrêté avant la fin : ce qui suit est incomplet.</p>"
            f"<p><code>{esc(message)}</code></p>"
        )
    elif not checks:
        parts.append("<p>Ce rapport ne publie aucun contrôle : rien n'a été vérifié.</p>")
    else:
        blocking = sum(c.failed and c.blocking for c in checks)
        counts = [f"{passed} conforme{'s' if passed > 1 else ''} sur {len(checks)}"]
        if blocking:
            counts.append(f"{blocking} en échec bloquant")
        if len(failed) > blocking:
            counts.append(f"{len(failed) - blocking} à surveiller")
        if skipped:
            counts.append(f"{len(skipped)} non contrôlé{'s' if len(skipped) > 1 else ''}")
        parts.append(f"<p>Contrôles : {', '.join(counts)}.</p>")
        if failed:
            parts.append("<ul>" + "".join(check_line(c) for c in failed) + "</ul>")
        if skipped:
            names = ", ".join(
                f"{esc(c.title)}{f' ({esc(c.detail)})' if c.detail else ''}" for c in skipped
            )
            parts.append(f"<p>Non contrôlés : {names}.</p>")
    return (
        f'<section class="ea-verdict ea-verdict-{kind}" id="verdict" role="status">'
        + "".join(parts)
        + "</section>"
    )


def headline(summary: dict) -> list[tuple[str, str]]:
    """(French label, formatted value) of the figures the notebook named as its headline."""
    figures = summary.get("figures", {})
    names = summary.get("labels", {})
    return [
        (names.get(k) or fr.label(k), figure_value(figures[k]))
        for k in summary.get("headline", [])
        if k in figures and k != "state_date"
    ]


def header(title: str, summary: dict, status: str, message: str, started: str) -> str:
    """The first screen: title, dates, verdict, key figures."""
    checks = [Check.from_dict(c) for c in summary.get("checks", [])]
    state = summary.get("state_date") or summary.get("figures", {}).get("state_date")
    when = [f"État du {fr.date(state)}"] if state else []
    when.append(f"rapport du {fr.datetime(started)} (heure de Paris)")
    cards = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in headline(summary))
    return (
        '<header class="ea-header">'
        f"<h1>{esc(title)}</h1>"
        f'<p class="ea-meta">{" · ".join(when)}</p>'
        + banner(status, checks, message)
        + (f'<dl class="ea-headline">{cards}</dl>' if cards else "")
        + "</header>"
    )


TOC_MARK = "<!--ea-toc-->"
_H2 = re.compile(r'<h2 id="([^"]+)">(.*?)(?:<a class="anchor-link"[^>]*>.*?</a>)?</h2>', re.S)


def toc(body: str) -> str:
    """The table of contents: every level-2 heading of the notebook's cells, in order."""
    items = [
        f'<li><a href="#{anchor}">{re.sub(r"<[^>]+>", "", text).strip()}</a></li>'
        for anchor, text in _H2.findall(body)
    ]
    items.append('<li><a href="#provenance">Provenance</a></li>')
    return "".join(items)


def side(files: list[tuple[str, str]]) -> str:
    """The navigation column: the contents (filled in after rendering) and the run's files."""
    links = "".join(
        f'<li><a href="{esc(href)}" title="{esc(name)}">{esc(fr.file_label(name))}</a></li>'
        for name, href in files
    )
    return (
        '<p class="ea-brand">ent-audit</p>'
        '<p class="ea-side-title">Sommaire</p>'
        f'<ol><li><a href="#verdict">Verdict</a></li>{TOC_MARK}</ol>'
        f'<p class="ea-side-title">Fichiers</p><ul>{links}</ul>'
    )


def _short(sha: str) -> str:
    return f'<code title="{esc(sha)}">{esc(sha[:12])}</code>'


def _value(value: Any) -> str:
    if value == "" or value is None:
        return "<em>(vide)</em>"
    if isinstance(value, bool):
        return "oui" if value else "non"
    return f"<code>{esc(value)}</code>"


def footer(
    *,
    inputs: list[dict],
    parameters: list[dict],
    code: dict[str, str],
    started: str,
    seconds: float,
    small_cell: int,
    files: list[tuple[str, str]],
) -> str:
    """Provenance: where every figure comes from, and the small-cell rule."""
    rows = "".join(
        f"<tr><td>{esc(i['path'])}</td><td>{_short(i['sha256'])}</td>"
        f'<td class="ea-num">{fr.number(i["bytes"])}</td></tr>'
        for i in inputs
    )
    params = "".join(
        f"<tr><td><code>{esc(p['name'])}</code></td><td>{_value(p['value'])}</td>"
        f"<td>{esc(p['origin'])}</td></tr>"
        for p in parameters
    )
    version = f"ent-audit {esc(code.get('version', '?'))}"
    if code.get("commit"):
        dirty = " (avec des modifications non validées)" if code.get("dirty") else ""
        version += f", commit <code>{esc(code['commit'][:12])}</code>{dirty}"
    libs = ", ".join(f"{esc(k)} {esc(v)}" for k, v in code.items() if k in _LIBS_SHOWN)
    links = " · ".join(
        f'<a href="{esc(href)}" title="{esc(name)}">{esc(fr.file_label(name))}</a>'
        for name, href in files
    )
    return (
        '<footer class="ea-footer">'
        '<h2 id="provenance">Provenance</h2>'
        f'<p class="ea-rule">{esc(privacy.small_cell_rule(small_cell))}</p>'
        f"<p>Exécution : {fr.datetime(started)} (heure de Paris), durée "
        f"{fr.duration(seconds)}. Code : {version} ; {libs}.</p>"
        f"<p>Fichiers : {links}. Les SHA-256 complets (entrées et sorties) sont dans "
        "manifest.json.</p>"
        "<h3>Entrées</h3><table><thead><tr><th>fichier</th><th>SHA-256</th>"
        f'<th class="ea-num">octets</th></tr></thead><tbody>{rows}</tbody></table>'
        "<h3>Paramètres utilisés</h3><table><thead><tr><th>paramètre</th><th>valeur</th>"
        f"<th>origine</th></tr></thead><tbody>{params}</tbody></table>"
        "</footer>"
    )


_LIBS_SHOWN = ("python", "pandas", "plotly", "papermill", "nbconvert")


# -- the index ------------------------------------------------------------------------------


def _message(status: str, checks: list[Check], message: str) -> str:
    """The first thing to look at: one line per failed blocking check (``rule : N
    constats, seuil d'échec T atteint``), else one line."""
    failures = failure_message(checks)
    if status != "error" and failures:
        return failures
    if status == "error":
        return message.splitlines()[0] if message else "le rapport n'a pas pu s'exécuter"
    first = attention(checks)
    if not checks:
        return "aucun contrôle publié"
    if not first:
        return f"{len(checks)} contrôle{'s' if len(checks) > 1 else ''} conforme" + (
            "s" if len(checks) > 1 else ""
        )
    c = first[0]
    line = f"{c.title} : {c.detail}" if c.detail else c.title
    if c.status == Status.SKIPPED:
        line = f"non contrôlé : {line}"
    more = len([x for x in first if x is not c])
    return line + (f" (et {more} autre{'s' if more > 1 else ''})" if more else "")


def _lines(text: str) -> str:
    return "<br>".join(esc(line) for line in text.splitlines())


def index_row(run: dict, outputs: Path, *, latest: bool) -> str:
    """One run in the index: verdict, title, dates, key figures, links, one-line message."""
    summary, manifest, run_dir = run["summary"], run["manifest"], run["dir"]
    checks = [Check.from_dict(c) for c in summary.get("checks", [])]
    kind = verdict_of(manifest["status"], checks)
    rel = run_dir.relative_to(outputs).as_posix()
    page = run_dir / f"{manifest['report']}.html"
    links = []
    if page.exists():
        links.append(f'<a href="{esc(rel)}/{esc(page.name)}">page</a>')
    links += [
        f'<a href="{esc(rel)}/{esc(p.name)}" title="{esc(p.name)}">{esc(fr.file_label(p.name))}</a>'
        for p in sorted(run_dir.glob("*.csv"))
    ]
    links.append(f'<a href="{esc(rel)}/manifest.json">manifeste</a>')
    figures = " · ".join(f"{esc(k)} : {esc(v)}" for k, v in headline(summary))
    state = summary.get("state_date") or summary.get("figures", {}).get("state_date")
    title = esc(run["title"]) if latest else ""
    return (
        f'<tr class="ea-verdict-{kind}">'
        + (f"<td><strong>{title}</strong></td>" if latest else "")
        + f'<td class="ea-v">{verdict_label(kind)}</td>'
        f"<td>{fr.datetime(manifest['started'])}</td>"
        f"<td>{fr.date(state) if state else fr.EMPTY}</td>"
        f"<td>{figures}</td><td>{' · '.join(links)}</td>"
        f"<td>{_lines(_message(manifest['status'], checks, manifest.get('message', '')))}</td></tr>"
    )


INDEX_STYLE = """
body{font-family:Marianne,Arial,"DejaVu Sans",sans-serif;margin:1.5rem 2rem;color:#1e1e1e}
table{border-collapse:collapse;margin:.4rem 0 1.5rem}
td,th{border-bottom:1px solid #d8d8d8;padding:.35rem .6rem;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #1e1e1e}
td.ea-v{font-weight:800;white-space:nowrap}
tr.ea-verdict-compliant td.ea-v{color:#18753c}tr.ea-verdict-watch td.ea-v{color:#8a5300}
tr.ea-verdict-failed td.ea-v{color:#b3261e}tr.ea-verdict-error td.ea-v{color:#5a5a5a}
tr.ea-verdict-failed{background:#fde4e1}tr.ea-verdict-error{background:#ececec}
h2{font-size:1.2rem;margin-top:2rem}p.ea-meta{color:#5a5a5a}
"""


def index_page(groups: Iterable[tuple[str, list[dict]]], outputs: Path) -> str:
    """Latest run of each report first, then the older ones, grouped by report."""
    groups = [(title, runs) for title, runs in groups if runs]
    head = (
        "<tr><th>rapport</th><th>verdict</th><th>exécuté le</th><th>état du</th>"
        "<th>chiffres clés</th><th>fichiers</th><th>message</th></tr>"
    )
    latest = "".join(index_row(runs[0], outputs, latest=True) for _, runs in groups)
    older = []
    for title, runs in groups:
        if len(runs) < 2:
            continue
        rows = "".join(index_row(r, outputs, latest=False) for r in runs[1:])
        older.append(
            f"<h3>{esc(title)}</h3><table><thead><tr><th>verdict</th><th>exécuté le</th>"
            "<th>état du</th><th>chiffres clés</th><th>fichiers</th><th>message</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    body = (
        f"<table><thead>{head}</thead><tbody>{latest}</tbody></table>"
        if latest
        else "<p>Aucun rapport exécuté.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Rapports ent-audit</title>
<style>{INDEX_STYLE}</style></head>
<body><h1>Rapports ent-audit</h1>
<p class="ea-meta">Dernière exécution de chaque rapport, puis les précédentes. Heures de Paris.</p>
<h2>Dernières exécutions</h2>
{body}
{"<h2>Exécutions précédentes</h2>" + "".join(older) if older else ""}
</body></html>
"""
