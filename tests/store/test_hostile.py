"""Hostile inputs, one table row each: the CLI in a subprocess must exit with the contracted
status, say one line on stderr (never a traceback) and leave every file of the store (logs and
locks aside) byte-identical, unless the row says the store may change.

Every archive is the synthetic generator's, or one of its archives with members edited.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_store import tree_hash

from ent_audit.synth import write

ROOT = Path(__file__).parents[2]
PERIM = "ENT1D_DEMO31"
C1, D1, C2 = (
    f"{PERIM}_Complet_20260914",
    f"{PERIM}_Delta_20261005",
    f"{PERIM}_Complet_20261012",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The generator's three archives, and a store holding the first Complet."""
    tmp = tmp_path_factory.mktemp("hostile")
    res = write(tmp / "synth", seed=5, schools=4, pupils=150)
    store = tmp / "store"
    proc = _cli("ingest", str(res.archives[0]), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    return {"archives": {a.name.removesuffix(".tar.gz"): a for a in res.archives}, "store": store}


def _cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ENT_AUDIT_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "ent_audit.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


# -- editing the generator's archives --------------------------------------------------------


def members(archive: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(archive) as t:
        return [(m.name, t.extractfile(m).read()) for m in t if m.isfile()]


def pack(path: Path, files: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def edited(
    world, tmp: Path, stem: str, edit: Callable[[str, bytes], bytes | None], new: str | None = None
) -> Path:
    """The generator's archive ``stem`` with ``edit(name, data)`` applied to each member
    (None drops it), saved as ``new`` (a name with another perimeter renames members too)."""
    new = new or stem
    out = []
    for name, data in members(world["archives"][stem]):
        data = edit(name, data)
        if data is not None:
            out.append((name.replace(stem, new), data))
    return pack(tmp / f"{new}.tar.gz", out)


def in_kind(kind: str, change: Callable[[bytes], bytes]) -> Callable[[str, bytes], bytes]:
    return lambda name, data: change(data) if f"_{kind}_" in name else data


def first_record(data: bytes) -> bytes:
    start = data.index(b"<addRequest>")
    return data[start : data.index(b"</addRequest>", start) + len(b"</addRequest>")]


def repeat_first(n: int) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        rec = first_record(data)
        return data.replace(b"</ficAlimMENESR>", (rec + b"\n") * n + b"</ficAlimMENESR>")

    return change


def no_records(data: bytes) -> bytes:
    start = data.index(b"<addRequest>")
    end = data.rindex(b"</ficAlimMENESR>")
    return data[:start] + data[end:]


def as_text(data: bytes) -> tuple[str, str]:
    head = data[:200].decode("ascii", errors="replace")
    encoding = "ISO-8859-15" if "ISO-8859-15" in head else "UTF-8"
    return data.decode(encoding), encoding


def with_dtd(prefix: str = "", utf16: bool = False) -> Callable[[bytes], bytes]:
    """A DOCTYPE declaring an external entity, used in the first record's value."""

    def change(data: bytes) -> bytes:
        text, _ = as_text(data)
        body = text[text.index("<ficAlimMENESR>") :]
        body = body.replace("<value>", "<value>&xxe;", 1)
        doc = (
            '<?xml version="1.0" encoding="{enc}"?>\n'
            + prefix
            + '<!DOCTYPE ficAlimMENESR [\n<!ENTITY xxe SYSTEM "file:///etc/hostname">\n]>\n'
            + body
        )
        if utf16:
            return codecs.BOM_UTF16_LE + doc.format(enc="UTF-16").encode("utf-16-le")
        return doc.format(enc="UTF-8").encode("utf-8")

    return change


def declared(encoding: str) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        text, _ = as_text(data)
        body = text[text.index("?>") + 2 :]
        return f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + body.encode("utf-8")

    return change


def flip_byte(world, tmp: Path) -> Path:
    """One byte of the deflate stream changed: only the gzip CRC can tell."""
    raw = world["archives"][C2].read_bytes()
    data = gzip.decompress(raw)
    pos = data.index(b"<value>") + 8  # inside a value: still well-formed XML
    changed = data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]
    # Same deflate stream of the changed data, with the ORIGINAL trailer (CRC, length).
    body = gzip.compress(changed, mtime=0)
    out = tmp / f"{C2}.tar.gz"
    out.write_bytes(body[:-8] + raw[-8:])
    return out


def wrong_kind(world, tmp: Path) -> Path:
    """The Eleve file's first record copied into the EtabEducNat file."""
    files = members(world["archives"][C2])
    text, _ = as_text(next(d for n, d in files if "_Eleve_" in n))
    rec = first_record(text.encode("utf-8")).decode("utf-8")
    out = []
    for name, data in files:
        if "_EtabEducNat_" in name:
            etab, encoding = as_text(data)
            data = etab.replace("</ficAlimMENESR>", rec + "\n</ficAlimMENESR>").encode(
                encoding, "xmlcharrefreplace"
            )
        out.append((name, data))
    return pack(tmp / f"{C2}.tar.gz", out)


def modify_unknown_op(data: bytes) -> bytes:
    start = data.index(b"<modifyRequest>")
    return data[:start] + data[start:].replace(b'operation="replace"', b'operation="merge"', 1)


def drop_ids(data: bytes) -> bytes:
    start = data.index(b"<modifyRequest>")
    end = data.index(b"</modifyRequest>", start)
    rec = data[start:end]
    rec = re.sub(rb"<identifier>.*?</identifier>", b"", rec, flags=re.S)
    rec = re.sub(rb'<modification name="ENTPersonJointure"[^>]*>.*?</modification>', b"", rec)
    return data[:start] + rec + data[end:]


def keep_share(share: float) -> Callable[[bytes], bytes]:
    """Only the first ``share`` of the file's records (a mass departure)."""

    def change(data: bytes) -> bytes:
        starts = [m.start() for m in re.finditer(b"<addRequest>", data)]
        cut = starts[max(1, int(len(starts) * share))]
        return data[:cut] + b"</ficAlimMENESR>\n"

    return change


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable  # (world, tmp, store) -> argv
    status: int
    says: str
    """Expected in the one stderr line."""
    changes: bool = False
    """The store may change (an accepted ingestion)."""


def ingest(path_of: Callable) -> Callable:
    def build(world, tmp, store):
        return ["ingest", str(path_of(world, tmp)), "--store", str(store)]

    return build


def ingest_edit(stem: str, edit, new: str | None = None, *extra: str) -> Callable:
    def build(world, tmp, store):
        return ["ingest", str(edited(world, tmp, stem, edit, new)), "--store", str(store), *extra]

    return build


def on_store(damage: Callable[[Path], None], *argv: str, archive: str = D1) -> Callable:
    def build(world, tmp, store):
        damage(store)
        if argv:
            return [*argv, "--store", str(store)]
        return ["ingest", str(world["archives"][archive]), "--store", str(store)]

    return build


def state(store: Path) -> Path:
    return store / "states" / (store / "CURRENT").read_text().strip()


def garble(rel: str) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        p = state(store) / rel if rel != "key" else store / "key"
        p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 3)] + b"\x00garbage")

    return damage


def read_only(store: Path) -> None:
    for p in [store, *store.rglob("*")]:
        if p.is_dir():
            p.chmod(0o500)


def params(tmp: Path, name: str, data: bytes | None) -> Path:
    p = tmp / name
    if data is None:
        p.mkdir()
    else:
        p.write_bytes(data)
    return p


def report(spec: Callable[[Path], list[str]], *extra: str) -> Callable:
    def build(world, tmp, store):
        return ["report", "overview", *spec(tmp), "--outputs", str(tmp / "out"), *extra]

    return build


CASES = [
    # archives that are not archives
    Case("missing archive", ingest(lambda w, t: t / f"{C2}.tar.gz"), 2, "illisible"),
    Case(
        "archive is a folder",
        ingest(lambda w, t: params(t, f"{C2}.tar.gz", None)),
        2,
        "dossier",
    ),
    Case(
        "not a gzip",
        ingest(lambda w, t: params(t, f"{C2}.tar.gz", b"PK\x03\x04 zip")),
        2,
        "illisible",
    ),
    Case(
        "truncated gzip",
        ingest(lambda w, t: params(t, f"{C2}.tar.gz", w["archives"][C2].read_bytes()[:-100])),
        2,
        "illisible",
    ),
    Case("flipped byte (gzip CRC)", ingest(flip_byte), 2, "CRC"),
    # the state is never replaced by something smaller or foreign
    Case(
        "Complet of another perimeter",
        ingest_edit(C2, lambda n, d: d, C2.replace(PERIM, "ENT1D_AUTRE")),
        2,
        "différent de celui du store",
    ),
    Case(
        "Delta of another perimeter",
        ingest_edit(D1, lambda n, d: d, D1.replace(PERIM, "ENT1D_AUTRE")),
        2,
        "différent de celui du store",
    ),
    Case(
        "Complet without PersEducNat",
        ingest_edit(C2, lambda n, d: None if "_PersEducNat_" in n else d),
        2,
        "PersEducNat (absent)",
    ),
    Case(
        "Complet with an empty Eleve root",
        ingest_edit(C2, in_kind("Eleve", no_records)),
        2,
        "Eleve (vide)",
    ),
    Case(
        "duplicate jointure",
        ingest_edit(C2, in_kind("Eleve", repeat_first(1))),
        2,
        "en double",
    ),
    Case("record bomb", ingest_edit(C2, in_kind("Eleve", repeat_first(5000))), 2, "en double"),
    Case(
        "Eleve records in the EtabEducNat file",
        ingest(lambda w, t: wrong_kind(w, t)),
        2,
        "enregistrement de type 'Eleve' dans un fichier EtabEducNat",
    ),
    Case(
        "mass departure",
        ingest_edit(C2, in_kind("Eleve", keep_share(0.5)), None, "--max-delete-count", "20"),
        2,
        "suppression massive",
    ),
    Case(
        "mass departure accepted",
        ingest_edit(
            C2,
            in_kind("Eleve", keep_share(0.5)),
            None,
            "--max-delete-count",
            "20",
            "--accept-mass-change",
        ),
        0,
        "",
        changes=True,
    ),
    Case(
        "unknown modify operation", ingest_edit(D1, in_kind("Eleve", modify_unknown_op)), 2, "merge"
    ),
    Case(
        "delta record without jointure",
        ingest_edit(D1, in_kind("Eleve", drop_ids)),
        2,
        "sans jointure",
    ),
    # entities, whatever the disguise
    Case("entity, UTF-8", ingest_edit(C2, in_kind("Eleve", with_dtd())), 2, "déclare des entités"),
    Case(
        "entity, UTF-16",
        ingest_edit(C2, in_kind("Eleve", with_dtd(utf16=True))),
        2,
        "déclare des entités",
    ),
    Case(
        "entity after a comment naming the root",
        ingest_edit(C2, in_kind("Eleve", with_dtd("<!-- <ficAlimMENESR> -->\n"))),
        2,
        "déclare des entités",
    ),
    Case(
        "entity after a long prologue",
        ingest_edit(
            C2, in_kind("Eleve", with_dtd("".join(f"<!-- {'x' * 1000} -->\n" for _ in range(1200))))
        ),
        2,
        "déclare des entités",
    ),
    Case("encoding hex", ingest_edit(C2, in_kind("Eleve", declared("hex"))), 2, "non textuel"),
    Case("encoding rot13", ingest_edit(C2, in_kind("Eleve", declared("rot13"))), 2, "non textuel"),
    Case("unknown encoding", ingest_edit(C2, in_kind("Eleve", declared("klingon"))), 2, "inconnu"),
    # the store itself
    Case("read-only store", on_store(read_only), 2, "lecture seule"),
    Case("corrupt extractions.json", on_store(garble("extractions.json")), 2, "extractions.json"),
    Case("corrupt meta.json", on_store(garble("meta.json")), 2, "meta.json"),
    Case("corrupt key", on_store(garble("key")), 2, "key"),
    Case("corrupt Parquet", on_store(garble("snapshot/students.parquet")), 2, "students.parquet"),
    Case(
        "corrupt CURRENT",
        on_store(lambda s: (s / "CURRENT").write_text("../../etc\n")),
        2,
        "CURRENT",
    ),
    Case(
        "status of a corrupt store",
        on_store(garble("extractions.json"), "status"),
        2,
        "extractions.json",
    ),
    Case(
        "store path is a file",
        lambda w, t, s: ["ingest", str(w["archives"][C2]), "--store", str(params(t, "f", b"x"))],
        2,
        "n'est pas un dossier",
    ),
    Case(
        "--dest is a file",
        lambda w, t, s: [
            "fetch",
            "--host",
            "127.0.0.1",
            "--user",
            "u",
            "--dest",
            str(params(t, "d", b"x")),
        ],
        2,
        "--dest n'est pas un dossier",
    ),
    # reports
    Case(
        "parameters not YAML",
        report(lambda t: ["-p", str(params(t, "p.yaml", b"store: [unclosed\n"))]),
        2,
        "YAML invalide",
    ),
    Case(
        "parameters not a mapping",
        report(lambda t: ["-p", str(params(t, "p.yaml", b"- a\n- b\n"))]),
        2,
        "dictionnaire",
    ),
    Case(
        "parameters are a folder",
        report(lambda t: ["-p", str(params(t, "p.yaml", None))]),
        2,
        "dossier",
    ),
    Case(
        "parameters not UTF-8",
        report(lambda t: ["-p", str(params(t, "p.yaml", "store: é\n".encode("latin-1")))]),
        2,
        "non UTF-8",
    ),
    Case("report without store", report(lambda t: ["-p", "max_age_days=3"]), 2, "obligatoire"),
    Case(
        "report name is a path",
        lambda w, t, s: ["report", "../notebooks/overview", "-p", f"store={s}"],
        2,
        "rapport inconnu",
    ),
    Case(
        "unwritable --outputs",
        lambda w, t, s: [
            "report",
            "overview",
            "-p",
            f"store={s}",
            "--outputs",
            str(params(t, "o", b"x") / "sub"),
        ],
        2,
        "n'est pas un dossier",
    ),
    Case(
        "report outputs inside the store",
        lambda w, t, s: ["report", "overview", "-p", f"store={s}", "--outputs", str(s / "out")],
        2,
        "un rapport n'y écrit pas",
    ),
]


@pytest.fixture
def store(world, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(world["store"], copy)
    return copy


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, world, store, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    argv = case.build(world, work, store)
    before = tree_hash(store)
    try:
        proc = _cli(*argv, cwd=work)
        assert proc.returncode == case.status, (proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout
        lines = proc.stderr.splitlines()
        if case.status == 2:
            assert len(lines) == 1, proc.stderr
            assert case.says in lines[0], lines[0]
        if not case.changes:
            assert tree_hash(store) == before
        assert not list(store.glob("tmp/*")), "extracted or staged files left behind"
    finally:
        for p in [store, *store.rglob("*")]:  # a read-only store, made removable again
            if p.is_dir():
                p.chmod(0o700)
