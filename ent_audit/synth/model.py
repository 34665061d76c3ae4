"""The perimeter model: communes, circonscriptions and schools with their structure records,
classes, families, staff posts, and the first Complet drawn from one random stream.

Beyond the records, :class:`Model` keeps only what the delta and the defects need to change the
perimeter coherently (who is in which school, class and family; who teaches and directs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from ent_audit.aaf import schema
from ent_audit.exceptions import SynthParameterError
from ent_audit.synth.draws import IdPool, Random, split_total
from ent_audit.synth.names import (
    ACADEMY,
    AMPERSAND_EPONYMS,
    COMMUNE_PREFIXES,
    COMMUNE_SUFFIXES,
    COMMUNES,
    CYCLE_FORMS,
    DIRECTIONS,
    EPONYMS,
    GROUPS,
    MINISTRY,
    SECTOR,
    SPECIALITIES,
    STAFF_DOMAIN,
    STREETS,
    STRUCT_CIRC,
    STRUCT_DSDEN,
    STRUCT_SCHOOL,
    TOULOUSE_CODES,
    ascii_slug,
    draw_phone,
    draw_surname,
    phone_text,
)
from ent_audit.synth.people import People
from ent_audit.synth.records import Record, new_record, uai_key

SCHOOL_KINDS = {
    "maternelle": (0, 1, 2, 3),
    "elementaire": (4, 5, 6, 7, 8),
    "primaire": tuple(range(9)),
}
SCHOOL_LABELS = {
    "maternelle": "École maternelle",
    "elementaire": "École élémentaire",
    "primaire": "École primaire",
}
LEVEL_WEIGHT = np.array([0.15, 1, 1, 1, 1, 1, 1, 1, 1])
"""Few TPS: a toute petite section is rare."""

PUPILS_PER_AESH = 400
"""AESH drawn by default: one per 400 pupils (at least one)."""
CIRC_STAFF = 3
"""Fixed staff of each circonscription: the IEN and two conseillers pédagogiques."""
DSDEN_STAFF = 3
"""Fixed staff of the DSDEN: the director and two services."""
EXTRA_SHARES = {"aesh": 0.45, "school_teachers": 0.35, "circonscription": 0.20}
"""How staff asked beyond the default are spread (``staff=``). The default (one teacher per
class, one AESH per 400 pupils) gives an académie of 260,000 pupils about 11,500 staff where
the real one has about 20,000: the missing ones are mostly AESH (then about one per 60
pupils), teachers without a class of their own (décharges, compléments, maîtres
supplémentaires: about one pupil-to-teacher ratio of 19 instead of 24) and circonscription
staff (titulaires remplaçants, psychologues of the RASED)."""
PSYCHOLOGIST_EVERY = 4
"""Among a circonscription's extra staff, one in four is a psychologue, the others remplaçants."""


def n_circonscriptions(n_schools: int) -> int:
    """About 32 schools per circonscription, at least two (one with a single school)."""
    return max(min(2, n_schools), round(n_schools / 32))


def fixed_staff(n_schools: int) -> int:
    """Staff every perimeter has whatever ``staff=`` asks: circonscriptions and DSDEN."""
    return CIRC_STAFF * n_circonscriptions(n_schools) + DSDEN_STAFF


def check_staff(total: int, n_schools: int) -> None:
    """Refuse fewer staff than the fixed ones plus one director per school."""
    fixed = fixed_staff(n_schools)
    if total < n_schools + fixed:
        raise SynthParameterError(
            "staff",
            f"{total} personnels, il en faut au moins {n_schools + fixed} pour {n_schools} "
            f"écoles (un directeur par école, {fixed} en circonscription et à la DSDEN)",
        )


@dataclass(frozen=True)
class StaffPlan:
    """How many staff records of each sort the first Complet holds."""

    teachers: list[int]
    """Teachers of each school (its director among them), by school index."""
    aesh: int
    """AESH, drawn over schools in proportion to pupils."""
    circ_extra: list[int]
    """Extra staff of each circonscription (remplaçants and psychologues), by circonscription."""

    @property
    def total(self) -> int:
        return (
            sum(self.teachers) + self.aesh + sum(self.circ_extra)
            + CIRC_STAFF * len(self.circ_extra) + DSDEN_STAFF
        )  # fmt: skip

    @classmethod
    def default(cls, classes: list[int], n_pupils: int, n_circ: int) -> StaffPlan:
        """The generator's own: one teacher per class, one AESH per 400 pupils."""
        return cls(list(classes), max(1, round(n_pupils / PUPILS_PER_AESH)), [0] * n_circ)

    @classmethod
    def for_total(
        cls, total: int, classes: list[int], pupils: np.ndarray, n_circ: int
    ) -> StaffPlan:
        """Exactly ``total`` staff. Above the default, the extra ones follow
        :data:`EXTRA_SHARES` (school teachers and AESH in proportion to pupils, circonscription
        staff evenly); below it, teachers and AESH shrink together, teachers in proportion to
        classes with at least one (the director) per school."""
        check_staff(total, len(classes))
        base = cls.default(classes, int(pupils.sum()), n_circ)
        fixed = CIRC_STAFF * n_circ + DSDEN_STAFF
        extra = total - base.total
        if extra >= 0:
            aesh = round(EXTRA_SHARES["aesh"] * extra)
            teachers = round(EXTRA_SHARES["school_teachers"] * extra)
            circ = extra - aesh - teachers
            more = split_total(teachers, pupils.astype(float), 0)
            return cls(
                [c + int(m) for c, m in zip(classes, more.tolist(), strict=True)],
                base.aesh + aesh,
                split_total(circ, np.ones(n_circ), 0).tolist(),
            )
        budget = total - fixed
        in_schools = sum(classes) + base.aesh
        aesh = min(base.aesh, round(budget * base.aesh / in_schools), budget - len(classes))
        teachers = split_total(budget - aesh, np.array(classes, dtype=float), 1)
        return cls(teachers.tolist(), aesh, [0] * n_circ)


@dataclass
class SchoolClass:
    """One class of a school: the levels it holds and its written value."""

    class_id: str
    name: str
    levels: tuple[int, ...]
    value: str
    """The ``ENTPersonClasses`` value."""


@dataclass
class School:
    """One school: where it is, how it writes its cycles, its classes, teachers, director."""

    index: int
    jointure: str
    uai: str
    kind: str
    commune: int
    circ: int
    postal_code: str
    cycle_form: str
    classes: list[SchoolClass] = field(default_factory=list)
    teachers: list[str] = field(default_factory=list)
    director: str = ""


@dataclass
class Family:
    """Siblings and the guardians they share; ``legal``: one placed pupil and the ASE."""

    children: list[int]
    """Pupil indices."""
    guardians: list[tuple[str, str]]
    """(guardian jointure, link code)."""
    legal: bool = False


@dataclass
class Model:
    """The first complete extraction and the facts needed to change it coherently."""

    schools: list[School]
    circ_jointures: list[str]
    pupil_school: list[int]
    """School index of each pupil (pupils are indexed as in ``records["Eleve"]``)."""
    pupil_class: list[SchoolClass]
    pupil_level: list[int]
    """Index into ``schema.LEVELS``."""
    families: list[Family]
    records: dict[str, list[Record]]
    """Complet 1, by kind."""
    communes: list[str]


class Builder:
    """Draws the first complete extraction from one random stream; its :class:`People` draws
    the person records from the same stream."""

    def __init__(
        self,
        seed: int,
        n_schools: int,
        n_pupils: int,
        start: dt.date,
        ids: IdPool,
        ines: IdPool,
        n_staff: int | None = None,
    ) -> None:
        self.rng = Random(np.random.default_rng([seed, 0]))
        self.n_schools = n_schools
        self.n_pupils = n_pupils
        self.n_staff = n_staff
        """Total staff asked for, or None for the default (:meth:`StaffPlan.default`)."""
        self.start = start
        self.year = start.year if start.month >= 8 else start.year - 1
        self.year_label = f"{self.year}-{self.year + 1}"
        self.ids = ids
        self.ines = ines
        self.struct_ids = IdPool(np.random.default_rng([seed, 8]), 1000, 50)
        self._dsden: tuple[str, str] = ("", "")
        self._circ_communes: list[str] = []
        self._legal_ids: list[str] = []
        self.people = People(self.rng, ids, ines, self.year)
        """Draws the person records, from this builder's stream."""

    # -- geography ---------------------------------------------------------------------------

    def communes(self) -> tuple[list[str], list[list[str]], np.ndarray]:
        """Commune names, their postal codes, and the number of schools in each."""
        n = max(1, min(self.n_schools, round(self.n_schools * 0.3)))
        names = list(COMMUNES)
        invented = [f"{p}-{s}" for s in COMMUNE_SUFFIXES for p in COMMUNE_PREFIXES]
        self.rng.np.shuffle(invented)
        names += [c for c in invented if c not in names]
        k = 2
        while len(names) < n:
            names += [f"{c} {k}" for c in COMMUNES]
            k += 1
        names = names[:n]
        codes = [list(TOULOUSE_CODES)] + [
            [f"31{int(c):03d}"] for c in (self.rng.np.integers(1, 89, n - 1) * 10).tolist()
        ]
        if n == 1:
            per = np.array([self.n_schools])
        else:
            toulouse = max(1, round(0.18 * self.n_schools))
            weights = 1.0 / np.arange(1, n) ** 0.9
            self.rng.np.shuffle(weights)
            per = np.concatenate([[toulouse], split_total(self.n_schools - toulouse, weights, 1)])
        return names, codes, per

    def schools(
        self,
    ) -> tuple[
        list[School], list[str], list[tuple[str, str]], list[str], list[list[str]], np.ndarray
    ]:
        """Schools (kind, commune, circonscription, UAI, jointure) and their sizes."""
        rng = self.rng
        names, codes, per = self.communes()
        kinds: list[str] = []
        communes: list[int] = []
        raw: list[float] = []
        for c, count in enumerate(per.tolist()):
            if count == 1:
                ks = ["primaire"]
            elif count == 2:
                ks = ["maternelle", "elementaire"] if rng.random() < 0.7 else ["primaire"] * 2
            else:
                ks = list(
                    rng.np.choice(
                        ["maternelle", "elementaire", "primaire"], count, p=[0.4, 0.45, 0.15]
                    )
                )
                ks[0], ks[1] = "maternelle", "elementaire"
            for kind in ks:
                if count == 1:
                    size = rng.between(20, 61) if rng.random() < 0.75 else rng.between(60, 181)
                elif count == 2:
                    size = rng.between(50, 151) if kind == "maternelle" else rng.between(80, 251)
                else:
                    size = {
                        "maternelle": rng.between(80, 221),
                        "elementaire": rng.between(150, 401),
                        "primaire": rng.between(120, 351),
                    }[str(kind)]
                kinds.append(str(kind))
                communes.append(c)
                raw.append(float(size))
        sizes = split_total(self.n_pupils, np.array(raw), min(5, self.n_pupils // self.n_schools))

        # Circonscriptions: contiguous runs of schools ordered by commune, named after the
        # commune most of their schools sit in.
        n_circ = n_circonscriptions(self.n_schools)
        bounds = np.linspace(0, self.n_schools, n_circ + 1).round().astype(int)
        circ_of = np.zeros(self.n_schools, dtype=int)
        labels: list[str] = []
        seen: dict[str, int] = {}
        for i in range(n_circ):
            circ_of[bounds[i] : bounds[i + 1]] = i
            main = names[int(np.bincount(communes[bounds[i] : bounds[i + 1]]).argmax())]
            k = seen.get(main, 0)
            seen[main] = k + 1
            label = main
            if k or main == names[0]:
                label = f"{main} {DIRECTIONS[k % len(DIRECTIONS)]}"
                if k >= len(DIRECTIONS):
                    label += f" {k // len(DIRECTIONS) + 1}"
            labels.append(label)
            self._circ_communes.append(main)

        uai_numbers = rng.np.choice(10_000, self.n_schools + n_circ + 1, replace=False) + 310_000
        uais = [f"{n:07d}{uai_key(f'{n:07d}')}" for n in uai_numbers.tolist()]
        joints = self.struct_ids.take(self.n_schools + n_circ + 1)
        forms = rng.np.integers(0, len(CYCLE_FORMS), self.n_schools).tolist()
        schools = []
        for i in range(self.n_schools):
            c = communes[i]
            schools.append(
                School(
                    index=i,
                    jointure=joints[i],
                    uai=uais[i],
                    kind=kinds[i],
                    commune=c,
                    circ=int(circ_of[i]),
                    postal_code=rng.pick(codes[c]),
                    cycle_form=CYCLE_FORMS[forms[i]],
                )
            )
        circs = list(zip(joints[self.n_schools : -1], uais[self.n_schools : -1], strict=True))
        self._dsden = (joints[-1], uais[-1])
        return schools, labels, circs, names, codes, sizes

    # -- structures --------------------------------------------------------------------------

    def structure_records(
        self,
        schools: list[School],
        labels: list[str],
        circs: list[tuple[str, str]],
        communes: list[str],
        codes: list[list[str]],
    ) -> list[Record]:
        rng = self.rng
        records = []
        for s in schools:
            commune = communes[s.commune]
            # Quirks real names carry, at fixed shares so that every perimeter has them:
            # one school in 20 named after a couple (``&``), one in 10 with a ``$``.
            eponym = rng.pick(AMPERSAND_EPONYMS if s.index % 20 == 1 else EPONYMS)
            label = SCHOOL_LABELS[s.kind]
            r = 0.0 if s.index % 10 == 2 else 0.1 + 0.9 * rng.random()
            if r < 0.1:
                name = f"{label.upper().replace('É', 'E')} PUBLIQUE${eponym}"
            elif r < 0.25 and s.kind == "primaire":
                name = (
                    f"{label} de {commune}"
                    if commune[0] not in "AEIOUÉ"
                    else f"{label} d'{commune}"
                )
            else:
                name = f"{label} {eponym}"
            rpi = None
            if s.kind == "primaire" and rng.random() < 0.08:
                other = rng.pick(communes)
                rpi = f"RPI {commune} / {other}" if other != commune else None
            records.append(
                new_record(
                    schema.STRUCTURE,
                    s.jointure,
                    {
                        "jointure": s.jointure,
                        "uai": s.uai,
                        "name": name,
                        "struct_type": STRUCT_SCHOOL,
                        "ministry": MINISTRY,
                        "sector": SECTOR,
                        "circonscription": labels[s.circ],
                        "commune": commune,
                        "rpi": rpi,
                        "academy": ACADEMY,
                        "address": f"{rng.between(1, 60)} {rng.pick(STREETS)}",
                        "po_box": f"BP {rng.between(1, 90)}" if rng.random() < 0.05 else None,
                        "postal_code": s.postal_code,
                        "city": commune.upper(),
                        "phone": phone_text(draw_phone(rng, "05"), rng.below(4)),
                        "fax": phone_text(draw_phone(rng, "05"), 1) if rng.random() < 0.3 else None,
                        "mail": f"ce.{s.uai.lower()}@{STAFF_DOMAIN}",
                    },
                )
            )
        for (j, uai), label, seat in zip(circs, labels, self._circ_communes, strict=True):
            records.append(
                new_record(
                    schema.STRUCTURE,
                    j,
                    {
                        "jointure": j,
                        "uai": uai,
                        "name": f"Circonscription de {label}",
                        "struct_type": STRUCT_CIRC,
                        "ministry": MINISTRY,
                        "sector": SECTOR,
                        "circonscription": label,
                        "commune": seat,
                        "academy": ACADEMY,
                        "address": "Cité administrative$Bâtiment A",
                        "postal_code": codes[0][0],
                        "city": communes[0].upper(),
                        "phone": phone_text(draw_phone(rng, "05"), 1),
                        "mail": f"ien.{ascii_slug(label).replace('-', '')[:20]}@{STAFF_DOMAIN}",
                    },
                )
            )
        j, uai = self._dsden
        records.append(
            new_record(
                schema.STRUCTURE,
                j,
                {
                    "jointure": j,
                    "uai": uai,
                    "name": "Direction des services départementaux de l'éducation nationale de la "
                    "Haute-Garonne",
                    "struct_type": STRUCT_DSDEN,
                    "ministry": MINISTRY,
                    "sector": SECTOR,
                    "siren": "130000000",
                    "commune": communes[0],
                    "academy": ACADEMY,
                    "address": "75 rue Saint-Roch",
                    "po_box": "BP 7203",
                    "postal_code": "31073",
                    "city": "TOULOUSE CEDEX 7",
                    "phone": "05 67 76 56 00",
                    "mail": f"ce.dsden31@{STAFF_DOMAIN}",
                },
            )
        )
        return records

    # -- pupils and classes ------------------------------------------------------------------

    def classes(
        self, schools: list[School], sizes: np.ndarray
    ) -> tuple[list[int], list[SchoolClass], list[int], list[bool]]:
        """Levels drawn per school, pupils sorted by level and cut into classes."""
        rng = self.rng
        p_school: list[int] = []
        p_class: list[SchoolClass] = []
        p_level: list[int] = []
        for s in schools:
            n = int(sizes[s.index])
            allowed = np.array(SCHOOL_KINDS[s.kind])
            w = LEVEL_WEIGHT[allowed]
            levels = np.sort(rng.np.choice(allowed, n, p=w / w.sum()))
            target = 26 if s.kind == "maternelle" else 24
            n_cls = max(1, round(n / target))
            cuts = np.linspace(0, n, n_cls + 1).round().astype(int)
            base = rng.between(1000, 90_000)
            names: list[str] = []
            chunks = []
            for k in range(n_cls):
                chunk = levels[cuts[k] : cuts[k + 1]]
                uniq = tuple(int(x) for x in np.unique(chunk))
                name = (
                    "Classe unique" if len(uniq) >= 6 else "-".join(schema.LEVELS[x] for x in uniq)
                )
                names.append(name)
                chunks.append((uniq, chunk))
            for k, (uniq, chunk) in enumerate(chunks):
                name = names[k]
                if names.count(name) > 1:
                    name = f"{name} {'ABCDEFGHIJKLMNOP'[names[:k].count(names[k]) % 16]}"
                cid = str(base + k)
                cls = SchoolClass(cid, name, uniq, f"{s.jointure}${self.year_label}$${cid}${name}")
                s.classes.append(cls)
                for lv in chunk.tolist():
                    p_school.append(s.index)
                    p_class.append(cls)
                    p_level.append(lv)
        ulis = [False] * len(p_school)
        # A few ULIS units in larger elementary schools, at least one in the perimeter.
        starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        hosts = [
            s
            for s in schools
            if s.kind != "maternelle" and sizes[s.index] >= 100 and rng.random() < 0.08
        ]
        if not hosts:
            big = [s for s in schools if s.kind != "maternelle"]
            if big:
                hosts = [max(big, key=lambda s: int(sizes[s.index]))]
        for s in hosts:
            members = [i for i in range(starts[s.index], starts[s.index + 1]) if p_level[i] >= 4]
            take = min(len(members), rng.between(6, 13))
            for i in rng.np.choice(members, take, replace=False).tolist() if take else []:
                ulis[i] = True
        return p_school, p_class, p_level, ulis

    def families(self, p_school: list[int], schools: list[School]) -> list[Family]:
        """Siblings of one commune share guardians; a few pupils are placed (ASE)."""
        rng = self.rng
        n = len(p_school)
        placed = set(rng.np.choice(n, max(1, round(0.0025 * n)), replace=False).tolist())
        by_commune: dict[int, list[int]] = {}
        noise = rng.np.random(n)
        order = sorted(
            range(n), key=lambda i: (schools[p_school[i]].commune, p_school[i], noise[i])
        )
        for i in order:
            if i not in placed:
                by_commune.setdefault(schools[p_school[i]].commune, []).append(i)
        families: list[Family] = []
        for members in by_commune.values():
            sizes = rng.np.choice([1, 2, 3], len(members), p=[0.80, 0.17, 0.03]).tolist()
            pos = k = 0
            while pos < len(members):
                families.append(Family(members[pos : pos + sizes[k]], []))
                pos += sizes[k]
                k += 1
        n_legal = max(1, round(len(placed) / 40))
        legal_ids = self.ids.take(n_legal)
        for i, p in enumerate(sorted(placed)):
            families.append(Family([p], [(legal_ids[i % n_legal], "51")], legal=True))
        self._legal_ids = legal_ids
        return families

    # -- staff -------------------------------------------------------------------------------

    def staff_plan(self, schools: list[School], n_circ: int, sizes: np.ndarray) -> StaffPlan:
        classes = [len(s.classes) for s in schools]
        if self.n_staff is None:
            return StaffPlan.default(classes, self.n_pupils, n_circ)
        return StaffPlan.for_total(self.n_staff, classes, sizes, n_circ)

    def staff(
        self, schools: list[School], circs: list[tuple[str, str]], sizes: np.ndarray
    ) -> list[Record]:
        """Teachers of each school, one of them director; AESH; IEN offices; DSDEN. How many
        of each: :meth:`staff_plan` (by default one teacher per class)."""
        rng = self.rng
        plan = self.staff_plan(schools, len(circs), sizes)
        mails: dict[str, int] = {}
        records = []
        for s in schools:
            ids = self.ids.take(plan.teachers[s.index])
            s.teachers = ids
            s.director = rng.pick(ids)
            for j in ids:
                functions = [f"{s.jointure}$ENS$ENSEIGNEMENT$-$-"]
                if j == s.director:
                    functions.append(f"{s.jointure}$DIR$DIRECTION$-$-")
                spec = [rng.pick(SPECIALITIES)] if rng.random() < 0.15 else []
                records.append(
                    self.people.staff_record(
                        j,
                        s.jointure,
                        functions,
                        True,
                        s.jointure if j == s.director else None,
                        spec,
                        mails,
                    )
                )
        weights = sizes / sizes.sum()
        for k in rng.np.choice(len(schools), plan.aesh, p=weights).tolist():
            s = schools[k]
            records.append(
                self.people.staff_record(
                    self.ids.one(),
                    s.jointure,
                    [f"{s.jointure}$EDU$ACCOMPAGNANT ELEVE EN SITUATION DE HANDICAP$-$-"],
                    False,
                    mails=mails,
                )
            )
        for (circ, _uai), extra in zip(circs, plan.circ_extra, strict=True):
            records.append(
                self.people.staff_record(
                    self.ids.one(),
                    circ,
                    [f"{circ}$DIR$INSPECTION DE CIRCONSCRIPTION$-$-"],
                    False,
                    mails=mails,
                )
            )
            for _ in range(CIRC_STAFF - 1):
                records.append(
                    self.people.staff_record(
                        self.ids.one(),
                        circ,
                        [f"{circ}$ENS$CONSEILLER PEDAGOGIQUE$-$-"],
                        True,
                        specialities=["CONSEILLER PEDAGOGIQUE"],
                        mails=mails,
                    )
                )
            for i in range(extra):
                psychologist = i % PSYCHOLOGIST_EVERY == PSYCHOLOGIST_EVERY - 1
                records.append(
                    self.people.staff_record(
                        self.ids.one(),
                        circ,
                        [
                            f"{circ}$-$PSYCHOLOGUE EDUCATION NATIONALE$-$-"
                            if psychologist
                            else f"{circ}$ENS$TITULAIRE REMPLACANT$-$-"
                        ],
                        not psychologist,
                        mails=mails,
                    )
                )
        dsden = self._dsden[0]
        records.append(
            self.people.staff_record(
                self.ids.one(), dsden, [f"{dsden}$DIR$DIRECTION ACADEMIQUE$-$-"], False, mails=mails
            )
        )
        for label in ("CONSEILLER TECHNIQUE NUMERIQUE", "GESTION DES ECOLES"):
            records.append(
                self.people.staff_record(
                    self.ids.one(), dsden, [f"{dsden}$-${label}$-$-"], False, mails=mails
                )
            )
        return records

    def groups(self, schools: list[School]) -> list[list[str]]:
        """``ENTPersonGroupes`` values offered per school (and the ULIS group)."""
        out = []
        for s in schools:
            base = self.rng.between(100, 900)
            k = self.rng.below(3)
            picks = self.rng.np.choice(len(GROUPS), k, replace=False).tolist()
            out.append(
                [
                    f"{s.jointure}${self.year_label}$$G{base + i}${GROUPS[g]}"
                    for i, g in enumerate(picks)
                ]
                + [f"{s.jointure}${self.year_label}$$G{base + 9}$ULIS école"]
            )
        return out

    # -- everything --------------------------------------------------------------------------

    def build(self) -> Model:
        schools, labels, circs, communes, codes, sizes = self.schools()
        structures = self.structure_records(schools, labels, circs, communes, codes)
        p_school, p_class, p_level, p_ulis = self.classes(schools, sizes)
        families = self.families(p_school, schools)
        pupil_ids = self.ids.take(len(p_school))
        ines = self.people.new_ines(len(p_school))
        school_groups = self.groups(schools)

        guardians: list[Record] = []
        pupil_family: list[Family | None] = [None] * len(p_school)
        surnames: list[str] = [""] * len(p_school)
        for fam in families:
            for p in fam.children:
                pupil_family[p] = fam
            if fam.legal:
                surnames[fam.children[0]] = draw_surname(self.rng)
                continue
            surname = draw_surname(self.rng)
            for p in fam.children:
                surnames[p] = surname
            school = schools[p_school[fam.children[0]]]
            guardians += self.people.family_guardians(
                fam,
                surname,
                school.postal_code,
                communes[school.commune].upper(),
                [pupil_ids[p] for p in fam.children],
            )
        guardians += self.people.legal_guardians(self._legal_ids, families, pupil_ids)

        group_draw = self.rng.np.random(len(p_school)).tolist()
        pupils = []
        for i, j in enumerate(pupil_ids):
            s = schools[p_school[i]]
            offered = school_groups[s.index]
            groups = []
            if len(offered) > 1 and group_draw[i] < 0.12:
                groups.append(offered[int(group_draw[i] * 100) % (len(offered) - 1)])
            if p_ulis[i]:
                groups.append(offered[-1])
            fam = pupil_family[i]
            assert fam is not None
            pupils.append(
                self.people.pupil_record(
                    j,
                    ines[i],
                    surnames[i],
                    s,
                    p_class[i],
                    p_level[i],
                    p_ulis[i],
                    fam.guardians,
                    groups,
                )
            )
        staff = self.staff(schools, circs, sizes)
        return Model(
            schools=schools,
            circ_jointures=[c for c, _ in circs],
            pupil_school=p_school,
            pupil_class=p_class,
            pupil_level=p_level,
            families=families,
            records={
                "EtabEducNat": structures,
                "Eleve": pupils,
                "PersRelEleve": guardians,
                "PersEducNat": staff,
            },
            communes=communes,
        )
