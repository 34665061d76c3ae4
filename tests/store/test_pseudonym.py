"""The column pseudonymiser computes HMAC-SHA256 itself (pads absorbed once): it must give
exactly the digests of the standard library's ``hmac``, for any key length."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from ent_audit.store import pseudonym


@pytest.mark.parametrize("key", [b"k" * 32, b"", b"x" * 64, "une clé en texte".encode() * 9])
def test_a_column_gets_the_standard_hmac_of_each_value_and_missing_stays_missing(key):
    ids = pd.Series(["1", None, "é2", "1", "3" * 200], dtype=pd.StringDtype("pyarrow"))
    got = pseudonym.pseudonymise(key, "Eleve", ids)
    want = [
        hmac.new(key, f"Eleve:{j}".encode(), hashlib.sha256).hexdigest()[:20] if j else None
        for j in ["1", None, "é2", "1", "3" * 200]
    ]
    assert got.isna().tolist() == [w is None for w in want]
    assert got.dropna().tolist() == [w for w in want if w]
    assert pseudonym.pseudonym(key, "Eleve", "1") == got[0]
