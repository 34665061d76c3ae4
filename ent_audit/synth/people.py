"""Person records: pupils, guardians (natural and legal) and staff, for the first Complet
and for the Delta's arrivals and new guardians.

:class:`People` draws from the stream it holds: the model's while the first Complet is built,
then the delta's (``build_delta`` switches it), so the draw order, hence the output, is fixed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ent_audit.aaf import schema
from ent_audit.synth.draws import IdPool, Random
from ent_audit.synth.names import (
    BOYS,
    GIRLS,
    MEN,
    ORDINARY_CLASS,
    STAFF_DOMAIN,
    ULIS_CLASS,
    WOMEN,
    ascii_slug,
    draw_contacts,
    draw_other_names,
    draw_surname,
    names_key,
)
from ent_audit.synth.records import PR, UAI_KEYS, Record, date_text, new_record

if TYPE_CHECKING:
    from ent_audit.synth.model import Family, School, SchoolClass

GUARDIAN_PLANS: tuple[tuple[float, tuple[tuple[str, str], ...]], ...] = (
    # probability, ((gender F/M/X, link code), ...)
    (0.76, (("F", "10"), ("M", "20"))),
    (0.04, (("F", "10"), ("X", "38"))),
    (0.02, (("F", "10"), ("X", "90"))),
    (0.11, (("F", "10"),)),
    (0.04, (("M", "20"),)),
    (0.02, (("X", "50"),)),
    (0.01, (("F", "42"),)),
)
PLAN_CUMULATIVE = list(itertools.accumulate(p for p, _ in GUARDIAN_PLANS))


class People:
    """Draws person records; remembers names and birth dates so that none repeat by chance."""

    def __init__(self, rng: Random, ids: IdPool, ines: IdPool, year: int) -> None:
        self.rng = rng
        """The stream every draw comes from (switched to the delta's by ``build_delta``)."""
        self.ids = ids
        self.ines = ines
        self.year = year
        """First calendar year of the school year."""
        self._births: set[tuple[str, str, str, dt.date]] = set()

    def new_ines(self, n: int) -> list[str]:
        """Unique INE-like ids: 10 digits and a key letter (no public key rule is claimed)."""
        return [f"{v:010d}{UAI_KEYS[v % 23]}" for v in map(int, self.ines.take(n))]

    def guardian(
        self,
        gid: str,
        gender: str,
        code: str,
        surname: str,
        single: bool,
        postal_code: str,
        city: str,
        child_ids: list[str],
        household: dict[str, Any] | None = None,
    ) -> Record:
        """One natural guardian; ``household`` (a co-guardian's contacts) is usually shared."""
        rng = self.rng
        if gender == "X":
            gender = "F" if rng.random() < 0.6 else "M"
        pool = WOMEN if gender == "F" else MEN
        first = rng.pick(pool)
        if code == "20" or (code == "10" and single):
            birth = last = surname
        elif code == "10":
            birth = draw_surname(rng)
            last = surname if rng.random() < 0.5 else birth
        else:
            birth = last = draw_surname(rng)
        contacts = draw_contacts(rng, first, last, postal_code, city)
        if household is not None and rng.random() < 0.9:
            for key in ("address", "postal_code", "city", "home_phone"):
                contacts[key] = household[key]
        return new_record(
            schema.GUARDIAN,
            gid,
            {
                "jointure": gid,
                "birth_name": birth,
                "last_name": last,
                "first_name": first,
                "other_first_names": draw_other_names(rng, pool),
                "title": "Mme" if gender == "F" else "M.",
                "students": child_ids,
                **contacts,
            },
        )

    def family_guardians(
        self, fam: Family, surname: str, postal_code: str, city: str, child_ids: list[str]
    ) -> list[Record]:
        """Draw the guardians of a natural family; fills ``fam.guardians``."""
        plan = GUARDIAN_PLANS[self.rng.weighted(PLAN_CUMULATIVE)][1]
        records: list[Record] = []
        for (gender, code), gid in zip(plan, self.ids.take(len(plan)), strict=True):
            household = None
            if records:
                first = records[0].attrs
                household = {
                    "address": first[PR.address][0],
                    "postal_code": first[PR.postal_code][0],
                    "city": first[PR.city][0],
                    "home_phone": first[PR.home_phone][0],
                }
            records.append(
                self.guardian(
                    gid,
                    gender,
                    code,
                    surname,
                    len(plan) == 1,
                    postal_code,
                    city,
                    child_ids,
                    household,
                )
            )
            fam.guardians.append((gid, code))
        return records

    def legal_guardians(
        self, legal_ids: list[str], families: list[Family], pupil_ids: list[str]
    ) -> list[Record]:
        """The ASE (aide sociale à l'enfance) legal persons: no first name, no civilité."""
        children: dict[str, list[str]] = {j: [] for j in legal_ids}
        for fam in families:
            if fam.legal:
                children[fam.guardians[0][0]].append(pupil_ids[fam.children[0]])
        records = []
        for k, j in enumerate(legal_ids):
            records.append(
                new_record(
                    schema.GUARDIAN,
                    j,
                    {
                        "jointure": j,
                        "last_name": "Conseil départemental de la Haute-Garonne - Aide sociale à "
                        f"l'enfance, Maison des solidarités {k + 1}",
                        "students": children[j],
                        "address": "1 boulevard de la Marquette$$$",
                        "postal_code": "31090",
                        "city": "TOULOUSE CEDEX 9",
                        "country": "FRANCE",
                        "address_sharing": "N",
                        "home_phone": "05 34 33 32 31",
                        "mail": f"ase.mds{k + 1}@cd31.example",
                    },
                )
            )
        return records

    def pupil_record(
        self,
        jointure: str,
        ine: str,
        surname: str,
        school: School,
        cls: SchoolClass,
        level: int,
        ulis: bool,
        guardians: list[tuple[str, str]],
        groups: list[str],
    ) -> Record:
        """One pupil. ``ENTEleveDateEntreeClasses`` is left empty: Annexe 1 does not list it,
        and a clean extraction sends nothing beyond the convention (data minimisation)."""
        rng = self.rng
        r = [rng.random() for _ in range(6)]
        girl = r[0] < 0.49
        age = schema.LEVEL_AGE[schema.LEVELS[level]] + (rng.between(1, 3) if ulis else 0)
        born = dt.date(self.year - age, 1, 1) + dt.timedelta(days=rng.below(365))
        first = rng.pick(GIRLS if girl else BOYS)
        born = self._unique_birth("Eleve", surname, first, born)
        elementary = level >= 4
        return new_record(
            schema.STUDENT,
            jointure,
            {
                "jointure": jointure,
                "birth_name": surname,
                "last_name": surname,
                "first_name": first,
                "other_first_names": draw_other_names(rng, GIRLS if girl else BOYS),
                "title": "Mme" if girl else "M.",
                "ine": ine,
                "birth_date": date_text(born),
                "structures": school.jointure,
                "guardians": [f"{g}${code}" for g, code in guardians],
                "canteen": "O" if r[1] < 0.8 else "N",
                "transport": "O" if r[2] < (0.25 if school.kind == "primaire" else 0.05) else "N",
                "morning_care": "O" if r[3] < 0.3 else "N",
                "evening_care": "O" if r[4] < 0.45 else "N",
                "supervised_study": "O" if elementary and r[5] < 0.1 else "N",
                "level": schema.LEVELS[level],
                "cycle": school.cycle_form.format(schema.LEVEL_CYCLE[schema.LEVELS[level]]),
                "class_type": ULIS_CLASS if ulis else ORDINARY_CLASS,
                "classes": cls.value,
                "groups": groups,
            },
        )

    def _unique_birth(self, kind: str, last: str, first: str, born: dt.date) -> dt.date:
        """``born``, or the next free day of its year: two people of one kind never share
        names (accents and case aside) and birth date by chance, which an audit would rightly
        call a probable duplicate."""
        key = names_key(last, first)
        jan1 = dt.date(born.year, 1, 1)
        while (kind, *key, born) in self._births:
            born = jan1 + dt.timedelta(days=((born - jan1).days + 1) % 365)
        self._births.add((kind, *key, born))
        return born

    def staff_record(
        self,
        jointure: str,
        structure: str,
        functions: list[str],
        teacher: bool,
        director_of: str | None = None,
        specialities: Sequence[str] = (),
        mails: dict[str, int] | None = None,
    ) -> Record:
        rng = self.rng
        woman = rng.random() < (0.82 if teacher else 0.6)
        first = rng.pick(WOMEN if woman else MEN)
        birth = draw_surname(rng)
        last = draw_surname(rng) if woman and rng.random() < 0.4 else birth
        local = f"{ascii_slug(first)}.{ascii_slug(last)}"
        if mails is not None:
            mails[local] = mails.get(local, 0) + 1
            if mails[local] > 1:
                local += str(mails[local])
        born = dt.date(self.year - rng.between(24, 63), 1, 1) + dt.timedelta(days=rng.below(365))
        born = self._unique_birth("PersEducNat", last, first, born)
        return new_record(
            schema.STAFF,
            jointure,
            {
                "jointure": jointure,
                "birth_name": birth,
                "last_name": last,
                "first_name": first,
                "other_first_names": draw_other_names(rng, WOMEN if woman else MEN),
                "title": "Mme" if woman else "M.",
                "birth_date": date_text(born),
                "mail": f"{local}@{STAFF_DOMAIN}",
                "structures": structure,
                "functions": functions,
                "is_teacher": "O" if teacher else "N",
                "director_of": director_of,
                "specialities": list(specialities),
            },
        )
