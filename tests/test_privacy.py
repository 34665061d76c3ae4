import pandas as pd

from ent_audit.privacy import Pseudonymiser, mask_name, small_cells
from ent_audit.store import pseudonym


def test_small_counts_are_published_as_under_the_threshold():
    s = pd.Series([0, 1, 4, 5, 120])
    assert small_cells(s).tolist() == ["0", "<5", "<5", "5", "120"]
    assert small_cells(s, 10).tolist() == ["0", "<10", "<10", "<10", "120"]


def test_names_are_masked_to_their_initial():
    assert [mask_name(x) for x in ("Durand", "Ô", "", None)] == ["D*****", "Ô", None, None]


def test_a_published_frame_has_pseudonyms_and_no_personal_column(tmp_path):
    p = Pseudonymiser.for_store(tmp_path)
    assert "clé" in repr(p) and (tmp_path / "key").read_text().strip() not in repr(p)
    df = pd.DataFrame(
        {
            "jointure": ["1", "2", None],
            "last_name": ["A", "B", "C"],
            "birth_date": pd.to_datetime(["2019-01-01"] * 3),
            "level": ["CP"] * 3,
        }
    )
    out = p.frame(df, "Eleve", frame="students")
    assert list(out.columns) == ["jointure", "level"]
    key = pseudonym.load_key(tmp_path / "key")
    assert out["jointure"].tolist()[:2] == [
        pseudonym.pseudonym(key, "Eleve", "1"),
        pseudonym.pseudonym(key, "Eleve", "2"),
    ]
    assert out["jointure"].isna().tolist() == [False, False, True]
    assert (
        Pseudonymiser.for_store(tmp_path).ids("Eleve", df["jointure"]).tolist()[:2]
        == out["jointure"].tolist()[:2]
    )
