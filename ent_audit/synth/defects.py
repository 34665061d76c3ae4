"""The named defects a checker should find, their registry :data:`DEFECTS`, and the truth
entry each records for its victims (``truth.json``'s ``defects``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ent_audit.aaf import schema
from ent_audit.synth.inject import Defect, Entry, InjectContext
from ent_audit.synth.names import ULIS_CLASS, names_key, phone_text
from ent_audit.synth.records import EL, KINDS, PE, PR, ST, UAI_KEYS, Record, date_text

DEFECTS: dict[str, Defect] = {}
"""The registry of injectable defects, by name, in injection order."""


def _defect(
    name: str, kind: str, description: str, eligible: Callable[[InjectContext], list[Any]]
) -> Callable[
    [Callable[[InjectContext, Any], Entry | None]], Callable[[InjectContext, Any], Entry | None]
]:
    def register(
        apply: Callable[[InjectContext, Any], Entry | None],
    ) -> Callable[[InjectContext, Any], Entry | None]:
        DEFECTS[name] = Defect(name, kind, description, eligible, apply)
        return apply

    return register


def _entry(
    kind: str,
    jointure: str,
    attribute: str | None,
    detail: str,
    school: str | None = None,
    related: Sequence[str] = (),
) -> Entry:
    """A truth entry; ``_school`` becomes the school's written UAI when the truth is sealed."""
    out: Entry = {
        "kind": kind,
        "jointure": jointure,
        "_school": school,
        "attribute": attribute,
        "detail": detail,
    }
    if related:
        out["related"] = list(related)
    return out


def _pupils(ctx: InjectContext) -> list[str]:
    return list(ctx.index["Eleve"])


def _schools(ctx: InjectContext) -> list[str]:
    return [s.jointure for s in ctx.model.schools]


def _person_records(ctx: InjectContext) -> list[tuple[str, str]]:
    return [(k, j) for k in ("Eleve", "PersRelEleve", "PersEducNat") for j in ctx.index[k]]


def _children(rec: Record) -> list[str]:
    return [v for v in rec.attrs[PR.students] if v]


def _guardian_ids(rec: Record) -> list[str]:
    return [v.split("$")[0] for v in rec.attrs[EL.guardians] if v]


def _school_of(rec: Record) -> str:
    return rec.attrs[EL.structures][0] or ""


def _natural_guardians(ctx: InjectContext) -> list[str]:
    return [j for j, r in ctx.index["PersRelEleve"].items() if r.attrs[PR.first_name][0]]


@_defect(
    "dangling_guardian",
    "Eleve",
    "Un élève désigne un responsable (ENTEleveAutoriteParentale) absent du fichier PersRelEleve.",
    _natural_guardians,
)
def _dangling_guardian(ctx: InjectContext, gid: str) -> Entry | None:
    kids = _children(ctx.rec("PersRelEleve", gid))
    if len(kids) != 1 or not ctx.free("PersRelEleve", gid) or not ctx.free("Eleve", kids[0]):
        return None
    ctx.claim("PersRelEleve", gid)
    ctx.claim("Eleve", kids[0])
    ctx.remove("PersRelEleve", gid)
    pupil = ctx.rec("Eleve", kids[0])
    return _entry(
        "Eleve",
        kids[0],
        EL.guardians,
        f"responsable {gid} absent de PersRelEleve",
        _school_of(pupil),
        [gid],
    )


@_defect(
    "orphan_guardian",
    "PersRelEleve",
    "Un responsable n'est désigné par aucun élève.",
    _natural_guardians,
)
def _orphan_guardian(ctx: InjectContext, gid: str) -> Entry | None:
    guardian = ctx.rec("PersRelEleve", gid)
    kids = _children(guardian)
    if len(kids) != 1 or not ctx.free("PersRelEleve", gid) or not ctx.free("Eleve", kids[0]):
        return None
    pupil = ctx.rec("Eleve", kids[0])
    links = [v for v in pupil.attrs[EL.guardians] if v and v.split("$")[0] != gid]
    if not links:
        return None
    ctx.claim("PersRelEleve", gid)
    ctx.claim("Eleve", kids[0])
    pupil.attrs[EL.guardians] = links
    guardian.attrs[PR.students] = [None]
    return _entry("PersRelEleve", gid, PR.students, "responsable désigné par aucun élève")


@_defect(
    "one_sided_link",
    "Eleve",
    "Un élève désigne un responsable qui ne le cite pas dans ENTPersRelEleveEleve.",
    lambda ctx: [j for j, r in ctx.index["PersRelEleve"].items() if len(_children(r)) >= 2],
)
def _one_sided_link(ctx: InjectContext, gid: str) -> Entry | None:
    guardian = ctx.rec("PersRelEleve", gid)
    kids = _children(guardian)
    free = [k for k in kids if ctx.free("Eleve", k)]
    if not ctx.free("PersRelEleve", gid) or not free:
        return None
    kid = ctx.pick(free)
    ctx.claim("PersRelEleve", gid)
    ctx.claim("Eleve", kid)
    guardian.attrs[PR.students] = [k for k in kids if k != kid]
    return _entry(
        "Eleve",
        kid,
        EL.guardians,
        f"le responsable {gid} ne cite pas l'élève",
        _school_of(ctx.rec("Eleve", kid)),
        [gid],
    )


@_defect("duplicate_ine", "Eleve", "Deux élèves portent le même INE.", _pupils)
def _duplicate_ine(ctx: InjectContext, pid: str) -> Entry | None:
    other = ctx.pick(_pupils(ctx))
    if other == pid or not ctx.free("Eleve", pid, other):
        return None
    ctx.claim("Eleve", pid, other)
    rec = ctx.rec("Eleve", pid)
    ine = ctx.rec("Eleve", other).attrs[EL.ine][0]
    rec.attrs[EL.ine] = [ine]
    return _entry(
        "Eleve", pid, EL.ine, f"INE {ine} déjà porté par l'élève {other}", _school_of(rec), [other]
    )


@_defect(
    "malformed_ine",
    "Eleve",
    "INE mal formé (longueur ou caractères hors format BEA/RNIE).",
    _pupils,
)
def _malformed_ine(ctx: InjectContext, pid: str) -> Entry | None:
    rec = ctx.take("Eleve", pid)
    if rec is None:
        return None
    ine = rec.attrs[EL.ine][0] or ""
    bad = (ine[:-1], ine + "7", f"{ine[:5]} {ine[5:]}", ine[:-1] + "-")[int(ctx.rng.integers(4))]
    rec.attrs[EL.ine] = [bad]
    return _entry("Eleve", pid, EL.ine, f"INE {bad!r} mal formé", _school_of(rec))


@_defect("wrong_uai_key", "EtabEducNat", "Code UAI dont la lettre clé est fausse.", _schools)
def _wrong_uai_key(ctx: InjectContext, sid: str) -> Entry | None:
    rec = ctx.take("EtabEducNat", sid)
    if rec is None:
        return None
    uai = rec.attrs[ST.uai][0] or ""
    wrong = ctx.pick([k for k in UAI_KEYS if k != uai[7]])
    rec.attrs[ST.uai] = [uai[:7] + wrong]
    return _entry("EtabEducNat", sid, ST.uai, f"clé {wrong}, attendue {uai[7]}", sid)


@_defect(
    "school_without_director",
    "EtabEducNat",
    "École sans directeur (aucun ENTEnsFonctionDir ne la désigne).",
    _schools,
)
def _school_without_director(ctx: InjectContext, sid: str) -> Entry | None:
    director = ctx.school_by_jointure[sid].director
    if not ctx.free("EtabEducNat", sid) or not ctx.free("PersEducNat", director):
        return None
    ctx.claim("EtabEducNat", sid)
    ctx.claim("PersEducNat", director)
    rec = ctx.rec("PersEducNat", director)
    rec.attrs[PE.director_of] = [None]
    rec.attrs[PE.functions] = [v for v in rec.attrs[PE.functions] if v and "$DIR$" not in v]
    return _entry("EtabEducNat", sid, PE.director_of, "aucun directeur", sid, [director])


@_defect(
    "several_directors",
    "EtabEducNat",
    "École avec plusieurs directeurs.",
    lambda ctx: [s.jointure for s in ctx.model.schools if len(s.teachers) >= 2],
)
def _several_directors(ctx: InjectContext, sid: str) -> Entry | None:
    school = ctx.school_by_jointure[sid]
    others = [t for t in school.teachers if t != school.director and ctx.free("PersEducNat", t)]
    if (
        not others
        or not ctx.free("EtabEducNat", sid)
        or not ctx.free("PersEducNat", school.director)
    ):
        return None
    second = ctx.pick(others)
    ctx.claim("EtabEducNat", sid)
    ctx.claim("PersEducNat", school.director, second)
    rec = ctx.rec("PersEducNat", second)
    rec.attrs[PE.director_of] = [sid]
    rec.attrs[PE.functions] = [*rec.attrs[PE.functions], f"{sid}$DIR$DIRECTION$-$-"]
    return _entry(
        "EtabEducNat", sid, PE.director_of, "deux directeurs", sid, [school.director, second]
    )


@_defect(
    "director_not_attached",
    "PersEducNat",
    "Directeur d'une école à laquelle il n'est pas rattaché (ENTPersonStructRattach).",
    lambda ctx: [s.director for s in ctx.model.schools],
)
def _director_not_attached(ctx: InjectContext, did: str) -> Entry | None:
    rec = ctx.rec("PersEducNat", did)
    sid = rec.attrs[PE.director_of][0] or ""
    if not ctx.free("PersEducNat", did) or not ctx.free("EtabEducNat", sid):
        return None
    ctx.claim("PersEducNat", did)
    ctx.claim("EtabEducNat", sid)
    circ = ctx.model.circ_jointures[ctx.school_by_jointure[sid].circ]
    rec.attrs[PE.structures] = [circ]
    return _entry("PersEducNat", did, PE.structures, f"directeur de {sid}, rattaché à {circ}", sid)


@_defect(
    "staff_without_structure",
    "PersEducNat",
    "Personnel sans structure de rattachement.",
    lambda ctx: [
        j for j, r in ctx.index["PersEducNat"].items() if r.attrs[PE.director_of][0] is None
    ],
)
def _staff_without_structure(ctx: InjectContext, sid: str) -> Entry | None:
    rec = ctx.take("PersEducNat", sid)
    if rec is None:
        return None
    school = rec.attrs[PE.structures][0]
    rec.attrs[PE.structures] = [None]
    return _entry(
        "PersEducNat",
        sid,
        PE.structures,
        "aucune structure de rattachement",
        school if school in ctx.school_by_jointure else None,
    )


@_defect(
    "impossible_birth_date",
    "Eleve",
    "Date de naissance impossible (pas une date du calendrier, ou dans le futur).",
    _pupils,
)
def _impossible_birth_date(ctx: InjectContext, pid: str) -> Entry | None:
    rec = ctx.take("Eleve", pid)
    if rec is None:
        return None
    year = (rec.attrs[EL.birth_date][0] or "01/01/2000")[-4:]
    if ctx.rng.random() < 0.7:
        bad = (
            ctx.pick(["31/02", "30/02", "31/04", "31/06", "31/09", "31/11", "00/05", "12/13"])
            + f"/{year}"
        )
        detail = f"{bad} n'est pas une date"
    else:
        bad = date_text(ctx.start + dt.timedelta(days=int(ctx.rng.integers(30, 400))))
        detail = f"{bad} est postérieure à l'extraction"
    rec.attrs[EL.birth_date] = [bad]
    return _entry("Eleve", pid, EL.birth_date, detail, _school_of(rec))


@_defect(
    "birth_date_level_mismatch",
    "Eleve",
    "Âge incompatible avec le niveau (hors ULIS), d'au moins deux ans.",
    lambda ctx: [
        j for j, r in ctx.index["Eleve"].items() if r.attrs[EL.class_type][0] != ULIS_CLASS
    ],
)
def _birth_date_level_mismatch(ctx: InjectContext, pid: str) -> Entry | None:
    if not ctx.free("Eleve", pid):
        return None
    rec = ctx.rec("Eleve", pid)
    age = schema.LEVEL_AGE[rec.attrs[EL.level][0] or "CP"]
    shifts = [s for s in (-3, -2, 2, 3) if age - s >= 1]
    shift = ctx.pick(shifts)
    day, month, year = (rec.attrs[EL.birth_date][0] or "").split("/")
    if (day, month) == ("29", "02"):
        day = "28"
    new = f"{day}/{month}/{int(year) + shift}"
    key = (*names_key(rec.attrs[EL.last_name][0] or "", rec.attrs[EL.first_name][0] or ""), new)
    if key in ctx.births:
        return None
    ctx.births.add(key)
    ctx.claim("Eleve", pid)
    rec.attrs[EL.birth_date] = [new]
    return _entry(
        "Eleve",
        pid,
        EL.birth_date,
        f"né le {new}, {age - shift} ans au 31/12 en {rec.attrs[EL.level][0]}",
        _school_of(rec),
    )


@_defect("level_cycle_mismatch", "Eleve", "Cycle incohérent avec le niveau.", _pupils)
def _level_cycle_mismatch(ctx: InjectContext, pid: str) -> Entry | None:
    rec = ctx.take("Eleve", pid)
    if rec is None:
        return None
    level = rec.attrs[EL.level][0] or "CP"
    right = schema.LEVEL_CYCLE[level]
    wrong = ctx.pick([c for c in (1, 2, 3) if c != right])
    form = ctx.school_by_jointure[_school_of(rec)].cycle_form
    rec.attrs[EL.cycle] = [form.format(wrong)]
    return _entry("Eleve", pid, EL.cycle, f"cycle {wrong} pour le niveau {level}", _school_of(rec))


@_defect(
    "pupil_in_two_schools",
    "Eleve",
    "Élève rattaché à deux écoles (deux structures et deux classes).",
    _pupils,
)
def _pupil_in_two_schools(ctx: InjectContext, pid: str) -> Entry | None:
    if len(ctx.model.schools) < 2 or (rec := ctx.take("Eleve", pid)) is None:
        return None
    own = _school_of(rec)
    other = ctx.pick([s for s in ctx.model.schools if s.jointure != own])
    rec.attrs[EL.structures] = [own, other.jointure]
    rec.attrs[EL.classes] = [*rec.attrs[EL.classes], ctx.pick(other.classes).value]
    return _entry(
        "Eleve",
        pid,
        EL.structures,
        f"aussi inscrit à l'école {other.jointure}",
        own,
        [other.jointure],
    )


@_defect(
    "class_of_other_structure",
    "Eleve",
    "Classe d'un élève rattachée à une autre structure que la sienne.",
    _pupils,
)
def _class_of_other_structure(ctx: InjectContext, pid: str) -> Entry | None:
    if len(ctx.model.schools) < 2 or (rec := ctx.take("Eleve", pid)) is None:
        return None
    own = _school_of(rec)
    other = ctx.pick([s.jointure for s in ctx.model.schools if s.jointure != own])
    parts = (rec.attrs[EL.classes][0] or "").split("$")
    rec.attrs[EL.classes] = ["$".join([other, *parts[1:]])]
    return _entry(
        "Eleve", pid, EL.classes, f"classe déclarée dans la structure {other}", own, [other]
    )


@_defect("pupil_without_class", "Eleve", "Élève sans classe.", _pupils)
def _pupil_without_class(ctx: InjectContext, pid: str) -> Entry | None:
    rec = ctx.take("Eleve", pid)
    if rec is None:
        return None
    rec.attrs[EL.classes] = [None]
    return _entry("Eleve", pid, EL.classes, "aucune classe", _school_of(rec))


@_defect(
    "id_mismatch",
    "Eleve",
    "identifier/id différent de la clé de jointure de l'enregistrement.",
    _person_records,
)
def _id_mismatch(ctx: InjectContext, key: tuple[str, str]) -> Entry | None:
    kind, jid = key
    rec = ctx.take(kind, jid)
    if rec is None:
        return None
    rec.id = ctx.ids.one()
    return _entry(
        kind,
        jid,
        "identifier/id",
        f"identifier/id {rec.id}",
        _school_of(rec) if kind == "Eleve" else None,
    )


@_defect(
    "missing_required",
    "Eleve",
    "Attribut obligatoire vide (nom, prénom, INE, date de naissance, niveau…).",
    _person_records,
)
def _missing_required(ctx: InjectContext, key: tuple[str, str]) -> Entry | None:
    kind, jid = key
    if not ctx.free(kind, jid):
        return None
    spec = schema.KINDS[kind]
    rec = ctx.rec(kind, jid)
    fields = [
        f.attr
        for f in spec.fields
        if f.required and f.attr != spec.id_attr and rec.attrs[f.attr][0]
    ]
    if not fields:
        return None
    ctx.claim(kind, jid)
    attr = ctx.pick(fields)
    rec.attrs[attr] = [None]
    return _entry(
        kind, jid, attr, "attribut obligatoire vide", _school_of(rec) if kind == "Eleve" else None
    )


_UNKNOWN_ATTRIBUTES = (
    "ENTPersonSexe",
    "ENTEleveStatutEleve",
    "ENTPersonLogin",
    "ENTEleveMEF",
    "ENTStructureBassin",
)
assert not set(_UNKNOWN_ATTRIBUTES) & schema.KNOWN_ATTRIBUTES


@_defect(
    "unknown_attribute",
    "Eleve",
    "Attribut qu'aucun type AAF ne déclare.",
    lambda ctx: [(k, j) for k in KINDS for j in ctx.index[k]],
)
def _unknown_attribute(ctx: InjectContext, key: tuple[str, str]) -> Entry | None:
    kind, jid = key
    rec = ctx.take(kind, jid)
    if rec is None:
        return None
    attr = ctx.pick(_UNKNOWN_ATTRIBUTES)
    rec.attrs[attr] = [ctx.pick(["F", "M", "X", "1"])]
    return _entry(kind, jid, attr, "attribut inconnu", _school_of(rec) if kind == "Eleve" else None)


def _accented_names(ctx: InjectContext) -> list[tuple[str, str, str]]:
    out = []
    for kind, attrs in (
        ("Eleve", (EL.last_name, EL.first_name)),
        ("PersRelEleve", (PR.last_name, PR.first_name)),
    ):
        for j, r in ctx.index[kind].items():
            for a in attrs:
                v = r.attrs[a][0]
                if v and not v.isascii():
                    out.append((kind, j, a))
    return out


@_defect(
    "mojibake",
    "Eleve",
    "Nom ou prénom encodé deux fois en UTF-8 (« Ã© » au lieu de « é »).",
    _accented_names,
)
def _mojibake(ctx: InjectContext, key: tuple[str, str, str]) -> Entry | None:
    kind, jid, attr = key
    rec = ctx.take(kind, jid)
    if rec is None:
        return None
    value = rec.attrs[attr][0] or ""
    try:
        bad = value.encode("utf-8").decode("cp1252")
    except UnicodeDecodeError:
        bad = value.encode("utf-8").decode("latin-1")
    rec.attrs[attr] = [bad]
    return _entry(
        kind,
        jid,
        attr,
        f"{bad!r} au lieu de {value!r}",
        _school_of(rec) if kind == "Eleve" else None,
    )


def _with(kind: str, attr: str) -> Callable[[InjectContext], list[str]]:
    return lambda ctx: [j for j, r in ctx.index[kind].items() if r.attrs[attr][0]]


@_defect(
    "malformed_mail", "PersRelEleve", "Adresse mail mal formée.", _with("PersRelEleve", PR.mail)
)
def _malformed_mail(ctx: InjectContext, gid: str) -> Entry | None:
    rec = ctx.take("PersRelEleve", gid)
    if rec is None:
        return None
    mail = rec.attrs[PR.mail][0] or ""
    local, domain = mail.split("@")
    bad = (
        f"{local}.{domain}",
        f"{local}@@{domain}",
        f"{local.replace('.', ' ')}@{domain}",
        f"{local}@",
    )[int(ctx.rng.integers(4))]
    rec.attrs[PR.mail] = [bad]
    return _entry("PersRelEleve", gid, PR.mail, f"{bad!r} n'est pas une adresse")


@_defect(
    "non_mobile_phone",
    "PersRelEleve",
    "Le champ téléphone mobile contient un numéro fixe (05).",
    _with("PersRelEleve", PR.mobile_phone),
)
def _non_mobile_phone(ctx: InjectContext, gid: str) -> Entry | None:
    rec = ctx.take("PersRelEleve", gid)
    if rec is None:
        return None
    digits = "05" + f"{int(ctx.rng.integers(0, 10**8)):08d}"
    bad = phone_text(digits, int(ctx.rng.integers(4)))
    rec.attrs[PR.mobile_phone] = [bad]
    return _entry("PersRelEleve", gid, PR.mobile_phone, f"{bad} n'est pas un mobile")


@_defect(
    "malformed_postal_code",
    "PersRelEleve",
    "Code postal mal formé.",
    _with("PersRelEleve", PR.postal_code),
)
def _malformed_postal_code(ctx: InjectContext, gid: str) -> Entry | None:
    rec = ctx.take("PersRelEleve", gid)
    if rec is None:
        return None
    code = rec.attrs[PR.postal_code][0] or ""
    bad = (code[:4], code + "0", code[:2] + "O" + code[3:])[int(ctx.rng.integers(3))]
    rec.attrs[PR.postal_code] = [bad]
    return _entry("PersRelEleve", gid, PR.postal_code, f"code postal {bad!r}")


def inject(
    ctx: InjectContext, seed: int, rates: Mapping[str, float]
) -> tuple[dict[str, list[Entry]], dict[str, dict[str, Any]]]:
    """Inject every registered defect at its rate, in registry order, each from its own
    stream; then apply the removals. Returns the truth entries of every defect (empty when
    not injected) and, for the injected ones, what ``truth.json`` reports of them."""
    injected: dict[str, list[Entry]] = {}
    report: dict[str, dict[str, Any]] = {}
    for i, (name, defect) in enumerate(DEFECTS.items()):
        rate = rates.get(name, 0.0)
        ctx.rng = np.random.default_rng([seed, 2, i])
        injected[name] = defect.inject(ctx, rate) if rate > 0 else []
        if rate > 0:
            report[name] = {
                "kind": defect.kind,
                "rate": rate,
                "injected": len(injected[name]),
                "description": defect.description,
            }
    ctx.finish()
    return injected, report
