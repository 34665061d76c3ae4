"""A Complet's journal fingerprints (:mod:`ent_audit.store.sides`): hashed by slices, the
same hashes as at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ent_audit.store import sides


def test_strings_hashed_by_slices_have_the_hashes_of_one_call():
    n = 2 * sides.HASH_ROWS + 7
    values = pa.array([None if i % 97 == 0 else f"v{i % 5000}\x1fé" for i in range(n)])
    whole = pd.util.hash_array(
        np.asarray(values.to_numpy(zero_copy_only=False), dtype=object), categorize=False
    )
    got = sides._hash(values)
    assert got.dtype == np.uint64 and np.array_equal(got, whole)
    assert len(sides._hash(values.slice(0, 0))) == 0
