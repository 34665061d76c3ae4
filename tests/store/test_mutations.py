"""Property: whatever is done to a valid small archive (bytes flipped, members dropped or
duplicated, records duplicated, attributes removed, operations changed), ingesting it exits
0, 1 or 2 without a traceback, and leaves the store either unchanged or in a state that
passes ``Store.verify()``.

The command runs in this process (``cli.main``) to keep 40 examples under a minute; the
hostile table (``test_hostile.py``) runs it as a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store import tree_hash

from ent_audit import cli
from ent_audit.store.store import Store
from ent_audit.synth import write

pytestmark = pytest.mark.slow

WORLD: dict = {}


@pytest.fixture(scope="module", autouse=True)
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mutations")
    res = write(tmp / "synth", seed=11, schools=2, pupils=40)
    store = tmp / "store"
    [r] = Store(store).ingest([res.archives[0]])
    assert r.status == "ingested"
    WORLD.update(archives=res.archives, store=store)
    yield
    WORLD.clear()


def _members(archive: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(archive) as t:
        return [(m.name, t.extractfile(m).read()) for m in t if m.isfile()]


def _pack(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


RECORD = re.compile(rb"<(addRequest|modifyRequest|deleteRequest)>.*?</\1>\s*", re.S)
ATTRIBUTE = re.compile(rb"<(attr|modification) name=[^>]*>.*?</\1>\s*", re.S)
OPERATION = re.compile(rb'operation="[^"]*"|<(add|modify|delete)Request>')


def _nth(pattern: re.Pattern, data: bytes, n: int) -> re.Match | None:
    found = list(pattern.finditer(data))
    return found[n % len(found)] if found else None


# (kind of mutation, member index, position, choice)
MUTATION = st.tuples(
    st.sampled_from(["flip", "drop", "duplicate", "record", "attribute", "operation"]),
    st.integers(0, 50),
    st.integers(0, 10**6),
    st.integers(0, 255),
)
OPERATIONS = [b'operation="add"', b'operation="delete"', b'operation="merge"', b"", b"<addRequest>"]


def mutate(archive: Path, mutations: list[tuple[str, int, int, int]]) -> bytes:
    members = _members(archive)
    flips = []
    for what, m, pos, choice in mutations:
        if what == "flip":
            flips.append((pos, choice or 1))
            continue
        if not members:
            continue
        i = m % len(members)
        name, data = members[i]
        if what == "drop":
            del members[i]
        elif what == "duplicate":
            members.insert(i, (name, data))
        elif what == "record" and (r := _nth(RECORD, data, pos)):
            members[i] = (name, data[: r.end()] + r.group(0) + data[r.end() :])
        elif what == "attribute" and (a := _nth(ATTRIBUTE, data, pos)):
            members[i] = (name, data[: a.start()] + data[a.end() :])
        elif what == "operation" and (o := _nth(OPERATION, data, pos)):
            new = OPERATIONS[choice % len(OPERATIONS)]
            members[i] = (name, data[: o.start()] + new + data[o.end() :])
    raw = bytearray(_pack(members))
    for pos, mask in flips:
        raw[pos % len(raw)] ^= mask
    return bytes(raw)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    which=st.sampled_from([1, 2]),
    mutations=st.lists(MUTATION, min_size=1, max_size=3),
)
def test_a_mutated_archive_never_breaks_the_store_or_the_contract(which, mutations):
    source = WORLD["archives"][which]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = tmp / "store"
        shutil.copytree(WORLD["store"], store)
        before = tree_hash(store)
        archive = tmp / source.name
        archive.write_bytes(mutate(source, mutations))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["ingest", str(archive), "--store", str(store)])
        assert code in (0, 1, 2)
        assert "Traceback" not in err.getvalue() + out.getvalue()
        if code == 2:
            assert err.getvalue().strip(), "a refusal says why"
        if tree_hash(store) != before:
            check = Store(store).verify()
            assert check.ok, check.problems
        assert not list(store.glob("tmp/*"))
