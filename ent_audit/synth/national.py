"""Académie-sized activity figures for the national benchmark, drawn directly (no AAF, no events).

Thirty full stores (30 × 260,000 pupils and 10 million events) would take hours to generate
for a benchmark that only reads their small published summaries, so this draws the figures an
académie's activity computation returns, from a seed, with numpy only, in the layout of
:attr:`ent_audit.analyses.activity.ActivityResult.profiles` (``level`` school /
circonscription / departement / department = the whole académie, ``key``, ``profile``,
counts) and ``schools`` (``uai``, ``circonscription``, ``open``, ``stopped``). The publication
(masking, schema) is then built by ``ent_audit.analyses.national.publication``, as for a real
store.

Distributions (per school, lognormal sizes around the Toulouse académie's averages: about 108
pupils, 1.5 guardians per pupil, one teacher per 22 pupils, one director, 0–3 other staff):
85 % of schools open, 3 % of those stopped; activation by profile around 50 % (pupils), 40 %
(guardians), 85 % (teachers), 95 % (directors), 30 % (other staff), varying by school (beta);
active over 30 days about 75 % of the activated, over 7 days half of those; unique visitors
over the year 90 % of the activated; visits per visitor gamma-distributed, about 5 for pupils
and guardians and 25 for staff. A school's people are its own (no one in two schools), so
circonscription and département figures are sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ent_audit.aaf.population import Profile
from ent_audit.synth.records import uai_key

ALL = "*"
PROFILES = (Profile.PUPIL, Profile.GUARDIAN, Profile.TEACHER, Profile.DIRECTOR, Profile.OTHER_STAFF)
ACTIVATION = (0.5, 0.4, 0.85, 0.95, 0.3)
VISITS_PER_VISITOR = (5.0, 5.0, 25.0, 25.0, 25.0)
FIGURES = ("loaded", "activated", "active_7d", "active_30d", "unique_visitors", "visits",
           "connections")  # fmt: skip
SCHOOLS_PER_CIRC = 25


@dataclass(frozen=True)
class AcademieFigures:
    """What an académie's activity computation gives, drawn."""

    academie: str
    profiles: pd.DataFrame
    schools: pd.DataFrame


def academie(index: int, *, schools: int = 2400, seed: int = 0, departements: int = 0):
    """One académie's figures (``index`` makes its name, département codes and draws)."""
    rng = np.random.default_rng([seed, index])
    n_dept = departements or int(rng.integers(2, 9))
    n_circ = max(1, round(schools / SCHOOLS_PER_CIRC))
    circ_of = np.sort(rng.integers(0, n_circ, schools))
    circ_of[:n_circ] = np.arange(min(n_circ, schools))  # every circonscription has a school
    circ_of.sort()
    dept_of_circ = np.minimum(np.arange(n_circ) * n_dept // n_circ, n_dept - 1)
    # Distinct within an académie; beyond 125 académies codes repeat across académies, which
    # the national level keeps apart (it groups by académie and département).
    dept_codes = np.array([f"{(index * 8 + j) % 1000:03d}" for j in range(n_dept)])
    numbers = rng.choice(10_000, schools, replace=False)
    prefix = dept_codes[dept_of_circ[circ_of]]
    bodies = [f"{p}{n:04d}" for p, n in zip(prefix, numbers, strict=True)]
    uai = [b + uai_key(b) for b in bodies]
    circ_names = np.array([f"Circonscription {index:03d}-{c:03d}" for c in range(n_circ)])

    pupils = np.maximum(10, rng.lognormal(np.log(95), 0.5, schools)).astype(np.int64)
    loaded = np.column_stack(
        [
            pupils,
            rng.binomial(pupils * 2, 0.75),
            np.maximum(1, np.round(pupils / 22 + rng.normal(0, 0.7, schools))).astype(np.int64),
            np.ones(schools, np.int64),
            rng.integers(0, 4, schools),
        ]
    )
    open_ = rng.random(schools) < 0.85
    stopped = open_ & (rng.random(schools) < 0.03)
    rate = np.column_stack([rng.beta(a * 8, (1 - a) * 8, schools) for a in ACTIVATION])
    activated = rng.binomial(loaded, rate) * open_[:, None]
    activated[:, 3] = np.where(open_, np.maximum(activated[:, 3], 1), 0)  # the director opens
    active_30d = rng.binomial(activated, 0.75) * ~stopped[:, None]
    active_7d = rng.binomial(active_30d, 0.5)
    visitors = np.maximum(rng.binomial(activated, 0.9), active_30d)
    per = np.array(VISITS_PER_VISITOR)
    visits = np.round(visitors * rng.gamma(4.0, per / 4.0, (schools, len(PROFILES)))).astype(
        np.int64
    )
    visits = np.maximum(visits, visitors)
    connections = visits

    sch_rows = []
    for j, prof in enumerate(PROFILES):
        sch_rows.append(
            pd.DataFrame(
                {
                    "key": uai,
                    "circ": circ_names[circ_of],
                    "profile": str(prof),
                    "loaded": loaded[:, j],
                    "activated": activated[:, j],
                    "active_7d": active_7d[:, j],
                    "active_30d": active_30d[:, j],
                    "unique_visitors": visitors[:, j],
                    "visits": visits[:, j],
                    "connections": connections[:, j],
                }
            )
        )
    per_school = pd.concat(sch_rows, ignore_index=True)
    fig = list(FIGURES)
    every = per_school.groupby(["key", "circ"], as_index=False)[fig].sum().assign(profile=ALL)
    school_level = pd.concat([per_school, every], ignore_index=True)
    circ_level = school_level.groupby(["circ", "profile"], as_index=False)[fig].sum()
    school_level["dep"] = school_level["key"].str[:3]
    dep_level = school_level.groupby(["dep", "profile"], as_index=False)[fig].sum()
    dept_level = school_level.groupby("profile", as_index=False)[fig].sum()
    profiles = pd.concat(
        [
            school_level.drop(columns=["circ", "dep"]).assign(level="school"),
            circ_level.rename(columns={"circ": "key"}).assign(level="circonscription"),
            dep_level.rename(columns={"dep": "key"}).assign(level="departement"),
            dept_level.assign(level="department", key=ALL),
        ],
        ignore_index=True,
    )
    schools_df = pd.DataFrame(
        {"uai": uai, "circonscription": circ_names[circ_of], "open": open_, "stopped": stopped}
    )
    return AcademieFigures(f"A{index:03d}", profiles, schools_df)
