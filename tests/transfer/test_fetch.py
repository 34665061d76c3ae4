"""SFTP fetch against a real OpenSSH sshd on 127.0.0.1, with throwaway keys; no mocks.

The module starts one ``/usr/sbin/sshd -D`` (installed by ``make test``) on a free port with a
generated ed25519 host key and an ``authorized_keys`` holding a 4096-bit RSA client key, a
2048-bit one (so the refusal tested is ours, not the server's), an ed25519 key and an encrypted
ed25519 key. known_hosts is written by the real ``ssh-keyscan``, as the README tells an académie
to do. Each test serves its own copy of a small synthetic perimeter.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import io
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from sshd import SSHDError, SSHServer, fingerprint, free_port, keygen, require_openssh, run

from ent_audit import cli
from ent_audit.store.store import Store
from ent_audit.synth import write
from ent_audit.transfer.fetch import (
    LEDGER,
    FetchError,
    Status,
    WarningCode,
    fetch,
    missed_windows,
    select_archives,
)
from ent_audit.transfer.sftp import (
    PASSPHRASE_ENV,
    AuthenticationError,
    ClientKeyError,
    HostKeyError,
    SFTPError,
    UnreachableError,
)

PASSPHRASE = "correct horse battery staple"
BIG = "ENT1D_BIG31_Complet_20261019.tar.gz"


@dataclass(frozen=True)
class Keys:
    host: Path
    rsa4096: Path
    rsa2048: Path
    ed25519: Path
    encrypted: Path

    @property
    def authorized(self) -> tuple[Path, ...]:
        return (self.rsa4096, self.rsa2048, self.ed25519, self.encrypted)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    try:
        require_openssh()
    except SSHDError as e:
        pytest.fail(str(e))
    d = tmp_path_factory.mktemp("keys")
    return Keys(
        host=keygen(d / "host_ed25519", "-t", "ed25519"),
        rsa4096=keygen(d / "rsa4096", "-t", "rsa", "-b", "4096"),
        rsa2048=keygen(d / "rsa2048", "-t", "rsa", "-b", "2048"),
        ed25519=keygen(d / "ed25519", "-t", "ed25519"),
        encrypted=keygen(d / "encrypted", "-t", "ed25519", passphrase=PASSPHRASE),
    )


@pytest.fixture(scope="module")
def server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    srv = SSHServer.started(tmp_path_factory.mktemp("sshd"), keys)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="module")
def known_hosts(server: SSHServer) -> Path:
    """What the README tells an académie to do: ssh-keyscan, then compare the fingerprint."""
    path = server.known_hosts()
    assert run("ssh-keygen", "-lf", str(path)).split()[1] == fingerprint(
        Path(f"{server.keys.host}.pub")
    )
    return path


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write(tmp_path_factory.mktemp("synth"), schools=3, pupils=60).archives


@pytest.fixture
def remote(tmp_path: Path, archives: list[Path]) -> Path:
    """The served folder: three archives, a file outside the nomenclature, a sub-folder."""
    d = tmp_path / "remote"
    (d / "archives-2025").mkdir(parents=True)
    for a in archives:
        shutil.copy2(a, d / a.name)
    (d / "LISEZMOI.txt").write_text("dépôt de l'académie\n")
    return d


@pytest.fixture
def big_remote(tmp_path: Path) -> Path:
    """One 40 MB archive-named file: long enough to cut its transfer halfway."""
    d = tmp_path / "big-remote"
    d.mkdir()
    (d / BIG).write_bytes(os.urandom(40 << 20))
    return d


def _state(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under ``folder`` (and itself): SHA-256, mtime and mode: nothing touched."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
            p.stat().st_mtime_ns,
            p.stat().st_mode,
        )
        for p in [folder, *sorted(folder.rglob("*"))]
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch(server: SSHServer, known_hosts: Path, remote: Path, dest: Path, **kw):
    kw.setdefault("key", server.keys.rsa4096)
    return fetch(
        "127.0.0.1",
        port=server.port,
        user=getpass.getuser(),
        known_hosts=known_hosts,
        remote_dir=str(remote),
        dest=dest,
        progress=False,
        **kw,
    )


# -- download, skip, ingest ----------------------------------------------------------------


def test_new_archives_are_fetched_0600_and_ingested_in_date_order(
    server, known_hosts, remote, tmp_path
):
    before = _state(remote)
    dest, store = tmp_path / "dest", tmp_path / "store"
    res = _fetch(
        server, known_hosts, remote, dest, store=store, ingest=True, today=dt.date(2026, 10, 16)
    )
    names = [a.name for a in res.archives]
    assert names == [
        "ENT1D_DEMO31_Complet_20260914.tar.gz",
        "ENT1D_DEMO31_Delta_20261005.tar.gz",
        "ENT1D_DEMO31_Complet_20261012.tar.gz",
    ]
    assert [a.status for a in res.archives] == [Status.FETCHED] * 3
    assert res.ignored == ("LISEZMOI.txt", "archives-2025")
    for a in res.archives:
        local = dest / a.name
        assert _digest(local) == _digest(remote / a.name)
        assert local.stat().st_mode & 0o777 == 0o600
        assert local.stat().st_mtime == int((remote / a.name).stat().st_mtime)
        assert a.transferred == a.size == local.stat().st_size
    assert dest.stat().st_mode & 0o777 == 0o700
    assert not list(dest.glob("*.part"))
    assert (dest / LEDGER).stat().st_mode & 0o777 == 0o600
    assert [(r.archive, r.status) for r in res.ingested] == [(n, "ingested") for n in names]
    assert list(Store(store).history()["archive"]) == names
    # The Complet of Monday 12 October is on its fifth working day on Friday 16.
    assert [(w.code, w.archive) for w in res.warnings] == [
        (WarningCode.LAST_DAY, "ENT1D_DEMO31_Complet_20261012.tar.gz")
    ]
    assert "dernier jour ouvré sur le serveur (récupérée)" in res.warnings[0].message
    assert res.archives[2].deadline == dt.date(2026, 10, 16)
    assert res.archives[2].window_from == "name"
    assert _state(remote) == before


def test_a_second_run_fetches_nothing_and_an_ingested_archive_is_not_downloaded_again(
    server, known_hosts, remote, tmp_path
):
    before = _state(remote)
    dest, store = tmp_path / "dest", tmp_path / "store"
    _fetch(server, known_hosts, remote, dest, store=store, ingest=True)
    again = _fetch(server, known_hosts, remote, dest, store=store, ingest=True)
    assert [a.status for a in again.archives] == [Status.PRESENT] * 3
    assert again.downloaded == () and again.ingested == ()
    # Local copies deleted after ingestion: the ledger and the store say they are done.
    for a in again.archives:
        (dest / a.name).unlink()
    third = _fetch(server, known_hosts, remote, dest, store=store, ingest=True)
    assert [a.status for a in third.archives] == [Status.INGESTED] * 3
    assert not any(dest.glob("ENT1D_*")) and third.ingested == ()
    assert _state(remote) == before
    # The academy re-issues an archive (new mtime): it is downloaded again; the store sees
    # the same content (SHA-256) and does nothing.
    os.utime(remote / again.archives[0].name, (1_800_000_000, 1_800_000_000))
    fourth = _fetch(server, known_hosts, remote, dest, store=store, ingest=True)
    assert [a.status for a in fourth.archives] == [Status.FETCHED, Status.INGESTED, Status.INGESTED]
    assert [r.status for r in fourth.ingested] == []
    assert len(Store(store).history()) == 3


def test_an_archive_redeposited_during_its_download_fails_and_holds_back_later_ones(
    server, known_hosts, remote, tmp_path
):
    dest, store = tmp_path / "dest", tmp_path / "store"
    delta = remote / "ENT1D_DEMO31_Delta_20261005.tar.gz"

    def redeposit(name: str, done: int, total: int) -> None:
        if name == delta.name:  # the academy replaces the file while we read it
            os.utime(delta, (1_800_000_000, 1_800_000_000))

    res = _fetch(server, known_hosts, remote, dest, store=store, ingest=True, on_progress=redeposit)
    assert [a.status for a in res.archives] == [Status.FETCHED, Status.FAILED, Status.FETCHED]
    assert "a changé sur le serveur pendant le transfert" in res.archives[1].message
    assert not (dest / delta.name).exists()
    # The Complet after the failed Delta is not ingested: the series stays in order.
    assert [r.archive for r in res.ingested] == ["ENT1D_DEMO31_Complet_20260914.tar.gz"]
    (held,) = [w for w in res.warnings if w.code == WarningCode.HELD]
    assert held.archive == "ENT1D_DEMO31_Complet_20261012.tar.gz"

    again = _fetch(server, known_hosts, remote, dest, store=store, ingest=True)
    assert [a.status for a in again.archives] == [Status.PRESENT, Status.FETCHED, Status.PRESENT]
    assert "copie partielle écartée" in again.archives[1].message
    assert _digest(dest / delta.name) == _digest(delta)
    assert [(r.archive, r.status) for r in again.ingested] == [
        (delta.name, "ingested"),
        ("ENT1D_DEMO31_Complet_20261012.tar.gz", "ingested"),
    ]


def test_missed_windows_are_reported_from_the_cadence(server, known_hosts, remote, tmp_path):
    res = _fetch(
        server, known_hosts, remote, tmp_path / "dest", cadence_days=7, today=dt.date(2026, 10, 14)
    )
    (w,) = res.warnings
    # Weekly deposits: nothing around 21 and 28 September, between 14 Sept and 5 October.
    assert (w.code, w.missed) == (WarningCode.MISSED, (dt.date(2026, 9, 21), dt.date(2026, 9, 28)))
    assert w.message == (
        "ENT1D_DEMO31: 2 dépôt(s) manqué(s) après celui du 14/09/2026 (cadence "
        "7 jours): attendu(s) le 21/09/2026, 28/09/2026; dernière fenêtre "
        "fermée le 02/10/2026"
    )


# -- host keys -----------------------------------------------------------------------------


def test_an_unknown_host_key_is_refused_with_its_sha256fingerprint(server, remote, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    expected = fingerprint(Path(f"{server.keys.host}.pub"))
    with pytest.raises(HostKeyError, match="clé d'hôte inconnue") as err:
        _fetch(server, empty, remote, tmp_path / "dest")
    assert err.value.fingerprint == expected and expected.startswith("SHA256:")
    assert (err.value.host, err.value.port, err.value.reason) == (
        "127.0.0.1",
        server.port,
        "unknown",
    )
    assert expected in str(err.value) and str(empty) in str(err.value)
    assert empty.read_text() == ""  # never added
    assert not list((tmp_path / "dest").glob("ENT1D_*"))


def test_a_changed_host_key_is_refused(server, known_hosts, remote, tmp_path):
    other = keygen(tmp_path / "other_host", "-t", "ed25519")
    stale = tmp_path / "known_hosts"
    stale.write_text(
        f"[127.0.0.1]:{server.port} "
        + " ".join(Path(f"{other}.pub").read_text().split()[:2])
        + "\n"
    )
    with pytest.raises(HostKeyError, match="la clé d'hôte a CHANGÉ") as err:
        _fetch(server, stale, remote, tmp_path / "dest")
    assert err.value.reason == "changed"
    assert err.value.fingerprint == fingerprint(Path(f"{server.keys.host}.pub"))
    assert err.value.expected == fingerprint(Path(f"{other}.pub"))
    assert str(stale) in str(err.value)


def test_a_missing_known_hosts_file_is_an_error_before_connecting(server, remote, tmp_path):
    with pytest.raises(SFTPError, match=r"fichier known_hosts introuvable.*ssh-keyscan -p"):
        _fetch(server, tmp_path / "nope", remote, tmp_path / "dest")


# -- client keys ---------------------------------------------------------------------------


def test_a_2048_bit_rsa_key_is_refused_before_connecting(keys, tmp_path):
    # Port 9 on 127.0.0.1 has no server: reaching it would be UnreachableError instead.
    with pytest.raises(ClientKeyError, match=r"clé RSA de 2048 bits refusée.*RSA 4096 bits"):
        fetch(
            "127.0.0.1",
            port=9,
            user="x",
            key=keys.rsa2048,
            dest=tmp_path / "dest",
            known_hosts=tmp_path / "kh",
        )


def test_other_key_types_need_the_academys_agreement(server, known_hosts, remote, tmp_path):
    with pytest.raises(ClientKeyError, match=r"clé ssh-ed25519 refusée.*--allow-key-type"):
        _fetch(server, known_hosts, remote, tmp_path / "dest", key=server.keys.ed25519)
    res = _fetch(
        server,
        known_hosts,
        remote,
        tmp_path / "dest",
        key=server.keys.ed25519,
        allow_other_key_types=True,
    )
    assert len(res.downloaded) == 3


def test_an_encrypted_key_takes_its_passphrase_from_the_environment(
    server, known_hosts, remote, tmp_path, monkeypatch, caplog
):
    kw = {"key": server.keys.encrypted, "allow_other_key_types": True}
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal: never prompt
    with pytest.raises(ClientKeyError, match=f"clé chiffrée.*{PASSPHRASE_ENV}"):
        _fetch(server, known_hosts, remote, tmp_path / "dest", **kw)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(ClientKeyError, match="phrase de passe incorrecte") as err:
        _fetch(server, known_hosts, remote, tmp_path / "dest", **kw)
    assert "wrong" not in str(err.value)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    with caplog.at_level(logging.INFO, logger="ent_audit.transfer.fetch"):
        assert len(_fetch(server, known_hosts, remote, tmp_path / "dest", **kw).downloaded) == 3
    # One log line per archive, and no secret in any of them.
    lines = [r.getMessage() for r in caplog.records if r.name == "ent_audit.transfer.fetch"]
    assert len(lines) == 3 and all(": fetched, " in line for line in lines)
    assert PASSPHRASE not in caplog.text
    assert Path(server.keys.encrypted).read_text().splitlines()[1] not in caplog.text


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent on a private socket, SSH_AUTH_SOCK pointing at it."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.kill()
        proc.wait()


def test_agent_keys_work_under_the_same_policy(server, known_hosts, remote, tmp_path, agent):
    run("ssh-add", "-q", str(server.keys.rsa2048))
    with pytest.raises(ClientKeyError, match=r"ssh-agent: aucune clé conforme.*2048 bits"):
        _fetch(server, known_hosts, remote, tmp_path / "dest", key=None)
    run("ssh-add", "-q", str(server.keys.rsa4096))
    res = _fetch(server, known_hosts, remote, tmp_path / "dest", key=None)
    assert len(res.downloaded) == 3


def test_a_key_the_server_does_not_know_is_refused(server, known_hosts, remote, tmp_path):
    stranger = keygen(tmp_path / "stranger", "-t", "ed25519")
    with pytest.raises(AuthenticationError, match="refusée\\(s\\) par le serveur"):
        _fetch(
            server, known_hosts, remote, tmp_path / "dest", key=stranger, allow_other_key_types=True
        )


# -- dropped connections -------------------------------------------------------------------


def test_a_dropped_server_leaves_a_part_that_the_next_run_resumes(
    server, known_hosts, big_remote, tmp_path
):
    before = _state(big_remote)
    dest = tmp_path / "dest"
    cut_at: list[int] = []

    def kill_server(name: str, done: int, total: int) -> None:
        if not cut_at:
            cut_at.append(done)
            server.kill()

    try:
        first = _fetch(
            server, known_hosts, big_remote, dest, retries=1, backoff=0.05, on_progress=kill_server
        )
    finally:
        server.start()
    (failed,) = first.archives
    assert failed.status == Status.FAILED and "abandon après 2 essai(s)" in failed.message
    part = dest / f"{BIG}.part"
    kept = part.stat().st_size
    assert cut_at[0] <= kept < 40 << 20
    assert part.stat().st_mode & 0o777 == 0o600 and not (dest / BIG).exists()

    second = _fetch(server, known_hosts, big_remote, dest)
    (resumed,) = second.archives
    assert resumed.status == Status.RESUMED and resumed.resumed_from == kept
    assert resumed.transferred == (40 << 20) - kept
    assert _digest(dest / BIG) == _digest(big_remote / BIG)
    assert not part.exists()
    assert _state(big_remote) == before


def test_a_killed_session_is_retried_and_resumed_in_the_samerun(
    server, known_hosts, big_remote, tmp_path
):
    before = _state(big_remote)
    cut: list[int] = []

    def kill_session(name: str, done: int, total: int) -> None:
        if not cut:
            cut.append(done)
            server.kill_sessions()

    res = _fetch(
        server,
        known_hosts,
        big_remote,
        tmp_path / "dest",
        retries=2,
        backoff=0.05,
        on_progress=kill_session,
    )
    (a,) = res.archives
    assert a.status == Status.RESUMED and a.attempts == 2 and a.resumed_from >= cut[0]
    assert _digest(tmp_path / "dest" / BIG) == _digest(big_remote / BIG)
    assert _state(big_remote) == before


def test_an_unreachable_server_is_an_error(keys, known_hosts, tmp_path):
    with pytest.raises(UnreachableError, match="connexion impossible"):
        fetch(
            "127.0.0.1",
            port=free_port(),
            user="x",
            key=keys.rsa4096,
            known_hosts=known_hosts,
            dest=tmp_path / "dest",
        )


# -- pure parts ----------------------------------------------------------------------------


def test_only_plain_archive_names_are_selected():
    def entry(name: str, mode: int = 0o100600) -> paramiko.SFTPAttributes:
        e = paramiko.SFTPAttributes()
        e.filename, e.st_mode, e.st_size, e.st_mtime = name, mode, 10, 1_790_000_000
        return e

    archives, ignored = select_archives(
        [
            entry("ENT1D_X_Delta_20261005.tar.gz"),
            entry("ENT1D_X_Complet_20261005.tar.gz"),
            entry("../ENT1D_X_Complet_20260101.tar.gz"),
            entry("ENT1D_X_Complet_20260102.tar.gz.part"),
            entry("ENT1D_X_Complet_20260103.tar.gz", mode=0o040700),
            entry("notes.txt"),
        ]
    )
    assert [a.name for a in archives] == [
        "ENT1D_X_Complet_20261005.tar.gz",
        "ENT1D_X_Delta_20261005.tar.gz",
    ]
    assert ignored == [
        "../ENT1D_X_Complet_20260101.tar.gz",
        "ENT1D_X_Complet_20260102.tar.gz.part",
        "ENT1D_X_Complet_20260103.tar.gz",
        "notes.txt",
    ]


def test_missed_windows_wait_for_the_window_to_close():
    dates = [dt.date(2026, 9, 7), dt.date(2026, 9, 14), dt.date(2026, 9, 22)]  # one day late
    assert missed_windows(dates, 7, dt.date(2026, 9, 30)) == []
    # Next expected 29 September: its window runs to Monday 5 October.
    assert missed_windows(dates, 7, dt.date(2026, 10, 5)) == []
    (w,) = missed_windows(dates, 7, dt.date(2026, 10, 6), "ENT1D_X")
    assert (w.code, w.date, w.missed) == (
        WarningCode.MISSED,
        dt.date(2026, 9, 29),
        (dt.date(2026, 9, 29),),
    )
    assert w.message.startswith("ENT1D_X: 1 dépôt(s) manqué(s) après celui du 22/09/2026")
    (w,) = missed_windows(dates, 7, dt.date(2026, 10, 20))  # one warning for the whole gap
    assert w.missed == (dt.date(2026, 9, 29), dt.date(2026, 10, 6), dt.date(2026, 10, 13))
    with pytest.raises(FetchError):
        missed_windows(dates, 0, dt.date(2026, 10, 6))


# -- command line --------------------------------------------------------------------------


def test_cli_fetch_ingests_and_prints_in_french(server, known_hosts, remote, tmp_path, capsys):
    argv = [
        "fetch",
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port),
        "--user",
        getpass.getuser(),
        "--key",
        str(server.keys.rsa4096),
        "--known-hosts",
        str(known_hosts),
        "--remote-dir",
        str(remote),
        "--dest",
        str(tmp_path / "dest"),
        "--ingest",
        "--store",
        str(tmp_path / "store"),
    ]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "3 archive(s) sur le serveur, 2 entrée(s) ignorée(s)" in out
    assert "ENT1D_DEMO31_Delta_20261005.tar.gz: récupérée" in out
    assert "ENT1D_DEMO31_Delta_20261005.tar.gz: ingérée" in out
    assert cli.main(argv) == cli.EXIT_OK
    assert (
        "Delta_20261005.tar.gz: déjà dans la destination — même nom et même taille"
        in capsys.readouterr().out
    )
    assert cli.main(argv[:-2]) == cli.EXIT_BAD_INPUT
    assert "--ingest demande --store" in capsys.readouterr().err
    empty = tmp_path / "empty_known_hosts"
    empty.touch()
    argv[argv.index(str(known_hosts))] = str(empty)
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    assert "erreur: [127.0.0.1]:" in capsys.readouterr().err
