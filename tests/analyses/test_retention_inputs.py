"""The destruction requests file, read by the provider files' one CSV reader: a good file as
before, a hostile one refused with one French line naming file:line (exit 2 from the CLI)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ent_audit import cli
from ent_audit.analyses import retention as r
from ent_audit.analyses.activity import inputs as provider
from ent_audit.exceptions import InputFileError, RetentionError
from ent_audit.store.store import Store

HEADER = "jointure;date_demande;date_realisation\r\n"


def requests_file(tmp_path: Path, body: str, *, header: str = HEADER, **kw) -> Path:
    p = tmp_path / "demandes.csv"
    p.write_text(header + body, encoding=kw.get("encoding", "utf-8-sig"), newline="")
    return p


def test_a_good_file_reads_as_before(tmp_path):
    p = requests_file(
        tmp_path,
        "9;2026-11-30;\r\n10;31/01/2027;2027-02-10T09:30\r\n\r\n11;2026-10-01 08:00;\r\n",
    )
    req = r.read_requests(p)
    assert list(req.columns) == ["jointure", "request_date", "done_date"]
    assert list(req["jointure"]) == ["9", "10", "11"]
    assert list(req["request_date"]) == [
        pd.Timestamp(2026, 11, 30), pd.Timestamp(2027, 1, 31), pd.Timestamp(2026, 10, 1)
    ]  # fmt: skip
    assert req["done_date"].isna().tolist() == [True, False, True]
    assert str(req["request_date"].dtype) == "datetime64[ns]"
    assert str(req["jointure"].dtype) == "string"


def test_headers_are_matched_folded_mapped_and_the_done_date_is_optional(tmp_path):
    p = requests_file(tmp_path, "9,30/11/2026\n", header="Jointure , Date-Demande\n")
    req = r.read_requests(p)
    assert list(req["jointure"]) == ["9"] and req["done_date"].isna().all()
    p = requests_file(tmp_path, "9;2026-11-30\n", header="Élève;Reçue le\n")
    req = r.read_requests(p, {"jointure": "eleve", "request_date": "recue le"})
    assert req.loc[0, "request_date"] == pd.Timestamp(2026, 11, 30)


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        # a truncated line: its fields are missing, nothing of it is guessed
        (HEADER, "9;2026-11-30;\r\n10;2026-\r\n", r"demandes.csv:3: nombre de champs incorrect "
         r"\(3 attendus\)$"),
        (HEADER, "9;2026-11-30;;x\r\n", r"demandes.csv:2: nombre de champs incorrect"),
        # an unknown header: the column the reader needs is named, and what to set
        ("id;date_demande\r\n", "9;2026-11-30\r\n", r"demandes.csv:1: colonne 'jointure' "
         r"\(jointure\) absente \(id, date_demande\); précisez request_columns.jointure$"),
        ("jointure;quand\r\n", "9;2026-11-30\r\n", r"demandes.csv:1: colonne 'date_demande' "
         r"\(request_date\) absente"),
        ("", "", r"demandes.csv:1: colonne 'jointure' \(jointure\) absente"),
        # a duplicated request: the first line is named, never the pupil's id
        (HEADER, "9;2026-11-30;\r\n10;2026-12-01;\r\n9;2026-12-02;\r\n",
         r"demandes.csv:4 \(colonne jointure\): demande en double : même élève qu'à la ligne 2 "
         r"\(une demande par élève\)$"),
        # values
        (HEADER, "9;2026-11-30;\r\n10;31/02/2026;\r\n", r"demandes.csv:3 \(colonne "
         r"date_demande\): date illisible '31/02/2026' \(attendu AAAA-MM-JJ ou JJ/MM/AAAA\)$"),
        (HEADER, "9;2026-11-30;demain\r\n", r"demandes.csv:2 \(colonne date_realisation\): "
         r"date illisible 'demain'"),
        (HEADER, "9;;\r\n", r"demandes.csv:2 \(colonne date_demande\): date de demande vide$"),
        (HEADER, " ;2026-11-30;\r\n", r"demandes.csv:2 \(colonne jointure\): jointure vide$"),
        (HEADER, '9;"2026-11-30;\r\n10;2026-11-30;\r\n', r"demandes.csv:2: nombre de champs"),
        (HEADER, "9;2026-11-30;\r\n10;2026-11-30;" + "x" * 200_000 + "\r\n",
         r"demandes.csv:3: CSV illisible \(champ de plus de 131072 caractères\)$"),
    ],
)  # fmt: skip
def test_a_hostile_file_is_refused_at_its_first_bad_line(tmp_path, header, body, message):
    with pytest.raises(InputFileError, match=message):
        r.read_requests(requests_file(tmp_path, body, header=header))


def test_the_first_bad_line_wins_whatever_is_wrong_with_it(tmp_path):
    p = requests_file(tmp_path, "9;2026-11-30;\r\n9;2026-11-31;\r\n10;x\r\n")
    with pytest.raises(InputFileError, match=r"demandes.csv:3 \(colonne date_demande\)"):
        r.read_requests(p)


def test_a_foreign_encoding_is_located_at_its_first_foreign_byte(tmp_path):
    p = tmp_path / "demandes.csv"
    p.write_bytes(
        "jointure;date_demande;date_realisation;remarque\r\n9;2026-11-30;;\r\n"
        "10;2026-12-01;;demande reçue par téléphone\r\n".encode("cp1252")
    )
    with pytest.raises(InputFileError) as err:
        r.read_requests(p)
    assert str(err.value) == (
        f"{p}:3: encodage non UTF-8 (octet 0xe7) : enregistrez le fichier en UTF-8"
    )
    assert err.value.line == 3


def test_missing_file_and_unknown_mapping_field_are_named(tmp_path):
    with pytest.raises(InputFileError, match=r"nope.csv: fichier introuvable"):
        r.read_requests(tmp_path / "nope.csv")
    p = requests_file(tmp_path, "9;2026-11-30;\r\n")
    with pytest.raises(RetentionError, match=r"'request_columns': champ inconnu 'eleve'"):
        r.read_requests(p, {"eleve": "jointure"})


def test_the_account_export_shares_the_reader_and_its_errors(tmp_path):
    """Same machinery: the same encoding and field-count errors, the same file:line form."""
    p = tmp_path / "comptes.csv"
    p.write_bytes("Identifiant;Profil\n1;Élève\n2;Élève;x\n".encode())
    with pytest.raises(InputFileError, match=r"comptes.csv:3: nombre de champs incorrect"):
        r.read_accounts(p)
    kept, report = provider.read_accounts(p, required=provider.RETENTION_REQUIRED)
    assert list(kept["user"]) == ["1"] and report.malformed_count == 1
    p.write_bytes("Identifiant;Profil\n1;Élève\n".encode("latin-1"))
    with pytest.raises(InputFileError, match=r"comptes.csv:2: encodage non UTF-8 \(octet 0xc9\)"):
        r.read_accounts(p)


def test_the_cli_says_it_in_one_french_line_and_exits_2(tmp_path, capsys):
    Store(tmp_path / "store")
    p = requests_file(tmp_path, "9;2026-11-30;\r\n9;2026-11-30;\r\n")
    code = cli.main(["purge", "--store", str(tmp_path / "store"), "--requests", str(p)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"erreur: {p}:3 (colonne jointure): demande en double : même élève qu'à la ligne 2 "
        "(une demande par élève)\n"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Élève", " parent ", "oui", "", "Martien"]), max_size=15))
def test_labels_are_mapped_once_per_distinct_value_as_pandas_maps_them(labels):
    from ent_audit.analyses.activity.inputs import PROFILE_LABELS, _fold, _per_value

    for column in (pd.Series(labels, dtype="str"), pd.Series([*labels, None], dtype="str")):

        def fn(v):
            return PROFILE_LABELS.get(_fold(v))

        want = column.map(dict(zip(column.unique(), map(fn, column.unique()), strict=True)))
        pd.testing.assert_series_equal(_per_value(column, fn), want)


def test_a_field_is_trimmed_once_and_kept_trimmed(tmp_path):
    from ent_audit.analyses import csvtable

    p = tmp_path / "f.csv"
    p.write_text("a;b\n 1 ;x\n2  ; y\n", encoding="utf-8")
    rows = csvtable.read_rows(p, {"a": "a", "b": "b"}, ("a",), "p")
    assert list(rows.get("a")) == ["1", "2"] == list(rows.raw["a"])
    assert list(rows.get("a")) == ["1", "2"] and list(rows.raw["b"]) == ["x", " y"]
