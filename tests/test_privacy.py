import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from ent_audit.privacy import (
    SECONDARY,
    Pseudonymiser,
    mask_counts,
    mask_name,
    mask_partition,
    small_cell_rule,
    small_cells,
)
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


# -- small cells in a partition (counts per school, commune… adding up to a total) ----------


def test_a_lone_small_cell_takes_the_smallest_visible_one_with_it():
    out = mask_partition(pd.Series([3, 50, 0, 7, 100], index=list("abcde")))
    assert out.tolist() == ["<5", 50, 0, SECONDARY, 100]
    assert mask_partition(pd.Series([10, 20])).tolist() == [10, 20]


@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.integers(2, 10))
def test_no_masked_cell_shows_or_can_be_worked_back_from_the_total(counts, threshold):
    values = pd.Series(counts)
    out = mask_partition(values, threshold)
    hidden = [i for i, v in enumerate(out) if isinstance(v, str)]
    shown = [v for v in out if not isinstance(v, str)]
    assert all(v == 0 or v >= threshold for v in shown)
    assert all(out[i] == f"<{threshold}" for i in range(len(counts)) if 0 < counts[i] < threshold)
    if hidden:
        rest = sum(counts) - sum(shown)
        assert len(hidden) >= 2 or rest >= threshold or not shown
        assert all(counts[i] != rest for i in hidden) or len(hidden) == len(counts)


def test_a_total_row_stays_exact_unless_it_is_small_itself():
    df = pd.DataFrame({"pupils": [3, 10, 12], "schools": [1, 2, 3]}, index=["a", "b", "c"])
    df.loc["Total"] = df.sum()
    out = mask_counts(df, ["pupils"], total_row="Total")
    assert out["pupils"].tolist() == ["<5", SECONDARY, 12, 25]
    assert out["schools"].tolist() == [1, 2, 3, 6]  # schools are not people
    small = mask_counts(df.iloc[:1].assign(pupils=[2]), ["pupils"])
    assert small["pupils"].tolist() == ["<5"]


def test_the_rule_states_the_threshold_used():
    assert "inférieur à 7" in small_cell_rule(7) and "« <7 »" in small_cell_rule(7)
