"""French labels and formats: what a French reader expects, in one place."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ent_audit.checks import Check, Verdict, attention, verdict
from ent_audit.reports import labels

NNBSP = "\u202f"


def test_numbers_have_a_space_for_thousands_and_a_comma_for_decimals():
    assert labels.number(50179) == f"50{NNBSP}179"
    assert labels.number(1234567.891, 2) == f"1{NNBSP}234{NNBSP}567,89"
    assert labels.number(97.5, 1) == "97,5"
    assert labels.percent(0.125) == f"12,5{NNBSP}%"
    assert [labels.number(v) for v in (None, float("nan"), pd.NA, "<5", True)] == [
        "—",
        "—",
        "—",
        "<5",
        "oui",
    ]


def test_dates_are_day_first_and_times_in_paris():
    assert labels.date(dt.date(2026, 9, 14)) == "14/09/2026"
    assert labels.date("2026-09-14") == "14/09/2026"
    assert labels.datetime("2026-09-14T04:30:00+00:00") == "14/09/2026 06:30"  # summer
    assert labels.datetime(dt.datetime(2026, 12, 1, 23, 30)) == "02/12/2026 00:30"  # winter, UTC
    out = labels.datetimes(pd.Series(pd.to_datetime(["2026-09-14 04:30"])))
    assert out.tolist() == ["14/09/2026 06:30"]
    assert labels.duration(6.24) == f"6,2{NNBSP}s"
    assert labels.duration(125) == f"2{NNBSP}min 05{NNBSP}s"


def test_school_names_lose_their_dollar_separators():
    assert labels.school_name("ECOLE ELEMENTAIRE$JEAN JAURES") == "ECOLE ELEMENTAIRE JEAN JAURES"
    assert labels.school_name("$$") == labels.MISSING
    raw = pd.Series(["A$B", None, "C $ D"], dtype="string")
    assert labels.school_names(raw).tolist() == ["A B", labels.MISSING, "C D"]


def test_cycles_are_integers_and_missing_values_read_non_renseigne():
    cycles = pd.Series([1, 2.0, None, 3], dtype="Float64")
    assert labels.cycle_label(cycles).tolist() == ["cycle 1", "cycle 2", "non renseigné", "cycle 3"]
    levels = pd.Series(["CP", None], dtype="string")
    assert labels.level_label(levels).tolist() == ["CP", "non renseigné"]


def test_one_colour_and_one_order_per_category_everywhere():
    assert labels.CATEGORY_ORDERS["level"][-1] == labels.MISSING
    assert labels.COLOURS["CP"] == labels.COLOURS["cycle 2"]  # a level wears its cycle's colour
    assert labels.COLOURS[labels.MISSING] == "#999999"
    assert labels.label("pupils") == "élèves" and labels.label("other_thing") == "other thing"


def test_the_verdict_derives_from_the_checks_only():
    ok = Check.of("a", "A", True)
    warn = Check.of("b", "B", False)
    skipped = Check.of("c", "C", None, blocking=True)
    fail = Check.of("d", "D", False, blocking=True)
    assert verdict([ok]) == Verdict.COMPLIANT
    assert verdict([ok, warn]) == verdict([ok, skipped]) == verdict([]) == Verdict.WATCH
    assert verdict([ok, warn, skipped, fail]) == Verdict.FAILED
    assert attention([ok, skipped, warn, fail]) == [fail, warn, skipped]


def test_every_headline_figure_of_every_report_has_a_french_label():
    import json
    import re

    from ent_audit.reports import labels, registry

    for r in registry.REPORTS:
        source = json.loads(registry.notebook_path(r).read_text(encoding="utf-8"))
        code = "".join("".join(c["source"]) for c in source["cells"] if c["cell_type"] == "code")
        for block in re.findall(r"headline=\(([^)]*)\)", code):
            for key in re.findall(r'"(\w+)"', block):
                assert key in labels.COLUMNS, (r.name, key)
