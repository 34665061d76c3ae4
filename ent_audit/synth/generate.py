"""Generation and writing: the model, the delta, the defects and the truth, then the files.

:func:`generate` builds the model (:mod:`.model`), the delta (:mod:`.delta`), injects the
defects (:mod:`.defects`) and assembles the truth; :func:`write` puts the result on disk
(:mod:`.xml`) with ``truth.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ent_audit.aaf import naming
from ent_audit.exceptions import SynthParameterError
from ent_audit.synth.defects import DEFECTS, inject
from ent_audit.synth.delta import DELTA_AFTER, SECOND_COMPLETE_AFTER, build_delta
from ent_audit.synth.draws import IdPool
from ent_audit.synth.inject import InjectContext
from ent_audit.synth.model import Builder, check_staff
from ent_audit.synth.names import STRUCT_CIRC, STRUCT_DSDEN, STRUCT_SCHOOL
from ent_audit.synth.records import KINDS, ST, Extraction, Perimeter, Record
from ent_audit.synth.xml import write_archive


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write` put on disk."""

    out: Path
    archives: list[Path]
    """One ``tar.gz`` per extraction, in date order."""
    folders: list[Path] | None
    """The same extractions as plain folders of XML files, or None without ``unpack``."""
    truth: Path
    perimeter: Perimeter


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: with millions of live, acyclic records its full
    passes cost more than the generation itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _uai_of(records: list[Record]) -> dict[str, str | None]:
    return {r.attrs[ST.jointure][0] or r.id: r.attrs[ST.uai][0] for r in records}


def _seal(obj: Any, uai: Mapping[str, str | None]) -> Any:
    """Replace every ``_school`` key by the school's written ``uai`` (recursively)."""
    if isinstance(obj, list):
        return [_seal(x, uai) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "_school":
                out["uai"] = uai.get(v) if v else None
            else:
                out[k] = _seal(v, uai)
        return out
    return obj


def generate(
    *,
    seed: int = 0,
    schools: int = 1000,
    pupils: int = 130_000,
    staff: int | None = None,
    perimeter: str = "ENT1D_DEMO31",
    start: dt.date = dt.date(2026, 9, 14),
    defects: Mapping[str, float] | None = None,
) -> Perimeter:
    """Generate a synthetic perimeter: Complet, Delta, later Complet, and the truth.

    ``defects`` maps names of :data:`DEFECTS` to rates in [0, 1]: a rate injects
    ``max(1, round(rate * eligible))`` victims. Without defects the perimeter is clean.
    ``staff`` asks for exactly that many staff records in the first Complet (see
    :class:`~ent_audit.synth.model.StaffPlan`); without it, one teacher per class and one AESH
    per 400 pupils, as always. The same arguments always give the same perimeter.
    """
    check_arguments(seed, schools, pupils, staff, perimeter, defects)
    with _no_gc():
        return _generate(seed, schools, pupils, staff, perimeter, start, dict(defects or {}))


PERIMETER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""A perimeter token as the AAF's file names hold one (``ENT1D_DEMO31``): it starts every file
name, so nothing that leaves the output folder (``/``, ``..``)."""


def check_arguments(
    seed: int,
    schools: int,
    pupils: int,
    staff: int | None,
    perimeter: str,
    defects: Mapping[str, float] | None,
) -> None:
    """Refuse, naming the parameter, what the generator cannot build."""
    if seed < 0:
        raise SynthParameterError("seed", f"{seed} : la graine est un entier positif ou nul")
    if schools < 1:
        raise SynthParameterError("schools", f"{schools} : il faut au moins une école")
    if schools > 9_000:
        raise SynthParameterError("schools", f"{schools} : au plus 9000 écoles (UAI 031NNNN)")
    if pupils < schools:
        raise SynthParameterError(
            "pupils", f"{pupils} élèves pour {schools} écoles : au moins un élève par école"
        )
    if staff is not None:
        check_staff(staff, schools)
    if not PERIMETER.fullmatch(perimeter):
        raise SynthParameterError(
            "perimeter",
            f"{perimeter!r} : lettres, chiffres, « _ » et « - » seulement (ex. ENT1D_DEMO31)",
        )
    rates = dict(defects or {})
    unknown = sorted(set(rates) - set(DEFECTS))
    if unknown:
        raise SynthParameterError(
            "defects",
            f"défauts inconnus : {', '.join(unknown)} ; connus : {', '.join(sorted(DEFECTS))}",
        )
    bad = sorted({v for v in rates.values() if not 0 <= v <= 1})
    if bad:
        shown = ", ".join(f"{v:g}" for v in bad)
        raise SynthParameterError("defects", f"taux {shown} hors de [0, 1]")


def _generate(
    seed: int,
    schools: int,
    pupils: int,
    staff: int | None,
    perimeter: str,
    start: dt.date,
    rates: dict[str, float],
) -> Perimeter:
    ids = IdPool(np.random.default_rng([seed, 9]), 1_000_000, 40)
    ines = IdPool(np.random.default_rng([seed, 7]), 1_000_000_000, 5000)
    builder = Builder(seed, schools, pupils, start, ids, ines, staff)
    model = builder.build()
    dates = (start, start + DELTA_AFTER, start + SECOND_COMPLETE_AFTER)
    names = (
        naming.ArchiveName(perimeter, "complete", dates[0]),
        naming.ArchiveName(perimeter, "delta", dates[1]),
        naming.ArchiveName(perimeter, "complete", dates[2]),
    )
    delta = build_delta(model, builder.people, seed, dates[1])

    first = {k: list(v) for k, v in model.records.items()}
    states = [first, delta.after]
    ctx = InjectContext(model, states, set(delta.touched), ids, start)
    injected, report = inject(ctx, seed, rates)

    extractions = [
        Extraction(names[0], ctx.states[0]),
        Extraction(names[1], delta.records),
        Extraction(names[2], ctx.states[1]),
    ]
    uai = _uai_of(ctx.states[0]["EtabEducNat"])
    truth = {
        "config": {
            "seed": seed,
            "schools": schools,
            "pupils": pupils,
            # Only when asked: without it the truth stays as it always was, byte for byte.
            **({"staff": staff} if staff is not None else {}),
            "perimeter": perimeter,
            "start": start.isoformat(),
            "school_year": builder.year_label,
            "defects": {k: rates[k] for k in DEFECTS if k in rates},
            "defects_injected": report,
            "defects_scope": "Les défauts sont injectés dans le premier Complet et reportés "
            "à l'identique dans le Complet suivant ; le Delta ne touche "
            "aucun enregistrement victime d'un défaut.",
            "defect_archives": [names[0].filename, names[2].filename],
            "structure_types": {
                "school": STRUCT_SCHOOL,
                "circonscription": STRUCT_CIRC,
                "dsden": STRUCT_DSDEN,
            },
            "ulis": "Les élèves ULIS (ENTEleveTypeClasse = ULIS) ont 1 ou 2 ans de plus que "
            "l'âge du niveau : ce n'est pas un défaut.",
        },
        "extractions": [
            {"archive": n.filename, "type": n.extraction, "date": n.date.isoformat()}
            for n in names
            if n.date
        ],
        "counts": {k: {e.name.filename: len(e.records[k]) for e in extractions} for k in KINDS},
        "defects": _seal(injected, uai),
        "delta": _seal(
            {
                "archive": names[1].filename,
                "previous": names[0].filename,
                "next": names[2].filename,
                **delta.truth,
            },
            uai,
        ),
    }
    return Perimeter(extractions, truth)


def write_perimeter(
    perimeter: Perimeter, out: Path, *, part_size: int = 8_000_000, unpack: bool = False
) -> SynthResult:
    """Write a generated perimeter: one tar.gz per extraction, ``truth.json``, and with
    ``unpack`` the same XML files as plain folders. Byte-identical for identical input.

    Archives are written by two threads: compression releases the GIL and overlaps with
    rendering; each archive's bytes do not depend on the scheduling.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _no_gc(), ThreadPoolExecutor(max_workers=2) as pool:
        written = list(
            pool.map(lambda e: write_archive(e, out, part_size, unpack), perimeter.extractions)
        )
    truth = out / "truth.json"
    truth.write_text(
        json.dumps(perimeter.truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    folders = [f for _, f in written if f is not None]
    return SynthResult(out, [a for a, _ in written], folders if unpack else None, truth, perimeter)


def write(
    out: Path, *, part_size: int = 8_000_000, unpack: bool = False, **generate_kwargs: Any
) -> SynthResult:
    """Generate a perimeter (``generate_kwargs`` go to :func:`generate`) and write it."""
    return write_perimeter(
        generate(**generate_kwargs), Path(out), part_size=part_size, unpack=unpack
    )
