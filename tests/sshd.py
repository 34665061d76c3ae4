"""A real OpenSSH sshd on 127.0.0.1 with throwaway keys: the SFTP tests and the chain benchmark
(``benchmarks/run_all.py``) start the same one.

``/usr/sbin/sshd -D -e`` in the foreground on a free port, ``internal-sftp``, public-key
authentication only, the host key and ``authorized_keys`` given by the caller; ``known_hosts``
written by the real ``ssh-keyscan``, as the README tells an académie to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SSHD = Path("/usr/sbin/sshd")


class SSHDError(RuntimeError):
    """sshd is missing, stopped at start-up, or does not listen (its log in the message)."""


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def keygen(path: Path, *spec: str, passphrase: str = "") -> Path:
    run("ssh-keygen", "-q", *spec, "-N", passphrase, "-C", "ent-audit-test", "-f", str(path))
    return path


def fingerprint(pub: Path) -> str:
    """The fingerprint as OpenSSH's own ssh-keygen prints it."""
    return run("ssh-keygen", "-lf", str(pub)).split()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_openssh() -> None:
    if not SSHD.exists() or not shutil.which("ssh-keygen"):
        raise SSHDError(
            f"{SSHD} ou ssh-keygen absent: les tests SFTP et le banc d'essai demandent un vrai "
            "OpenSSH; `make test` l'installe (paquet Debian openssh-server)"
        )


class ServerKeys(Protocol):
    host: Path
    """The server's private host key."""

    @property
    def authorized(self) -> Sequence[Path]:
        """Client private keys whose ``.pub`` go into ``authorized_keys``."""
        ...


@dataclass(frozen=True)
class Keys:
    """A host key and the client keys the server accepts."""

    host: Path
    authorized: tuple[Path, ...]

    @classmethod
    def rsa4096(cls, folder: Path) -> Keys:
        """An ed25519 host key and one 4096-bit RSA client key (what the convention asks)."""
        return cls(
            keygen(folder / "host_ed25519", "-t", "ed25519"),
            (keygen(folder / "rsa4096", "-t", "rsa", "-b", "4096"),),
        )


@dataclass
class SSHServer:
    """A real sshd in the foreground (``-D -e``); its sessions are its child processes."""

    root: Path
    port: int
    keys: ServerKeys
    proc: subprocess.Popen | None = None

    @classmethod
    def started(cls, root: Path, keys: ServerKeys) -> SSHServer:
        require_openssh()
        srv = cls(root, free_port(), keys)
        srv.write_config()
        srv.start()
        return srv

    @property
    def config(self) -> Path:
        return self.root / "sshd_config"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def write_config(self) -> None:
        authorized = self.root / "authorized_keys"
        authorized.write_text("".join(Path(f"{k}.pub").read_text() for k in self.keys.authorized))
        self.config.write_text(f"""\
ListenAddress 127.0.0.1
Port {self.port}
HostKey {self.keys.host}
AuthorizedKeysFile {authorized}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile {self.root / "sshd.pid"}
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")

    def start(self) -> None:
        privsep = Path("/run/sshd")  # sshd's privilege separation directory
        if os.geteuid() == 0 and not privsep.exists():
            privsep.mkdir(mode=0o755, parents=True)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SSHDError(f"sshd s'est arrêté au démarrage:\n{self.log.read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise SSHDError(f"sshd n'écoute pas sur le port {self.port}:\n{self.log.read_text()}")

    def known_hosts(self, path: Path | None = None) -> Path:
        """``ssh-keyscan`` of this server into ``path`` (default ``ROOT/known_hosts``)."""
        path = path or self.root / "known_hosts"
        path.write_text(run("ssh-keyscan", "-p", str(self.port), "-t", "ed25519", "127.0.0.1"))
        return path

    def _descendants(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
        out, todo = [], [self.proc.pid] if self.proc else []
        while todo:
            children = parents.get(todo.pop(), [])
            out += children
            todo += children
        return out

    def kill_sessions(self) -> None:
        """SIGKILL every session process: connections drop, the listener stays."""
        for pid in self._descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # already exited
                pass

    def kill(self) -> None:
        """SIGKILL the whole server, listener and sessions."""
        self.kill_sessions()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
