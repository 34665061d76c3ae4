"""The diff's comparable text (flags O/N, missing kept) and its per-record attribute values."""

from __future__ import annotations

import pandas as pd
import pytest

from ent_audit.aaf.diff import _text
from ent_audit.aaf.frames import STRING


@pytest.mark.parametrize(
    "flags",
    [
        pd.Series([True, False, None], dtype="boolean"),
        pd.Series([True, False]),
        pd.Series([], dtype="boolean"),
        pd.Series([True, None, False], dtype="bool[pyarrow]", index=[5, 6, 7], name="x"),
    ],
)
def test_flags_read_o_and_n_and_a_missing_flag_stays_missing(flags):
    expected = flags.map({True: "O", False: "N"}).astype(STRING)
    pd.testing.assert_series_equal(_text(flags), expected)
