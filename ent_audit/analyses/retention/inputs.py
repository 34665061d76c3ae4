"""The provider's files the retention checks read: the account export (through the one
reader, strictly) and the destruction requests."""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.analyses.activity import inputs as provider
from ent_audit.analyses.retention.rules import STRING
from ent_audit.exceptions import InputFileError

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


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).strip().lower()


def _read_csv(path: Path | str, columns: Mapping[str, str], required: tuple[str, ...]):
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            head = fh.readline()
    except FileNotFoundError:
        raise InputFileError(path, "fichier introuvable") from None
    except UnicodeDecodeError:
        raise InputFileError(path, "encodage non UTF-8", line=1) from None
    sep = ";" if head.count(";") >= head.count(",") else ","
    df = pd.read_csv(
        path,
        sep=sep,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        quoting=csv.QUOTE_MINIMAL,
    )
    headers = {_plain(c): c for c in df.columns}
    out = pd.DataFrame(index=df.index)
    for canonical, header in columns.items():
        source = headers.get(_plain(header))
        if source is None:
            if canonical in required:
                raise InputFileError(
                    path,
                    f"colonne {header!r} ({canonical}) absente; colonnes présentes: "
                    f"{', '.join(df.columns)}",
                    line=1,
                )
            out[canonical] = ""
        else:
            out[canonical] = df[source].str.strip()
    return path, out


def _dates(path: Path, values: pd.Series, column: str) -> pd.Series:
    """ISO (``2026-11-30``, a time allowed) or French (``30/11/2026``) dates; empty is NaT;
    anything else an error naming the line."""
    iso = pd.to_datetime(values.str[:10], format="%Y-%m-%d", errors="coerce")
    fr = pd.to_datetime(values.str[:10], format="%d/%m/%Y", errors="coerce")
    out = iso.fillna(fr)
    bad = out.isna() & (values != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputFileError(
            path,
            f"date illisible {values.iloc[i]!r} (attendu AAAA-MM-JJ ou JJ/MM/AAAA)",
            line=i + 2,
            column=column,
        )
    return out.astype("datetime64[ns]")


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


def read_requests(path: Path | str, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Destruction requests for pupils: ``jointure, request_date, done_date`` (NaT while
    pending). Same format rules as :func:`read_accounts`."""
    mapping = {**REQUEST_COLUMNS, **(columns or {})}
    path, df = _read_csv(path, mapping, ("jointure", "request_date"))
    request = _dates(path, df["request_date"], mapping["request_date"])
    if request.isna().any():
        i = int(np.flatnonzero(request.isna().to_numpy())[0])
        raise InputFileError(
            path, "date de demande vide", line=i + 2, column=mapping["request_date"]
        )
    return pd.DataFrame(
        {
            "jointure": df["jointure"].astype(STRING),
            "request_date": request,
            "done_date": _dates(path, df["done_date"], mapping["done_date"]),
        }
    )
