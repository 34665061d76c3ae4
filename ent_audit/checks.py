"""One check type for every analysis, and the exit statuses every command uses.

A check is *passed*, *failed* or *skipped*: one that could not run (no perimeter list given,
no input file) is skipped, shown as « non contrôlé », and never counted as passed. A failed
*blocking* check makes the report (and the command) exit 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """The contract with schedulers, the same for every command."""

    OK = 0
    """Ran, nothing to report."""
    FINDINGS = 1
    """Ran and found something: anomalies, a failed blocking check, a missed window."""
    ERROR = 2
    """Nothing done or refused: bad input, bad parameters, any error."""


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Could not run (an input was not given): never counted as passed."""


STATUS_LABELS = {Status.PASSED: "conforme", Status.FAILED: "ÉCHEC", Status.SKIPPED: "non contrôlé"}
"""How a check's status reads in French, on pages, in the index and on the command line."""


@dataclass(frozen=True)
class Check:
    """One check an analysis makes. ``title`` is neutral (what is checked); ``detail`` says
    what happened ("1 constat, seuil d'échec 1 atteint"); messages prefix it with ``id``."""

    id: str
    title: str
    status: Status
    blocking: bool = False
    detail: str = ""

    @classmethod
    def of(
        cls, id: str, title: str, ok: bool | None, *, blocking: bool = False, detail: str = ""
    ) -> Check:
        """``ok`` True passed, False failed, None skipped."""
        status = Status.SKIPPED if ok is None else Status.PASSED if ok else Status.FAILED
        return cls(id, title, status, blocking, detail)

    @property
    def failed(self) -> bool:
        return self.status == Status.FAILED

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = str(self.status)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Check:
        return cls(
            d["id"], d["title"], Status(d["status"]), bool(d.get("blocking")), d.get("detail", "")
        )


def blocking_failures(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.blocking and c.failed]


def failure_message(checks: Iterable[Check]) -> str:
    """One line per failed blocking check: what the CLI prints and the index shows."""
    return "\n".join(
        f"{c.id} : {c.detail}" if c.detail else c.title for c in blocking_failures(checks)
    )


def exit_code(checks: Iterable[Check]) -> ExitCode:
    return ExitCode.FINDINGS if blocking_failures(checks) else ExitCode.OK


class Verdict(StrEnum):
    """What a page says first, derived from its checks by :func:`verdict` and nothing else."""

    COMPLIANT = "compliant"
    """Every check ran and passed."""
    WATCH = "watch"
    """A non-blocking check failed, or a check could not run (nothing proves it passed)."""
    FAILED = "failed"
    """A blocking check failed: the run exits 1."""


VERDICT_LABELS = {
    Verdict.COMPLIANT: "CONFORME",
    Verdict.WATCH: "À SURVEILLER",
    Verdict.FAILED: "ÉCHEC",
}


def verdict(checks: Iterable[Check]) -> Verdict:
    """Failed blocking check: ÉCHEC; failed non-blocking or skipped check, or no check at all
    (nothing was verified): À SURVEILLER; else CONFORME."""
    checks = list(checks)
    if blocking_failures(checks):
        return Verdict.FAILED
    if not checks or any(c.status != Status.PASSED for c in checks):
        return Verdict.WATCH
    return Verdict.COMPLIANT


def attention(checks: Iterable[Check]) -> list[Check]:
    """The checks a reader must see first: failed blocking, then failed others, then skipped."""
    checks = list(checks)
    order = (
        [c for c in checks if c.failed and c.blocking]
        + [c for c in checks if c.failed and not c.blocking]
        + [c for c in checks if c.status == Status.SKIPPED]
    )
    return order
