"""A verified SFTP connection to the academy's server, the way Annexe 2 prescribes.

- The server's host key must already be in a known_hosts file: an unknown or changed key is
  refused (never added), and the error shows the offered key's SHA-256 fingerprint, as OpenSSH
  prints it, and the file to update.
- Client keys: RSA of at least 4096 bits; other types (ed25519, ecdsa) only when the caller says
  the academy agreed. The policy is checked before any connection. An encrypted key's passphrase
  comes from ``ENT_AUDIT_KEY_PASSPHRASE`` or a prompt on a terminal, never from a file. Keys held
  by an ssh-agent work too, under the same policy.
- Public-key authentication only: paramiko is never given a password, never looks for keys
  on its own, and never reads the system's known_hosts.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko

from ent_audit.exceptions import (
    SSH_PORT,
    AuthenticationError,
    ClientKeyError,
    HostKeyError,
    SFTPError,
    UnreachableError,
)

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
PASSPHRASE_ENV = "ENT_AUDIT_KEY_PASSPHRASE"
MIN_RSA_BITS = 4096


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's fingerprint of a public key: ``SHA256:`` and unpadded base64 of its blob."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


# -- client keys ---------------------------------------------------------------------------


def check_key_policy(key: paramiko.PKey, source: str, allow_other_key_types: bool) -> None:
    """Raise :class:`ClientKeyError` unless ``key`` is RSA >= 4096 bits (or allowed otherwise)."""
    name, bits = key.get_name(), key.get_bits()
    if name == "ssh-rsa":
        if bits < MIN_RSA_BITS:
            raise ClientKeyError(
                source,
                f"clé RSA de {bits} bits refusée: la convention "
                f"(Annexe 2) demande une bi-clé RSA {MIN_RSA_BITS} bits "
                f"(ssh-keygen -t rsa -b {MIN_RSA_BITS})",
            )
    elif not allow_other_key_types:
        raise ClientKeyError(
            source,
            f"clé {name} refusée: la convention demande une bi-clé RSA "
            f"{MIN_RSA_BITS} bits; --allow-key-type l'accepte si l'académie "
            "en est d'accord",
        )


def _is_encrypted(data: bytes) -> bool:
    """Whether a private key file needs a passphrase (OpenSSH or PEM format)."""
    lines = data.splitlines()
    if any(
        line.startswith((b"-----BEGIN ENCRYPTED", b"Proc-Type: 4,ENCRYPTED")) for line in lines
    ):  # PKCS#8, legacy PEM
        return True
    body = b"".join(line for line in lines if not line.startswith(b"-----"))
    try:
        raw = base64.b64decode(body)
    except ValueError:
        return False
    magic = b"openssh-key-v1\0"
    if not raw.startswith(magic):
        return False
    size = int.from_bytes(raw[len(magic) : len(magic) + 4], "big")
    cipher = raw[len(magic) + 4 : len(magic) + 4 + size]
    return cipher != b"none"


def _passphrase(path: Path) -> str:
    """From ``ENT_AUDIT_KEY_PASSPHRASE``, else a prompt when stdin is a terminal."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value
    if sys.stdin is None or not sys.stdin.isatty():
        raise ClientKeyError(
            str(path),
            f"clé chiffrée et pas de phrase de passe: définissez "
            f"{PASSPHRASE_ENV} (pas de terminal pour la demander)",
        )
    return getpass.getpass(f"Phrase de passe de {path}: ")


def load_key(path: Path | str, *, allow_other_key_types: bool = False) -> paramiko.PKey:
    """Read a private key file and check it against the key policy."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ClientKeyError(str(path), f"clé illisible ({err.strerror or err})") from None
    secret = _passphrase(path).encode() if _is_encrypted(data) else None
    try:
        key = paramiko.PKey.from_path(path, secret)
    except (ValueError, TypeError, paramiko.SSHException) as err:
        reason = "phrase de passe incorrecte ou clé illisible" if secret else "clé illisible"
        detail = str(err).splitlines()[0][:120] if str(err) else ""
        raise ClientKeyError(str(path), f"{reason} ({type(err).__name__}: {detail})") from None
    check_key_policy(key, str(path), allow_other_key_types)
    return key


def agent_keys(
    agent: paramiko.Agent, *, allow_other_key_types: bool = False
) -> list[paramiko.PKey]:
    """The agent's keys that pass the policy; an error if the agent offers none that do."""
    keys = list(agent.get_keys())
    if not keys:
        raise ClientKeyError(
            "ssh-agent",
            "aucune clé (agent absent: SSH_AUTH_SOCK non défini, "
            "ou vide: ssh-add); ou passez --key",
        )
    allowed, refused = [], []
    for key in keys:
        try:
            check_key_policy(key, f"ssh-agent {fingerprint(key)}", allow_other_key_types)
            allowed.append(key)
        except ClientKeyError as err:
            refused.append(err)
    if not allowed:
        raise ClientKeyError(
            "ssh-agent", "aucune clé conforme: " + "; ".join(str(e) for e in refused)
        )
    return allowed


@contextlib.contextmanager
def client_keys(
    key: Path | str | None, *, use_agent: bool | None = None, allow_other_key_types: bool = False
) -> Iterator[list[paramiko.PKey]]:
    """The keys to offer, in order: ``key`` (a file), then the agent's when ``use_agent``.

    ``use_agent=None`` means: the agent's keys when no file is given, not otherwise. The
    agent connection (agent keys sign through it) stays open until the block ends.
    """
    keys = [load_key(key, allow_other_key_types=allow_other_key_types)] if key else []
    if not (use_agent or (use_agent is None and not key)):
        yield keys
        return
    agent = paramiko.Agent()
    try:
        yield keys + agent_keys(agent, allow_other_key_types=allow_other_key_types)
    finally:
        agent.close()


# -- connection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """Where to connect and how to recognise the server."""

    host: str
    user: str
    port: int = SSH_PORT
    known_hosts: Path = DEFAULT_KNOWN_HOSTS

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class _RefuseUnknown(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, raising an error that carries the offered key's fingerprint."""

    def __init__(self, server: Server, known_hosts: Path) -> None:
        self.server = server
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key) -> None:
        raise HostKeyError(
            self.server.host, self.server.port, key.get_name(), fingerprint(key), self.known_hosts
        )


def _known_hosts(server: Server) -> Path:
    path = Path(server.known_hosts).expanduser()
    if not path.is_file():
        keyscan_port = "" if server.port == SSH_PORT else f" -p {server.port}"
        raise SFTPError(
            server.host,
            server.port,
            f"{path}: fichier known_hosts introuvable: la clé du serveur doit y être "
            f"avant toute connexion (ssh-keyscan{keyscan_port} {server.host} > {path}, "
            f"puis vérifier l'empreinte avec ssh-keygen -lf {path})",
        )
    return path


def _connect_with(
    server: Server, known_hosts: Path, key: paramiko.PKey, timeout: float
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(_RefuseUnknown(server, known_hosts))
    try:
        client.connect(
            server.host,
            port=server.port,
            username=server.user,
            pkey=key,
            allow_agent=False,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
    except paramiko.BadHostKeyException as err:
        client.close()
        raise HostKeyError(
            server.host,
            server.port,
            err.key.get_name(),
            fingerprint(err.key),
            known_hosts,
            fingerprint(err.expected_key),
        ) from None
    except BaseException:
        client.close()
        raise
    return client


def connect(
    server: Server, keys: list[paramiko.PKey], *, timeout: float = 30.0
) -> paramiko.SSHClient:
    """An authenticated SSH client, the host key verified; each key is tried in turn."""
    known_hosts = _known_hosts(server)
    if not keys:
        raise ClientKeyError("clés", "aucune clé à proposer au serveur")
    refused = []
    for key in keys:
        try:
            return _connect_with(server, known_hosts, key, timeout)
        except paramiko.AuthenticationException:
            refused.append(f"{key.get_name()} {fingerprint(key)}")
        except (OSError, EOFError, paramiko.SSHException) as err:
            raise UnreachableError(
                server.host,
                server.port,
                f"{server.label}: connexion impossible ({err or type(err).__name__})",
            ) from None
    raise AuthenticationError(
        server.host,
        server.port,
        f"{server.label}: clé(s) refusée(s) par le serveur: "
        f"{', '.join(refused)}; l'académie a-t-elle la clé publique (.pub)?",
    )


def open_sftp(client: paramiko.SSHClient, timeout: float = 30.0) -> paramiko.SFTPClient:
    """An SFTP session on ``client`` whose reads time out instead of hanging."""
    sftp = client.open_sftp()
    sftp.get_channel().settimeout(timeout)
    return sftp
