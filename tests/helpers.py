"""What the report tests share: a real Chromium behind a recording proxy, the checks every
rendered page must pass, and the scan of pages and files for the synthetic people's data."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import lxml.html

from ent_audit.synth import Perimeter

CHROMIUM = shutil.which("chromium")
BROWSER_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com"}
"""Chromium's own service traffic (browser process, not the page), seen despite the flags."""

PROBE = r"""<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push("uncaught: " + e.message));
const _error = console.error;
console.error = (...a) => { window.__errors.push("console.error: " + a.join(" ")); _error(...a); };
const _axis = a => (a && a.title && a.title.text) || "";
window.addEventListener("load", () => setTimeout(() => {
  const verdict = document.getElementById("verdict");
  const figures = [...document.querySelectorAll(".plotly-graph-div")].map(gd => ({
    title: (gd._fullLayout && gd._fullLayout.title && gd._fullLayout.title.text) || "",
    axes: Object.keys(gd._fullLayout || {}).filter(k => /^[xy]axis\d*$/.test(k))
      .map(k => ({axis: k, title: _axis(gd._fullLayout[k])})),
    legend: (gd._fullLayout && gd._fullLayout.legend && _axis(gd._fullLayout.legend)) || "",
    traces: (gd._fullData || []).map(t => ({
      type: t.type, name: t.name || "", hovertemplate: t.hovertemplate || "",
      x: Array.from(t.x || []), y: Array.from(t.y || []),
      text: Array.isArray(t.text) ? t.text.map(String) : String(t.text || "")}))}));
  const out = document.createElement("pre");
  out.id = "__probe";
  out.textContent = JSON.stringify({
    errors: window.__errors,
    resources: performance.getEntriesByType("resource").map(r => r.name),
    lang: document.documentElement.lang,
    title: document.title,
    width: window.innerWidth,
    verdict: verdict && {top: verdict.getBoundingClientRect().top,
                         bottom: verdict.getBoundingClientRect().bottom,
                         text: verdict.innerText},
    text: document.body.innerText,
    figures});
  document.body.appendChild(out);
}, 500));
</script>"""


class _Proxy(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def _refuse(self):
        _Proxy.seen.append(f"{self.command} {self.path}")
        self.send_error(502)

    do_GET = do_POST = do_HEAD = do_CONNECT = _refuse

    def log_message(self, *args):
        pass


def browse(html: Path, tmp: Path) -> tuple[lxml.html.HtmlElement, dict, list[str], str]:
    """Open a copy of ``html`` (with a probe script first in <head>) in headless Chromium
    behind a proxy that records every request; return DOM, probe report, requests, stderr."""
    page = tmp / html.name
    page.write_text(
        html.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8"
    )
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--no-pings",
                "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate",
                f"--user-data-dir={tmp / 'chromium-profile'}",
                "--window-size=1400,900",
                "--enable-logging=stderr",
                "--v=0",
                f"--proxy-server=http://127.0.0.1:{server.server_address[1]}",
                "--proxy-bypass-list=<-loopback>",
                "--virtual-time-budget=5000",
                "--dump-dom",
                page.as_uri(),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
    dom = lxml.html.fromstring(proc.stdout)
    probe = json.loads(dom.get_element_by_id("__probe").text)
    return dom, probe, list(_Proxy.seen), proc.stderr


ENGLISH = ("count", "pupils", "findings", "blocking", "True", "False", "NaN", "None")
"""Words that betray a raw column name or a Python value on a French page."""


def probe(dom: lxml.html.HtmlElement) -> dict:
    """What the probe script measured in the browser (:func:`browse`)."""
    return json.loads(dom.get_element_by_id("__probe").text)


def english_words(text: str) -> set[str]:
    return {w for w in ENGLISH if re.search(rf"\b{w}\b", text)}


def check_french_first_screen(dom: lxml.html.HtmlElement) -> dict:
    """What every report page must satisfy for a French auditor: ``lang="fr"``, a French
    title, the verdict banner inside the first 900 px of a 1400-px window, no English word
    in the visible text or in any chart's hovers, legends and titles, every chart and axis
    titled. Returns the probe (figures as drawn)."""
    p = probe(dom)
    assert p["lang"] == "fr" and dom.get("lang") == "fr"
    assert p["title"] and not english_words(p["title"])
    assert p["width"] == 1400
    assert p["verdict"] and 0 <= p["verdict"]["top"] and p["verdict"]["bottom"] <= 900, p["verdict"]
    assert any(v in p["verdict"]["text"] for v in ("CONFORME", "À SURVEILLER", "ÉCHEC"))
    assert not english_words(p["text"]), english_words(p["text"])
    for fig in p["figures"]:
        assert fig["title"], fig
        assert fig["axes"] and all(a["title"] for a in fig["axes"]), fig["title"]
        chart_text = " ".join(
            [fig["title"], fig["legend"], *(a["title"] for a in fig["axes"])]
            + [f"{t['name']} {t['hovertemplate']}" for t in fig["traces"]]
        )
        assert not english_words(chart_text), (fig["title"], english_words(chart_text))
    return p


def check_rendered(html: Path, tmp: Path) -> tuple[lxml.html.HtmlElement, list]:
    """Open a rendered report in Chromium and assert what every report page must satisfy:
    plotly.js embedded once, every figure drawn, no script error, no request leaving the
    page, no code, no prompt. Returns the DOM and its plotly figures."""
    assert html.read_text(encoding="utf-8").count("plotly.js v") == 1  # embedded once
    dom, probe, requests, stderr = browse(html, tmp)
    assert [s for s in dom.xpath("//script/@src") if not s.startswith("file:")] == []
    plots = dom.xpath('//div[contains(concat(" ", @class, " "), " plotly-graph-div ")]')
    for div in plots:
        assert div.xpath(".//*[local-name()='svg']"), div.get("id")
    assert probe["errors"] == []
    assert "Uncaught" not in stderr
    assert [r for r in probe["resources"] if not r.startswith("file:")] == []
    page_requests = [r for r in requests if not any(h in r for h in BROWSER_HOSTS)]
    assert page_requests == []
    assert dom.xpath('//*[contains(@class, "jp-CodeCell")]')
    assert not dom.xpath(
        '//*[contains(@class, "jp-CodeCell")]//*[contains(@class, "jp-InputArea")'
        ' or contains(@class, "jp-Editor") or contains(@class, "highlight")]'
    )
    assert not dom.xpath(
        '//*[contains(@class, "jp-InputPrompt") or contains(@class, "jp-OutputPrompt")]'
    )
    text = dom.text_content()
    assert "import plotly" not in text and "notebook.publish" not in text
    return dom, plots


def personal_values(perimeter: Perimeter) -> set[str]:
    """The synthetic people's names, birth dates (both spellings), mails, INE and the last nine
    digits of their phones: none may appear in anything published."""
    values: set[str] = set()
    for ext in perimeter.extractions:
        for kind in ("Eleve", "PersRelEleve", "PersEducNat"):
            for r in ext.records.get(kind, []):
                a = r.attrs
                first, last = (
                    (a.get("ENTPersonPrenom") or [None])[0],
                    (a.get("ENTPersonNom") or [None])[0],
                )
                if first and last:
                    values |= {f"{first} {last}", f"{last} {first}", f"{last.upper()} {first}"}
                for attr in ("ENTPersonDateNaissance", "ENTPersonMail", "ENTEleveINE"):
                    v = (a.get(attr) or [None])[0]
                    if v:
                        values.add(v)
                        if attr == "ENTPersonDateNaissance" and re.fullmatch(r"\d\d/\d\d/\d{4}", v):
                            d, m, y = v.split("/")
                            values.add(f"{y}-{m}-{d}")
                for attr in (
                    "ENTPersRelEleveTelMobile",
                    "ENTPersonTelPerso",
                    "ENTPersRelEleveTelPro",
                ):
                    v = (a.get(attr) or [None])[0]
                    if v:
                        values.add(re.sub(r"\D", "", v)[-9:])
    return values


def leaks(text: str, values: set[str]) -> set[str]:
    """The ``values`` found in ``text``, phone digits compared across separators."""
    numbers = {re.sub(r"\D", "", n) for n in re.findall(r"\+?\d[\d .-]{7,}\d", text)}
    return {v for v in values if v in text} | {
        v for v in values if v.isdigit() and any(v in n for n in numbers)
    }


def page_text(page: Path) -> str:
    """A rendered page's HTML without plotly.js itself (what the report wrote)."""
    doc = lxml.html.fromstring(page.read_bytes())
    for script in doc.xpath("//script"):
        if "plotly.js v" in (script.text or "")[:2000]:
            script.getparent().remove(script)
    return lxml.html.tostring(doc, encoding="unicode")
