"""The provider's files the retention checks read: the account export (through the one
reader, strictly) and the destruction requests (through the same CSV reader, as strictly)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ent_audit.analyses import csvtable
from ent_audit.analyses.activity import inputs as provider
from ent_audit.analyses.retention.rules import STRING
from ent_audit.exceptions import RetentionError

# -- the provider's files -------------------------------------------------------------------


ACCOUNT_COLUMNS = provider.ACCOUNT_COLUMNS
"""Field -> header of the provider's account export: the one mapping of
:func:`ent_audit.analyses.activity.inputs.read_accounts` (override with ``account_columns``)."""

REQUEST_COLUMNS = {
    "jointure": "jointure",
    "request_date": "date_demande",
    "done_date": "date_realisation",
}
"""Canonical column -> header of the destruction requests CSV (override in params)."""


def read_accounts(path: Path | str, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The provider's account export, read by the one reader
    (:func:`ent_audit.analyses.activity.inputs.read_accounts`), strictly: a row that does not
    parse is an error naming file:line, since an account left out would hide an overdue one.
    Only the id and the profile are required (an account exists)."""
    frame, _ = provider.read_accounts(
        path,
        columns,
        strict=True,
        required=provider.RETENTION_REQUIRED,
        parameter="account_columns",
    )
    return frame


REQUEST_REQUIRED = ("jointure", "request_date")
REQUEST_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")
"""Read on a value's first ten characters: a time after the date is allowed."""


def read_requests(path: Path | str, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Destruction requests for pupils: ``jointure, request_date, done_date`` (NaT while
    pending), read by the provider files' one CSV reader (:mod:`ent_audit.analyses.csvtable`)
    and as strictly as :func:`read_accounts`: a row with a wrong number of fields, an empty
    jointure or request date, an unreadable date or a pupil asked for twice is an error naming
    file:line (a request left out would hide an overdue destruction). ``columns`` maps fields
    to headers (:data:`REQUEST_COLUMNS` by default; the report's ``request_columns``)."""
    unknown = sorted(set(columns or {}) - set(REQUEST_COLUMNS))
    if unknown:
        raise RetentionError(
            "request_columns",
            f"champ inconnu {unknown[0]!r}; champs: {', '.join(REQUEST_COLUMNS)}",
        )
    mapping = {**REQUEST_COLUMNS, **(columns or {})}
    rows = csvtable.read_rows(path, mapping, REQUEST_REQUIRED, "request_columns")
    jointure = rows.get("jointure")
    asked, done = (
        csvtable.parse_dates(rows.get(f).str[:10], REQUEST_DATE_FORMATS)
        for f in ("request_date", "done_date")
    )
    first = jointure.groupby(jointure, sort=False).cumcount().eq(0)
    first_line = pd.Series(rows.lines, index=jointure.index)[first].set_axis(jointure[first])
    hint = " (attendu AAAA-MM-JJ ou JJ/MM/AAAA)"
    csvtable.raise_first(
        rows,
        [
            ("jointure vide", jointure.eq(""), "jointure", None),
            ("date de demande vide", rows.get("request_date").eq(""), "request_date", None),
            ("date illisible", asked.isna() & rows.get("request_date").ne(""), "request_date",
             hint),
            ("date illisible", done.isna() & rows.get("done_date").ne(""), "done_date", hint),
            (lambda i: "demande en double : même élève qu'à la ligne "
             f"{first_line[jointure.iloc[i]]} (une demande par élève)",
             ~first & jointure.ne(""), "jointure", None),
        ],
    )  # fmt: skip
    return pd.DataFrame(
        {
            "jointure": jointure.astype(STRING),
            "request_date": asked.astype("datetime64[ns]"),
            "done_date": done.astype("datetime64[ns]"),
        }
    )
