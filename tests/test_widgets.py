"""The roster explorer driven as a coordinator drives it: selectors' values set one after the
other (ipywidgets has no test harness), buttons clicked; then for real in Voilà with Debian's
Chromium through Playwright, and ``make lab`` / ``make explorer`` started as this user."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ipywidgets as w
import pandas as pd
import pytest
from helpers import CHROMIUM, leaks, personal_values

from ent_audit.analyses import roster
from ent_audit.store import Store, access
from ent_audit.synth import DEFECTS, write
from ent_audit.widgets import ANY, RosterExplorer

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store of 8 schools in several circonscriptions, with a few defects."""
    tmp = tmp_path_factory.mktemp("widgets")
    synth = write(
        tmp / "synth", seed=21, schools=8, pupils=480, defects=dict.fromkeys(DEFECTS, 0.01)
    )
    store = Store(tmp / "store")
    store.ingest(synth.archives[:1])
    return dict(synth=synth, store=store, snap=store.latest())


def texts(widget) -> list[str]:
    """Every text a widget tree shows: values, options, titles, descriptions."""
    out = []
    for attr in ("value", "description", "placeholder", "tooltip"):
        v = getattr(widget, attr, None)
        if isinstance(v, str):
            out.append(v)
    out += [str(o) for o in getattr(widget, "options", ()) or ()]
    out += [str(t) for t in getattr(widget, "titles", ()) or ()]
    for child in getattr(widget, "children", ()) or ():
        out += texts(child)
    return out


def test_selectors_chain_circonscription_commune_school(world):
    ex = RosterExplorer(world["store"])
    options = ex.roster.options
    circ = options["circonscription"].value_counts().index[0]
    ex.circonscription.value = circ
    assert list(ex.commune.options) == [ANY, *roster.communes(options, circ)]
    commune = ex.commune.options[1]
    ex.commune.value = commune
    expected = options[(options["circonscription"] == circ) & (options["commune"] == commune)]
    assert [v for _, v in ex.school.options][1:] == expected["uai"].tolist()
    assert ex.view is None  # changing the filters never picks a school by itself
    uai = expected["uai"].iloc[0]
    ex.school.value = uai
    assert ex.view.uai == uai
    assert f"({uai})" in ex.title.value


def test_the_search_box_finds_a_school_by_uai_or_name(world):
    ex = RosterExplorer(world["store"])
    row = ex.roster.options.iloc[3]
    ex.search.value = row["uai"].lower()
    assert [v for _, v in ex.school.options] == [None, row["uai"]]
    ex.search.value = row["name"].split()[-1].upper()
    assert row["uai"] in [v for _, v in ex.school.options]


def test_each_tab_shows_what_the_snapshot_says_for_the_school(world):
    snap = world["snap"]
    ex = RosterExplorer(world["store"], show_personal_data=True)
    for uai in ex.roster.options["uai"]:
        ex.select(uai)
        frames = ex.frames
        assert set(frames) == {"classes", "pupils", "staff", "findings", "activity"}
        assert sorted(frames["pupils"]["pupil"]) == sorted(snap.roster(uai)["jointure"])
        school = snap.structures.loc[snap.structures["uai"] == uai, "jointure"]
        directors = snap.staff_director[snap.staff_director["structure"].isin(school)]
        staff = frames["staff"]
        assert set(staff.loc[staff["director"], "staff"]) == set(directors["staff"])
        sc = snap.student_class[snap.student_class["structure"].isin(school)]
        assert set(frames["classes"]["class_name"]) - {roster.NO_CLASS} == set(sc["class_name"])
        view = roster.school(ex.roster, uai)
        for name, df in view.frames().items():
            pd.testing.assert_frame_equal(frames[name], df)
        pupils = ex.panes[roster.Tab.PUPILS]
        assert f"<b>{len(frames['pupils'])} élève(s)</b>" in pupils.header.value
        assert f"Élèves ({len(frames['pupils'])})" in ex.tabs.titles


def test_no_name_birth_date_mail_or_phone_in_any_widget_by_default(world):
    secrets = personal_values(world["synth"].perimeter)
    ex = RosterExplorer(world["store"], page_size=1000)
    before = len(access.read(world["store"].path))
    for uai in ex.roster.options["uai"]:
        ex.select(uai)
        for pane in ex.panes.values():
            pane.export_csv()
        shown = "\n".join(texts(ex.widget))
        assert leaks(shown, secrets) == set(), uai
        assert "Données masquées" in shown
    assert len(access.read(world["store"].path)) == before  # masked views are not journaled


def test_an_explorer_given_the_audit_reads_no_personal_column_and_shows_the_same(world):
    from ent_audit import quality

    given = RosterExplorer(world["store"], audit=quality.audit(world["snap"]))
    ran = RosterExplorer(world["store"])
    held = {c for t in given.roster.state.tables.values() for c in t.column_names}
    assert not {"last_name", "first_name", "birth_date", "ine", "mail"} & held
    for uai in ran.roster.options["uai"].iloc[:3]:
        a, b = given.select(uai), ran.select(uai)
        assert a.to_dict() == b.to_dict()
        for tab, frame in a.frames().items():
            pd.testing.assert_frame_equal(frame, b.frames()[tab])
        assert given.summary.value == ran.summary.value


def test_an_unmasked_view_writes_exactly_one_journal_line(world, tmp_path):
    store = Store(tmp_path / "store")
    store.ingest(world["synth"].archives[:1])
    ex = RosterExplorer(store, show_personal_data=True)
    uai = ex.roster.options["uai"].iloc[0]
    ex.circonscription.value = ex.roster.options["circonscription"].iloc[0]
    ex.commune.value = ex.roster.options["commune"].iloc[0]
    assert access.read(store.path).empty
    ex.school.value = uai
    journal = store.path / access.JOURNAL
    lines = journal.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert set(line) == {"date", "time", "user", "uai", "shown"}
    assert line["uai"] == uai and line["user"]
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert leaks(lines[0], personal_values(world["synth"].perimeter)) == set()
    pupils = ex.frames["pupils"]
    first = pupils.iloc[0]
    assert first["last_name"] in ex.panes[roster.Tab.PUPILS].table.value  # shown in clear
    ex.select(uai)  # shown again: journaled again
    assert len(journal.read_text().splitlines()) == 2


def test_large_tables_page_and_export_whole_as_french_csv(world, tmp_path):
    ex = RosterExplorer(world["store"], page_size=10, export_dir=tmp_path / "exports")
    uai = ex.roster.options["uai"].iloc[0]
    ex.select(uai)
    pane = ex.panes[roster.Tab.PUPILS]
    n = len(ex.frames["pupils"])
    pages = -(-n // 10)
    assert pane.header.value.endswith(f"page 1 / {pages}")
    assert pane.previous.disabled and not pane.next.disabled
    assert pane.table.value.count("</tr>") == 11  # header and 10 rows
    pane.next.click()
    assert pane.header.value.endswith(f"page 2 / {pages}")
    for _ in range(pages + 3):
        pane.next.click()
    assert pane.header.value.endswith(f"page {pages} / {pages}") and pane.next.disabled
    assert pane.table.value.count("</tr>") == 1 + n - 10 * (pages - 1)
    pane.export.click()
    path = tmp_path / "exports" / f"{uai}-pupils.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["élève", "niveau", "cycle", "classe"]
    assert len(rows) == n + 1  # every page
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert f'download="{uai}-pupils.csv"' in pane.download.value


def test_the_notebook_opens_the_explorer_through_one_call(world, monkeypatch):
    monkeypatch.setenv("ENT_AUDIT_STORE", str(world["store"].path))
    uai = roster.choices(world["snap"])["uai"].iloc[0]
    ex = RosterExplorer.open("", uai=uai)
    assert ex.view.uai == uai
    assert isinstance(ex.widget, w.VBox)


# -- for real: Voilà in Chromium, make lab, make explorer -----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(store: Path) -> dict[str, str]:
    env = dict(os.environ, ENT_AUDIT_STORE=str(store), PYTHONPATH=str(ROOT))
    env["JUPYTER_RUNTIME_DIR"] = str(store.parent / "jupyter-runtime")
    return env


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server in its own process group, so stopping it stops make and its children."""
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (make and the server it started), SIGKILL to what
    is left after 30 s; nothing of the group may survive."""
    group = os.getpgid(proc.pid)
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _group_alive(group) and time.monotonic() < deadline:
        proc.poll()  # reap make as soon as it exits
        time.sleep(0.2)
    if _group_alive(group):
        os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.2)
    assert not _group_alive(group)


def _wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} ne répond pas:\n{log.read_text(errors='replace')[-3000:]}")


def _make(target: str, store: Path, port_var: str, port: int) -> list[str]:
    """``make TARGET`` with this interpreter's environment as the venv (already installed:
    ``-o`` keeps make from rebuilding it) and the generated store."""
    venv = Path(sys.prefix)
    return [
        "make", "--no-print-directory", "-o", str(venv / ".installed"), target,
        f"VENV={venv}", f"STORE={store}", f"{port_var}={port}",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_voila_serves_the_explorer_and_chromium_picks_a_school(world, tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    log = tmp_path / "voila.log"
    proc = _start(
        [
            str(Path(sys.prefix) / "bin" / "voila"),
            str(ROOT / "notebooks" / "roster_explorer.ipynb"),
            "--Voila.ip=127.0.0.1",
            f"--port={port}",
            "--no-browser",
        ],
        _env(world["store"].path),
        log,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/", proc, log)
        options = RosterExplorer(world["store"]).roster.options
        row = options.iloc[len(options) // 2]
        expected = len(world["snap"].roster(row["uai"]))
        errors: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
            page.wait_for_selector(".ent-school select", timeout=120_000)
            page.select_option(".ent-school select", label=row["label"])
            page.get_by_role("tab", name=f"Élèves ({expected})").click()
            count = page.locator(".ent-tab-pupils .ent-count")
            count.wait_for(state="visible", timeout=30_000)
            assert count.inner_text().startswith(f"{expected} élève(s)")
            assert "Données masquées" in page.inner_text("body")
            browser.close()
        assert errors == []
    finally:
        _stop(proc)


@pytest.mark.slow
def test_make_lab_starts_as_this_user_on_localhost_with_a_token(world, tmp_path):
    port = _free_port()
    log = tmp_path / "lab.log"
    proc = _start(
        _make("lab", world["store"].path, "LAB_PORT", port), _env(world["store"].path), log
    )
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/api", proc, log) == 200
        deadline = time.monotonic() + 30
        while "token=" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        assert f"http://127.0.0.1:{port}/lab?token=" in text
        assert "Running as root is not recommended" not in text
    finally:
        _stop(proc)


@pytest.mark.slow
def test_make_explorer_serves_the_notebook_on_localhost(world, tmp_path):
    port = _free_port()
    log = tmp_path / "explorer.log"
    proc = _start(
        _make("explorer", world["store"].path, "EXPLORER_PORT", port),
        _env(world["store"].path),
        log,
    )
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/", proc, log) == 200
        assert f"http://127.0.0.1:{port}/" in log.read_text(errors="replace")
    finally:
        _stop(proc)
