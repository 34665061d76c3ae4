"""Writing what the provider sends: the event log by month (CSV and JSON lines, with a few
broken lines), the daily CSV; the account export goes through
:func:`ent_audit.synth.accounts.write_accounts`."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ent_audit.synth.activity.model import (
    APPLICATIONS,
    CSV_COLUMNS,
    DAILY_COLUMNS,
    DEVICES,
    DEVICES_EN,
    EVENTS_EN,
    EVENTS_FR,
    JSONL_KEYS,
    LABELS_EN,
    LABELS_FR,
    LOGIN,
    PROFILES,
)


@dataclass(frozen=True)
class ActivityFiles:
    """What :func:`write_activity` put on disk."""

    out: Path
    events_csv: list[Path]
    """The raw event log, one CSV per month."""
    events_jsonl: list[Path]
    """The same events as JSON lines (English labels, the keys of :data:`JSONL_MAPPING`)."""
    accounts: Path
    daily: Path
    truth: Path
    events: int
    """Events written (malformed lines not counted)."""
    start: dt.date
    end: dt.date
    frames: dict = field(default_factory=dict, repr=False, compare=False)
    """``events`` (clear jointures), ``members``, ``accounts``, ``schools``: for tests."""


# -- writing -------------------------------------------------------------------------------


def _month_slices(ts: np.ndarray) -> list[tuple[str, slice]]:
    months = ts.astype("datetime64[M]")
    bounds = np.flatnonzero(months[1:] != months[:-1]) + 1
    edges = [0, *bounds.tolist(), len(ts)]
    return [(str(months[a]), slice(a, b)) for a, b in itertools.pairwise(edges)]


def _label(codes: np.ndarray, labels: tuple[str, ...], missing: str = "") -> pa.Array:
    table = pa.array([*labels, missing])
    idx = np.where(codes < 0, len(labels), codes).astype(np.int32)
    return table.take(pa.array(idx))


def _arrow_events(df: pd.DataFrame, english: bool) -> pa.Table:
    names = JSONL_KEYS if english else CSV_COLUMNS
    ts = pa.array(df["ts"].to_numpy().astype("datetime64[s]"), pa.timestamp("s"))
    fmt = "%Y-%m-%d %H:%M:%S" if english else "%Y-%m-%dT%H:%M:%S"
    apps = tuple(a for a, _ in APPLICATIONS)
    cols = [
        pc.strftime(ts, fmt),
        pa.array(df["user"].to_numpy(), pa.string()),
        _label(df["profile"].to_numpy(), LABELS_EN if english else LABELS_FR),
        pa.array(df["uai"].to_numpy(), pa.string()),
        _label(df["event"].to_numpy(), EVENTS_EN if english else EVENTS_FR),
        _label(df["application"].to_numpy(), apps),
        _label(df["device"].to_numpy(), DEVICES_EN if english else DEVICES),
    ]
    return pa.table(dict(zip(names, cols, strict=True)))


def write_events(
    events: pd.DataFrame,
    out: Path,
    *,
    jsonl: bool = True,
    malformed: int = 0,
    seed: int = 0,
    chunk: int = 1_000_000,
) -> tuple[list[Path], list[Path], list[dict]]:
    """The event log, one file per month (``evenements-AAAA-MM.csv``, ``events-AAAA-MM.jsonl``),
    with ``malformed`` broken lines inserted in the CSV and in the JSON lines (listed with
    file and line in the returned list)."""
    rng = np.random.default_rng([seed, 15])
    csvs, jsons, broken = [], [], []
    slices = _month_slices(events["ts"].to_numpy())
    bad_csv = _bad_lines(rng, malformed, slices)
    bad_json = _bad_lines(rng, malformed, slices)
    for month, sl in slices:
        part = events.iloc[sl]
        path = out / f"evenements-{month}.csv"
        with open(path, "wb") as fh:
            fh.write((",".join(CSV_COLUMNS) + "\n").encode())
            body = _csv_body(part, chunk)
            broken += _insert_bad(fh, body, bad_csv.get(month, []), path, csv=True)
        csvs.append(path)
        if jsonl:
            path = out / f"events-{month}.jsonl"
            with open(path, "wb") as fh:
                body = _jsonl_body(part, chunk)
                broken += _insert_bad(fh, body, bad_json.get(month, []), path, csv=False)
            jsons.append(path)
    return csvs, jsons, broken


def _bad_lines(rng, n: int, slices) -> dict[str, list[int]]:
    """Months and row positions (before which a broken line goes), ``n`` in all."""
    if n <= 0 or not slices:
        return {}
    picks = rng.integers(0, len(slices), n)
    out: dict[str, list[int]] = {}
    for i in picks:
        month, sl = slices[i]
        out.setdefault(month, []).append(int(rng.integers(0, sl.stop - sl.start + 1)))
    return out


def _csv_body(part: pd.DataFrame, chunk: int):
    for i in range(0, len(part), chunk):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(
            _arrow_events(part.iloc[i : i + chunk], english=False),
            sink,
            pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        yield sink.getvalue().to_pybytes()


def _jsonl_body(part: pd.DataFrame, chunk: int):
    for i in range(0, len(part), chunk):
        t = _arrow_events(part.iloc[i : i + chunk], english=True).to_pandas()
        yield t.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")


BAD_CSV = ("2026-09-03T10:00:00,{u},Élève", "ligne tronquée")
BAD_JSON = ('{"time": "hier", "login": "{u}"', "JSON mal formé")


def _insert_bad(fh, body, positions: list[int], path: Path, *, csv: bool) -> list[dict]:
    """Write ``body`` (chunks of lines) with a broken line before each row of ``positions``."""
    positions = sorted(positions)
    broken: list[dict] = []
    written = 1 if csv else 0  # the header is line 1
    row = 0

    def bad() -> None:
        nonlocal written
        text = (BAD_CSV[0] if csv else BAD_JSON[0]).replace("{u}", f"Z{len(broken)}")
        fh.write(text.encode() + b"\n")
        written += 1
        broken.append(
            {"file": path.name, "line": written, "reason": BAD_CSV[1] if csv else BAD_JSON[1]}
        )

    for block in body:
        lines = block.splitlines(keepends=True)
        cut = 0
        while positions and positions[0] <= row + len(lines):
            at = positions.pop(0) - row
            fh.writelines(lines[cut:at])
            written += at - cut
            cut = at
            bad()
        fh.writelines(lines[cut:])
        written += len(lines) - cut
        row += len(lines)
    for _ in positions:
        bad()
    return broken


def daily_frame(
    events: pd.DataFrame, accounts: pd.DataFrame, schools: pd.DataFrame, end: dt.date
) -> pd.DataFrame:
    """The provider's daily figures: one row per school, day and profile with a connection,
    plus one row per school and profile on the last day (its account counts). The provider
    counts every event at its schools, people unknown to the AAF included."""
    ev = events[events["uai"].isin(schools["uai"])]
    day = ev["ts"].dt.normalize()
    g = pd.DataFrame(
        {
            "uai": ev["uai"],
            "date": day,
            "profile": ev["profile"].astype(np.int64),
            "user": ev["user"],
        }
    )
    logins = ev["event"].to_numpy() == LOGIN
    conn = g[logins].groupby(["uai", "date", "profile"]).size().rename("connections")
    uniq = g.groupby(["uai", "date", "profile"])["user"].nunique().rename("unique")
    daily = pd.concat([conn, uniq], axis=1).fillna(0).reset_index()
    last = pd.Timestamp(end)
    keys = pd.MultiIndex.from_product(
        [schools["uai"].astype(str), [last], range(len(PROFILES))], names=["uai", "date", "profile"]
    ).to_frame(index=False)
    daily = keys.merge(daily, how="outer", on=["uai", "date", "profile"]).fillna(0)
    # Accounts loaded and activated as of each row's day (by the export's school).
    acc = accounts.assign(
        day=accounts["activation"].dt.normalize(), profile=accounts["profile"].astype(np.int64)
    )
    loaded = acc.groupby(["uai", "profile"]).size().rename("loaded")
    daily = daily.merge(loaded.reset_index(), how="left", on=["uai", "profile"])
    daily = daily[daily["loaded"].fillna(0) > 0].copy()  # a profile the school does not have
    act = acc[acc["activated"]].sort_values("day")
    act = act.groupby(["uai", "profile", "day"]).size().groupby(level=[0, 1]).cumsum()
    act = act.rename("activated").reset_index().sort_values("day")
    daily["date"] = daily["date"].astype("datetime64[s]")
    act["day"] = act["day"].astype("datetime64[s]")
    daily = daily.sort_values("date")
    daily = pd.merge_asof(
        daily, act, left_on="date", right_on="day", by=["uai", "profile"], direction="backward"
    )
    names = schools.drop_duplicates("uai").set_index("uai")["name"]
    out = pd.DataFrame(
        {
            DAILY_COLUMNS[0]: daily["uai"].map(names),
            DAILY_COLUMNS[1]: daily["uai"],
            DAILY_COLUMNS[2]: daily["date"].dt.strftime("%d/%m/%Y"),
            DAILY_COLUMNS[3]: np.array(LABELS_FR)[daily["profile"].astype(int).to_numpy()],
            DAILY_COLUMNS[4]: daily["connections"].astype(int),
            DAILY_COLUMNS[5]: daily["unique"].astype(int),
            DAILY_COLUMNS[6]: daily["loaded"].astype(int),
            DAILY_COLUMNS[7]: daily["activated"].fillna(0).astype(int),
        }
    )
    order = np.lexsort((daily["profile"].to_numpy(), daily["uai"].to_numpy(), daily["date"]))
    return out.iloc[order].reset_index(drop=True)
