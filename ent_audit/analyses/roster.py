"""One school's people, classes, data-quality findings and activity: what the roster explorer
shows, as plain functions over the snapshot frames.

The coordinator's daily question is about one school: who is enrolled, in which class, with
which guardians, who directs it, what is wrong in its data, is its ENT used. The widgets
(:mod:`ent_audit.widgets`) only wire these functions, so every figure they show is testable
without a browser.

Who belongs to a school comes from :func:`ent_audit.aaf.population.memberships` (the one
definition). :func:`prepare` computes it, and the quality audit, once per explorer; switching
school (:func:`school`) then only cuts the school's rows out of what is held.

**Held lean.** The explorer's process keeps the state open while the coordinator browses:
not as the snapshot's pandas frames (an académie's 60 MB of Parquet decode to 270 MB, plus
what is derived from them) but as :class:`~ent_audit.store.tables.StateTables`, the columns
:func:`needs` lists with their strings as dictionary codes, and the school memberships with
categorical codes, grouped by UAI. A school's view cuts its rows out of those (a few hundred
people) and runs the same functions over that small snapshot. Memberships are computed by
groups of :data:`STRUCTURES_PER_PASS` structures, each on the part of the state its people
own: who belongs to a structure depends only on that part, and the whole académie's
memberships as pandas strings (a million rows, 11 columns) are never built.

**Masked by default.** Unless ``show_personal_data=True`` people appear only as the store's
keyed pseudonyms: no name, birth date, INE, mail or phone, and the audit's findings go through
:func:`ent_audit.quality.published_findings` (ids pseudonymised, personal values masked).
Unmasked views are for the coordinator at work; the explorer writes each one to the store's
access journal (:mod:`ent_audit.store.access`).

**Activity** comes from the ENT provider, not from AAF, read as the pilot console reads it
(:mod:`ent_audit.analyses.activity`): the provider's daily CSV (:func:`read_daily`) or the
events the store imported (:func:`store_activity`), as a per-school daily frame of
:data:`ACTIVITY_COLUMNS`; without one, the activity tab is an empty frame with
:data:`NO_ACTIVITY_NOTE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit import memory
from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, arrow_strings, isin
from ent_audit.aaf.population import NEEDS, Profile, at_schools, live, memberships, schools
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.analyses import quality
from ent_audit.analyses.activity import indicators as activity_indicators
from ent_audit.analyses.activity import inputs as activity_inputs
from ent_audit.exceptions import ParameterError
from ent_audit.privacy import Pseudonymiser
from ent_audit.store import events
from ent_audit.store.store import Store, columns
from ent_audit.store.tables import StateTables

OWNER = "explorateur"
NOT_GIVEN = "(non renseignée)"
"""What a school with no circonscription or commune is filed under in the selectors."""

ACTIVITY_COLUMNS = ("uai", "date", "profile", "connections", "unique_visitors")
"""The per-school activity frame the explorer accepts: one row per school, day and profile,
as the provider's daily CSV has it (``UAI;Date;Profil;Connexions;Visiteurs uniques``).
``ent_audit.analyses.activity`` produces it; an optional ``accounts_activated`` column tells
whether the ENT is open (a teacher or director account activated)."""
NO_ACTIVITY_NOTE = (
    "Aucune donnée d'activité fournie : l'activité vient du prestataire de l'ENT (export "
    "quotidien par école), pas de l'AAF. Ouvrez l'explorateur avec le paramètre « activity » "
    "pour la voir ici."
)
NO_CLASS = "(sans classe)"
"""The classes tab's last row: the school's pupils with no class in it."""
SPARK = "▁▂▃▄▅▆▇█"

PROFILE_LABELS = {
    str(Profile.DIRECTOR): "directeur",
    str(Profile.TEACHER): "enseignant",
    str(Profile.OTHER_STAFF): "autre personnel",
}

LABELS = {
    "pupil": "élève",
    "staff": "personnel",
    "jointure": "jointure",
    "last_name": "nom",
    "first_name": "prénom",
    "birth_date": "date de naissance",
    "ine": "INE",
    "mail": "mail",
    "level": "niveau",
    "cycle": "cycle",
    "class_id": "id classe",
    "class_name": "classe",
    "classes": "classes",
    "levels": "niveaux",
    "pupils": "élèves",
    "guardian_count": "responsables",
    "guardians": "responsables (lien)",
    "profile": "profil",
    "teacher": "enseignant",
    "director": "directeur",
    "functions": "fonctions",
    "rule": "règle",
    "title": "constat",
    "severity": "gravité",
    "kind": "fichier",
    "person": "personne",
    "attribute": "attribut",
    "value": "valeur",
    "source": "source",
    "date": "date",
    "connections": "connexions",
    "unique_visitors": "visiteurs uniques",
    "accounts_activated": "comptes activés",
    "indicator": "indicateur",
}
"""French column labels: what the tabs and the CSV exports show."""


class Tab(StrEnum):
    """The explorer's tabs, in order; each is one frame of :class:`SchoolView`."""

    SUMMARY = "summary"
    CLASSES = "classes"
    PUPILS = "pupils"
    STAFF = "staff"
    FINDINGS = "findings"
    ACTIVITY = "activity"


TAB_TITLES = {
    Tab.SUMMARY: "Résumé",
    Tab.CLASSES: "Classes",
    Tab.PUPILS: "Élèves",
    Tab.STAFF: "Personnels",
    Tab.FINDINGS: "Qualité",
    Tab.ACTIVITY: "Activité",
}

PERSONAL_SHOWN = {
    Tab.PUPILS: "élèves : nom, prénom, date de naissance, INE ; responsables : nom, prénom",
    Tab.STAFF: "personnels : nom, prénom, mail",
    Tab.FINDINGS: "constats qualité : jointures et valeurs en clair",
}
"""What an unmasked view shows beyond the masked one: the access journal's ``shown``."""


# -- selectors --------------------------------------------------------------------------------


def readable_name(names: pd.Series) -> pd.Series:
    """AAF school names are ``$``-separated (``ECOLE ELEMENTAIRE PUBLIQUE$Léo Lagrange``):
    fields joined by `` – ``, empty fields and stray spaces dropped."""
    text = names.astype(STRING).fillna("")
    text = text.str.replace(r"\s*\$[\s$]*", " – ", regex=True).str.strip()
    text = text.str.replace(r"^–\s*|\s*–$", "", regex=True).str.strip()
    return text.str.replace(r"\s{2,}", " ", regex=True)


def _fold(text: pd.Series) -> pd.Series:
    """Lower case without accents: what a search compares."""
    return (
        text.astype(STRING)
        .fillna("")
        .str.normalize("NFKD")
        .str.replace(r"[\u0300-\u036f]", "", regex=True)
        .str.casefold()
    )


def choices(snapshot: Snapshot) -> pd.DataFrame:
    """The schools to choose from, one row per UAI, sorted by circonscription, commune and
    name: ``uai``, ``name`` (readable), ``circonscription``, ``commune``, ``label``
    (``UAI – name``, what the selector shows) and ``key`` (folded label, what a search reads).
    A school without circonscription or commune is filed under :data:`NOT_GIVEN`."""
    s = schools(snapshot)
    s = s[s["uai"].notna().to_numpy()].drop_duplicates("uai")
    out = pd.DataFrame(
        {
            "uai": s["uai"].astype(STRING),
            "name": readable_name(s["name"]),
            "circonscription": s["circonscription"].astype(STRING).fillna(NOT_GIVEN),
            "commune": s["commune"].astype(STRING).fillna(NOT_GIVEN),
        }
    )
    out["label"] = out["uai"] + " – " + out["name"]
    out["key"] = _fold(out["label"])
    return out.sort_values(["circonscription", "commune", "name", "uai"]).reset_index(drop=True)


def circonscriptions(options: pd.DataFrame) -> list[str]:
    return sorted(options["circonscription"].unique().tolist())


def communes(options: pd.DataFrame, circonscription: str | None = None) -> list[str]:
    """Communes of a circonscription (every commune when ``None``); a large town spans
    several circonscriptions."""
    o = options
    if circonscription is not None:
        o = options[(options["circonscription"] == circonscription).to_numpy(dtype=bool)]
    return sorted(o["commune"].unique().tolist())


def find(
    options: pd.DataFrame,
    circonscription: str | None = None,
    commune: str | None = None,
    search: str = "",
) -> pd.DataFrame:
    """The schools of a circonscription and commune (either may be ``None``: any) whose UAI
    or name contains every word of ``search`` (case and accents ignored)."""
    keep = np.ones(len(options), dtype=bool)
    if circonscription is not None:
        keep &= (options["circonscription"] == circonscription).to_numpy(dtype=bool)
    if commune is not None:
        keep &= (options["commune"] == commune).to_numpy(dtype=bool)
    words = _fold(pd.Series([search or ""])).iloc[0].split()
    for word in words:
        keep &= options["key"].str.contains(word, regex=False).to_numpy(dtype=bool)
    return options[keep]


# -- the explorer's data, prepared once -------------------------------------------------------


VIEWS: dict[str, tuple[str, ...]] = {
    "structures": ("name",),
    "students": ("level", "cycle"),
    "student_class": ("class_id", "class_name"),
    "student_guardian": ("seen_from", "link_code", "link_label"),
    "staff_function": ("label",),
}
"""What the school views read beyond :data:`ent_audit.aaf.population.NEEDS`, masked."""
PERSONAL = {
    "students": ("last_name", "first_name", "birth_date", "ine"),
    "guardians": ("last_name", "first_name"),
    "staff": ("last_name", "first_name", "mail"),
}
"""What an unmasked view reads on top (:data:`PERSONAL_SHOWN`): never read when masked."""
STRUCTURES_PER_PASS = 150
"""Structures whose memberships are computed together (:func:`school_members`): the
transient of one pass is that share of the académie's; fewer passes cost pandas' per-call
overhead only."""
MEMBER_COLUMNS = ("kind", "jointure", "structure", "uai", "profile", "teacher")
"""What the views read of a membership (``via``, ``primary`` and the school's place are not)."""


def needs(show_personal_data: bool = False) -> dict[str, tuple[str, ...] | None]:
    """The Parquet columns the explorer reads, per frame (``Store.latest_tables(needs())``)."""
    return columns(NEEDS, VIEWS, PERSONAL if show_personal_data else {})


@dataclass(frozen=True)
class Roster:
    """What every school view reads, computed once per explorer (memberships, the audit),
    held lean (see the module)."""

    state: StateTables
    """The columns of :func:`needs`, dictionary-encoded; a school's rows are cut from it."""
    members: pd.DataFrame
    """School memberships (:func:`ent_audit.aaf.population.memberships`, schools only), the
    :data:`MEMBER_COLUMNS`, repeated strings as categoricals."""
    options: pd.DataFrame
    """:func:`choices`."""
    findings: pd.DataFrame
    """The audit's findings, published (pseudonyms, masked values) unless unmasked."""
    scores: pd.DataFrame
    """The audit's per-school summary (records, findings by severity, score)."""
    activity: pd.DataFrame | None
    pseudonymiser: Pseudonymiser = field(repr=False)
    show_personal_data: bool = False
    at: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Positions of each UAI's rows in :attr:`members`."""

    def school_members(self, uai: str) -> pd.DataFrame:
        """The school's memberships, as :func:`~ent_audit.aaf.population.memberships` types
        them (strings, booleans)."""
        rows = self.members.iloc[self.at.get(uai, np.zeros(0, dtype=np.int64))]
        return rows.astype({c: STRING for c in MEMBER_COLUMNS if c != "teacher"})


def prepare(
    snapshot: Snapshot | StateTables,
    pseudonymiser: Pseudonymiser,
    *,
    show_personal_data: bool = False,
    audit: quality.AuditResult | None = None,
    activity: pd.DataFrame | None = None,
) -> Roster:
    """Memberships, school choices and the quality audit (run here unless given), once.

    ``snapshot``: the whole state (the audit checks every attribute), or, when ``audit`` is
    given, only what the views read (:meth:`Store.latest_tables` of :func:`needs`, or a
    snapshot with at least those columns). With the audit run here the memberships are
    computed once, on the snapshot, and given to it."""
    if isinstance(snapshot, StateTables):
        if audit is None:
            raise ParameterError(
                OWNER, "audit", "l'audit qualité lit l'état entier : donnez le snapshot"
            )
        state = snapshot
        members = school_members(state)
    elif audit is None:
        everyone = memberships(snapshot)
        audit = quality.audit(snapshot, members=everyone)
        members = _compact(everyone, _member_dtypes(snapshot.structures))
        del everyone  # before the lean copy is made: the peak stays the audit's
        state = StateTables.of(snapshot, _held(snapshot, show_personal_data))
    else:
        state = StateTables.of(snapshot, _held(snapshot, show_personal_data))
        members = school_members(state)
    findings = (
        audit.findings.copy()
        if show_personal_data
        else quality.published_findings(audit, pseudonymiser)
    )
    return Roster(
        state=state,
        members=members,
        options=choices(state.snapshot({"structures": None})),
        findings=findings,
        scores=audit.schools,
        activity=activity_frame(activity),
        pseudonymiser=pseudonymiser,
        show_personal_data=show_personal_data,
        at=members.groupby("uai", observed=True, sort=False).indices,
    )


def load(
    store: Store,
    pseudonymiser: Pseudonymiser,
    *,
    show_personal_data: bool = False,
    audit: quality.AuditResult | None = None,
    activity: pd.DataFrame | None = None,
) -> Roster:
    """The explorer's roster from a store: the quality audit run here unless given, over the
    state read column by column as its checks ask (:func:`quality.audit_store`), then only
    the columns of :func:`needs`, held lean; both of one state (held while they read)."""
    with store.reading():
        if audit is None:
            audit = quality.audit_store(store)
            # What the audit freed goes back before the tables are read: its small blocks
            # otherwise stay in the heap under them (an académie: +100 MB resident, live 10).
            memory.trim_heap()
        source = store.latest_tables(needs(show_personal_data))
    return prepare(
        source,
        pseudonymiser,
        show_personal_data=show_personal_data,
        audit=audit,
        activity=activity,
    )


def _held(snapshot: Snapshot, show_personal_data: bool) -> dict[str, tuple[str, ...] | None]:
    """:func:`needs`, limited to the frames and columns ``snapshot`` has (a lean snapshot
    read with them, or the whole state)."""
    frames = snapshot.frames()
    out = {}
    for name, cols in needs(show_personal_data).items():
        if name in frames:
            have = frames[name].columns
            out[name] = tuple(c for c in (cols or have) if c in have)
    return out


def _member_dtypes(structures: pd.DataFrame | pa.Table) -> dict[str, pd.CategoricalDtype]:
    """One categorical dtype per repeated column of the memberships, whatever the pass
    (their codes then concatenate): the state's structures, kinds and profiles."""

    def distinct(column: str) -> list[str]:
        return pc.unique(pc.drop_null(arrow_strings(structures[column]))).to_pylist()

    values = {
        "kind": [k.name for k in schema.KINDS.values()],
        "profile": [str(p) for p in Profile],
        "structure": distinct("jointure"),
        "uai": distinct("uai"),
    }
    return {c: pd.CategoricalDtype(sorted(set(v))) for c, v in values.items()}


def _compact(members: pd.DataFrame, dtypes: Mapping[str, pd.CategoricalDtype]) -> pd.DataFrame:
    """School memberships, :data:`MEMBER_COLUMNS` only, repeated strings as categoricals
    (a value outside its categories would silently become missing: refused)."""
    m = at_schools(members)
    out = {}
    for c in MEMBER_COLUMNS:
        if c not in dtypes:
            out[c] = m[c].to_numpy() if c == "teacher" else m[c].array
            continue
        values = arrow_strings(m[c])
        codes = pc.index_in(values, value_set=pa.array(dtypes[c].categories, pa.string()))
        if codes.null_count != values.null_count:
            raise ValueError(f"memberships: a {c} outside the state's structures")
        codes = codes.fill_null(-1).to_numpy(zero_copy_only=False)
        out[c] = pd.Categorical.from_codes(codes, dtype=dtypes[c])
    return pd.DataFrame(out)


def school_members(state: StateTables, per_pass: int = STRUCTURES_PER_PASS) -> pd.DataFrame:
    """Every school membership (:func:`_compact`), computed by passes of ``per_pass``
    structures, each on the part of the state its people own: the structures' links, their
    pupils' and staff's records, those pupils' guardian links and guardians. Who belongs to a
    structure, with which profile, depends on nothing else (``primary``, which does, is not
    kept)."""
    dtypes = _member_dtypes(state.tables["structures"])
    ids = pc.unique(pc.drop_null(arrow_strings(state.tables["structures"]["jointure"])))
    empty = {c: pd.Series([], dtype=dtypes.get(c, STRING)) for c in MEMBER_COLUMNS}
    parts = [pd.DataFrame({**empty, "teacher": pd.Series([], dtype=bool)})]
    for start in range(0, len(ids), per_pass):
        part = _structures_part(state, ids[start : start + per_pass])
        parts.append(_compact(memberships(part), dtypes))
    return pd.concat(parts, ignore_index=True)


def _structures_part(state: StateTables, structures: pa.Array) -> Snapshot:
    """The part of the state the memberships in ``structures`` read (see
    :func:`school_members`)."""
    links = {
        name: state.frame(name, ("structure", structures))
        for name in ("person_structure", "student_class", "staff_director", "staff_function")
    }
    ps = links["person_structure"]
    pupils = pd.concat(
        [ps.loc[(ps["kind"] == "student").to_numpy(dtype=bool), "person"],
         links["student_class"]["student"]]
    ).dropna()  # fmt: skip
    staff = pd.concat(
        [ps.loc[(ps["kind"] == "staff").to_numpy(dtype=bool), "person"],
         links["staff_director"]["staff"], links["staff_function"]["staff"]]
    ).dropna()  # fmt: skip
    sg = state.frame("student_guardian", ("student", pupils))
    part = state.snapshot(
        {
            "structures": ("jointure", structures),
            "students": ("jointure", pupils),
            "staff": ("jointure", staff),
            "guardians": ("jointure", sg["guardian"].dropna()),
        }
    )
    part.links.update(links, student_guardian=sg)
    return part


@dataclass(frozen=True)
class SchoolView:
    """Everything the explorer shows for one school: one frame per tab, and notes."""

    uai: str
    name: str
    circonscription: str
    commune: str
    summary: pd.DataFrame
    levels: pd.DataFrame
    classes: pd.DataFrame
    pupils: pd.DataFrame
    staff: pd.DataFrame
    findings: pd.DataFrame
    activity: pd.DataFrame
    sparkline: str
    ent_open: bool | None
    notes: tuple[str, ...] = ()
    personal: bool = False

    def frames(self) -> dict[str, pd.DataFrame]:
        """The tab frames by name (``classes``, ``pupils``, ``staff``, ``findings``,
        ``activity``), as ``RosterExplorer.frames`` gives them."""
        return {t.value: getattr(self, t.value) for t in Tab if t is not Tab.SUMMARY}

    def to_dict(self) -> dict:
        return {
            "uai": self.uai,
            "name": self.name,
            "circonscription": self.circonscription,
            "commune": self.commune,
            "ent_open": self.ent_open,
            "sparkline": self.sparkline,
            "personal": self.personal,
            "notes": list(self.notes),
            "summary": dict(zip(self.summary["indicator"], self.summary["value"], strict=True)),
            "rows": {k: len(v) for k, v in self.frames().items()},
        }


def school(roster: Roster, uai: str) -> SchoolView:
    """One school's view (``uai`` must be one of :func:`choices`)."""
    where = roster.options[roster.options["uai"] == uai]
    if where.empty:
        raise ParameterError(OWNER, "uai", f"{uai!r} n'est pas une école de l'extraction")
    row = where.iloc[0]
    members = roster.school_members(uai)
    part = _school_part(roster.state, members)
    mask = None if roster.show_personal_data else roster.pseudonymiser
    p = pupils(part, members, mask)
    s = staff(part, members, mask)
    c = classes(part, members)
    f = school_findings(roster.findings, uai)
    a = activity(roster.activity, uai)
    ent_open = is_open(a)
    spark = sparkline(weekly(a)["connections"]) if len(a) else ""
    guardians = members.loc[members["profile"] == str(Profile.GUARDIAN), "jointure"].nunique()
    score = roster.scores.loc[roster.scores["uai"] == uai, "score"]
    summ = summary(
        uai=uai,
        name=row["name"],
        circonscription=row["circonscription"],
        commune=row["commune"],
        pupils=p,
        classes=c,
        staff=s,
        guardians=int(guardians),
        findings=f,
        score=float(score.iloc[0]) if len(score) else None,
        ent_open=ent_open,
        spark=spark,
    )
    return SchoolView(
        uai=uai,
        name=row["name"],
        circonscription=row["circonscription"],
        commune=row["commune"],
        summary=summ,
        levels=levels(p),
        classes=c,
        pupils=p,
        staff=s,
        findings=f,
        activity=a,
        sparkline=spark,
        ent_open=ent_open,
        notes=() if roster.activity is not None else (NO_ACTIVITY_NOTE,),
        personal=roster.show_personal_data,
    )


def _school_part(state: StateTables, members: pd.DataFrame) -> Snapshot:
    """The rows the views of one school read (``members``: its memberships): its pupils'
    and staff's records, its structures' classes and functions, its pupils' guardian links
    and those guardians. The views filter these as they would filter the whole state."""
    structures = _school_structures(members)
    pupil_ids = _ids(members, [str(Profile.PUPIL)])
    sg = state.frame("student_guardian", ("student", pupil_ids))
    staff_ids = members.loc[(members["kind"] == schema.STAFF.name).to_numpy(dtype=bool)]
    part = state.snapshot(
        {
            "students": ("jointure", pupil_ids),
            "staff": ("jointure", staff_ids["jointure"]),
            "guardians": ("jointure", sg["guardian"].dropna()),
            "student_class": ("structure", structures),
            "staff_function": ("structure", structures),
        }
    )
    part.links.update(student_guardian=sg)
    return part


# -- per-school frames ------------------------------------------------------------------------


def _ids(members: pd.DataFrame, profiles: Iterable[str]) -> pd.Series:
    m = members[members["profile"].isin(list(profiles)).to_numpy(dtype=bool)]
    return m["jointure"].drop_duplicates()


def _school_structures(members: pd.DataFrame) -> list[str]:
    return members["structure"].dropna().unique().tolist()


def _level_order(levels: pd.Series) -> pd.Series:
    return levels.map({lvl: i for i, lvl in enumerate(schema.LEVELS)}).astype("float64")


def _joined(df: pd.DataFrame, by: str, column: str, name: str) -> pd.Series:
    """``column``'s distinct values per ``by``, joined by ``, ``, in the frame's order."""
    d = df[[by, column]].dropna().drop_duplicates()
    return d.groupby(by, sort=False)[column].agg(", ".join).rename(name)


def pupils(snapshot: Snapshot, members: pd.DataFrame, mask: Pseudonymiser | None) -> pd.DataFrame:
    """The school's pupils (``members`` of one school), one row each: ``pupil`` (pseudonym,
    or the jointure when unmasked), ``level``, ``cycle``, ``class_name`` (its classes in this
    school), ``guardian_count`` and ``guardians`` (``id (lien)``, joined by ``; ``). Unmasked
    (``mask=None``) also ``last_name``, ``first_name``, ``birth_date``, ``ine``, and the
    guardians by name."""
    ids = _ids(members, [str(Profile.PUPIL)])
    students = live(snapshot.students)
    st = students[isin(students["jointure"], ids)].drop_duplicates("jointure")
    structures = _school_structures(members)
    sc = snapshot.links["student_class"]
    sc = sc[isin(sc["structure"], structures) & isin(sc["student"], ids)]
    sc = sc.sort_values(["student", "class_name", "class_id"], kind="stable")
    per_class = _joined(sc, "student", "class_name", "class_name")

    sg = snapshot.links["student_guardian"]
    sg = sg[isin(sg["student"], ids)].dropna(subset=["guardian"])
    # A link stated by the pupil's record wins over the guardian's side (it has the code).
    sg = sg.sort_values("seen_from", key=lambda s: s.ne("student"), kind="stable")
    sg = sg.drop_duplicates(["student", "guardian"])
    guardians = live(snapshot.guardians).drop_duplicates("jointure").set_index("jointure")
    if mask is None:
        who = (
            sg["guardian"].map(guardians["last_name"]).fillna("?").str.upper()
            + " "
            + sg["guardian"].map(guardians["first_name"]).fillna("")
        ).str.strip()
    else:
        who = mask.ids(schema.GUARDIAN.name, sg["guardian"])
    link = sg["link_label"].fillna("lien inconnu")
    sg = sg.assign(label=(who + " (" + link + ")").astype(STRING))
    sg = sg.sort_values(["student", "link_code", "guardian"], kind="stable")
    per_pupil = sg.groupby("student", sort=False).agg(
        guardian_count=("guardian", "nunique"), guardians=("label", "; ".join)
    )
    out = pd.DataFrame(
        {
            "pupil": st["jointure"].astype(STRING)
            if mask is None
            else mask.ids(schema.STUDENT.name, st["jointure"]),
            "level": st["level"].astype(STRING),
            "cycle": st["cycle"],
            "class_name": st["jointure"].map(per_class).astype(STRING),
            "guardian_count": st["jointure"].map(per_pupil["guardian_count"]).fillna(0),
            "guardians": st["jointure"].map(per_pupil["guardians"]).astype(STRING),
        }
    )
    out["guardian_count"] = out["guardian_count"].astype("int64")
    if mask is None:
        for i, col in enumerate(("last_name", "first_name", "birth_date", "ine"), start=1):
            out.insert(i, col, st[col])
    out["_rank"] = _level_order(out["level"]).to_numpy()
    sort = ["_rank", "class_name", *(["last_name", "first_name"] if mask is None else []), "pupil"]
    return (
        out.sort_values(sort, kind="stable", na_position="last")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def classes(snapshot: Snapshot, members: pd.DataFrame) -> pd.DataFrame:
    """The school's classes: ``class_id``, ``class_name``, ``levels`` of their pupils (youngest
    first), ``pupils``; a last row ``(sans classe)`` counts the school's pupils with no class
    in it. No personal data."""
    ids = _ids(members, [str(Profile.PUPIL)])
    structures = _school_structures(members)
    sc = snapshot.links["student_class"]
    sc = sc[isin(sc["structure"], structures) & isin(sc["student"], ids)]
    sc = sc.drop_duplicates(["student", "class_id", "class_name"])
    students = live(snapshot.students).drop_duplicates("jointure").set_index("jointure")
    sc = sc.assign(level=sc["student"].map(students["level"]))
    sc = sc.assign(_rank=_level_order(sc["level"]))
    keys = ["class_id", "class_name"]
    counts = sc.groupby(keys, dropna=False, sort=False)["student"].nunique().rename("pupils")
    by_level = sc.sort_values("_rank", kind="stable")
    lv = by_level.dropna(subset=["level"]).drop_duplicates([*keys, "level"])
    lv = lv.groupby(keys, dropna=False, sort=False)["level"].agg(", ".join).rename("levels")
    first = sc.groupby(keys, dropna=False, sort=False)["_rank"].min().rename("_rank")
    out = pd.concat([counts, lv, first], axis=1).reset_index()
    out = out.sort_values(["_rank", "class_name"], kind="stable", na_position="last")
    out = out[["class_id", "class_name", "levels", "pupils"]]
    without = int((~isin(ids, sc["student"].unique())).sum())
    if without:
        extra = pd.DataFrame(
            {
                "class_id": [None],
                "class_name": [NO_CLASS],
                "levels": [None],
                "pupils": [without],
            }
        )
        out = pd.concat([out, extra], ignore_index=True)
    for col in ("class_id", "class_name", "levels"):
        out[col] = out[col].astype(STRING)
    out["pupils"] = out["pupils"].astype("int64")
    return out.reset_index(drop=True)


def levels(pupil_frame: pd.DataFrame) -> pd.DataFrame:
    """Pupils per level, youngest first (a missing level counted as ``(non renseigné)``)."""
    lv = pupil_frame["level"].astype(object).where(pupil_frame["level"].notna(), "(non renseigné)")
    counts = lv.value_counts()
    order = [x for x in schema.LEVELS if x in counts.index]
    order += sorted(x for x in counts.index if x not in order)
    return pd.DataFrame({"level": order, "pupils": [int(counts[x]) for x in order]})


def staff(snapshot: Snapshot, members: pd.DataFrame, mask: Pseudonymiser | None) -> pd.DataFrame:
    """The school's staff, one row each: ``staff`` (pseudonym, or the jointure when
    unmasked), ``profile`` (directeur, enseignant, autre personnel: the population's
    profile), ``director``, ``teacher``, ``functions`` (labels of their functions in this
    school). Unmasked also ``last_name``, ``first_name``, ``mail``. Directors first."""
    m = members[(members["kind"] == schema.STAFF.name).to_numpy(dtype=bool)]
    rank = {str(Profile.DIRECTOR): 0, str(Profile.TEACHER): 1, str(Profile.OTHER_STAFF): 2}
    m = m.assign(_rank=m["profile"].map(rank)).sort_values("_rank", kind="stable")
    m = m.drop_duplicates("jointure")
    structures = _school_structures(members)
    sf = snapshot.links["staff_function"]
    sf = sf[isin(sf["structure"], structures) & isin(sf["staff"], m["jointure"])]
    functions = _joined(sf, "staff", "label", "functions")
    people = live(snapshot.staff).drop_duplicates("jointure").set_index("jointure")
    out = pd.DataFrame(
        {
            "staff": m["jointure"].astype(STRING)
            if mask is None
            else mask.ids(schema.STAFF.name, m["jointure"]),
            "profile": m["profile"].map(PROFILE_LABELS).astype(STRING),
            "director": (m["profile"] == str(Profile.DIRECTOR)).to_numpy(dtype=bool),
            "teacher": m["teacher"].to_numpy(dtype=bool),
            "functions": m["jointure"].map(functions).astype(STRING),
            "_rank": m["_rank"].to_numpy(),
        }
    )
    if mask is None:
        for i, col in enumerate(("last_name", "first_name", "mail"), start=1):
            out.insert(i, col, m["jointure"].map(people[col]))
    sort = ["_rank", *(["last_name", "first_name"] if mask is None else []), "staff"]
    return out.sort_values(sort, kind="stable").drop(columns="_rank").reset_index(drop=True)


def school_findings(findings: pd.DataFrame, uai: str) -> pd.DataFrame:
    """The audit's findings on this school and its people (the audit places each on its
    person's main school): ``rule``, ``title``, ``severity`` (French), ``kind``, ``person``,
    ``attribute``, ``value``, ``source``; most severe first."""
    f = findings[(findings["uai"] == uai).fillna(False).to_numpy(dtype=bool)]
    titles = {r.id: r.title for r in quality.RULES}
    sev = {str(k): v for k, v in quality.SEVERITY_LABELS.items()}
    rank = {str(k): v for k, v in quality.SEVERITY_RANK.items()}
    out = pd.DataFrame(
        {
            "rule": f["rule"].astype(STRING),
            "title": f["rule"].map(titles).astype(STRING),
            "severity": f["severity"].map(sev).astype(STRING),
            "kind": f["kind"].astype(STRING),
            "person": f["jointure"].astype(STRING),
            "attribute": f["attribute"].astype(STRING),
            "value": f["value"].astype(STRING),
            "source": f["source"].astype(STRING),
            "_rank": f["severity"].map(rank).to_numpy(),
        }
    )
    out = out.sort_values(["_rank", "rule"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)


# -- activity ---------------------------------------------------------------------------------


def activity_frame(daily: pd.DataFrame | None) -> pd.DataFrame | None:
    """Check a per-school activity frame (:data:`ACTIVITY_COLUMNS`) once; ``None`` stays
    ``None`` (no activity given)."""
    if daily is None:
        return None
    missing = [c for c in ACTIVITY_COLUMNS if c not in daily.columns]
    if missing:
        raise ParameterError(
            OWNER,
            "activity",
            f"colonnes absentes: {', '.join(missing)} (attendu: {', '.join(ACTIVITY_COLUMNS)})",
        )
    out = daily.copy()
    out["uai"] = out["uai"].astype(STRING)
    out["date"] = pd.to_datetime(out["date"])
    return out


def read_daily(path: Path | str, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The provider's daily CSV as an activity frame, read by the pilot console's reader
    (:func:`ent_audit.analyses.activity.inputs.read_daily`: column mapping, French or English
    profiles, malformed rows left out and counted): one reading of the provider's files."""
    daily, _ = activity_inputs.read_daily(path, columns)
    out = daily.rename(columns={"activated": "accounts_activated"})
    return out[[*ACTIVITY_COLUMNS, "accounts_activated"]]


def store_activity(store: Path | str) -> pd.DataFrame | None:
    """The activity frame from the events the store imported (``ent-audit activity-import``,
    :mod:`ent_audit.store.events`): per school, day and profile, ``connections`` (login
    events, the pilot console's definition) and ``unique_visitors`` (distinct people with an
    event that day). ``None`` when the store holds no imported events. Activated accounts are
    not in the events: the open flag needs the daily CSV."""
    from ent_audit.store.store import Store

    st = Store(store, create=False)
    if not any((events.activity_dir(st.path) / events.EVENTS).glob("month=*/*.parquet")):
        return None
    frame = st.sql(
        "SELECT uai, CAST(ts AS DATE) AS date, profile, "
        f"count(*) FILTER (WHERE event = '{activity_inputs.EventKind.LOGIN}') AS connections, "
        "count(DISTINCT user) AS unique_visitors FROM events GROUP BY ALL "
        "ORDER BY uai, date, profile",
        population=False,
    )
    return activity_frame(frame)


def activity(daily: pd.DataFrame | None, uai: str) -> pd.DataFrame:
    """The school's rows of the activity frame, by date then profile; an empty frame of
    :data:`ACTIVITY_COLUMNS` when no activity was given."""
    if daily is None:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in ACTIVITY_COLUMNS})
    a = daily[(daily["uai"] == uai).fillna(False).to_numpy(dtype=bool)]
    return a.sort_values(["date", "profile"], kind="stable").reset_index(drop=True)


def weekly(school_activity: pd.DataFrame) -> pd.DataFrame:
    """Connections per week (Monday), weeks without any included as 0."""
    if school_activity.empty:
        return pd.DataFrame({"week": pd.Series([], dtype="datetime64[ns]"), "connections": []})
    a = school_activity.assign(
        week=pd.to_datetime(school_activity["date"]).dt.to_period("W-SUN").dt.start_time
    )
    w = a.groupby("week")["connections"].sum()
    full = pd.date_range(w.index.min(), w.index.max(), freq="7D")
    w = w.reindex(full, fill_value=0)
    return pd.DataFrame({"week": w.index, "connections": w.to_numpy()})


def sparkline(values: pd.Series | Iterable[float]) -> str:
    """A one-line text chart (``▁▃█``): the summary's activity at a glance."""
    v = np.asarray(list(values), dtype="float64")
    if v.size == 0:
        return ""
    top = v.max()
    if not top > 0:
        return SPARK[0] * v.size
    idx = np.rint(v / top * (len(SPARK) - 1)).clip(0, len(SPARK) - 1).astype(int)
    idx[(v > 0) & (idx == 0)] = 1  # any activity shows
    return "".join(SPARK[i] for i in idx)


def is_open(school_activity: pd.DataFrame) -> bool | None:
    """ENT open, as the pilot console says it (:func:`ent_audit.analyses.activity.is_open`):
    the teachers' and director's activated accounts on each profile's last day, summed.
    ``None`` when the activity frame does not say (no activity, or no
    ``accounts_activated``)."""
    if school_activity.empty or "accounts_activated" not in school_activity:
        return None
    last = school_activity.sort_values("date", kind="stable").drop_duplicates(
        "profile", keep="last"
    )
    teachers = last["profile"].isin(activity_indicators.OPEN_PROFILES).to_numpy(dtype=bool)
    activated = int(last.loc[teachers, "accounts_activated"].fillna(0).sum())
    return bool(activity_indicators.is_open(activated))


# -- summary ----------------------------------------------------------------------------------


def summary(
    *,
    uai: str,
    name: str,
    circonscription: str,
    commune: str,
    pupils: pd.DataFrame,
    classes: pd.DataFrame,
    staff: pd.DataFrame,
    guardians: int,
    findings: pd.DataFrame,
    score: float | None,
    ent_open: bool | None,
    spark: str,
) -> pd.DataFrame:
    """The summary tab: one row per key figure (``indicator``, ``value``, as text)."""
    sev = findings["severity"].value_counts()
    directors = staff.loc[staff["director"], "staff"].tolist()
    if "last_name" in staff:
        d = staff[staff["director"]]
        names = d["last_name"].fillna("").str.upper() + " " + d["first_name"].fillna("")
        directors = names.tolist()
    open_text = {True: "oui", False: "non", None: "non renseigné (pas de données d'activité)"}
    real = classes[(classes["class_name"] != NO_CLASS).fillna(True).to_numpy(dtype=bool)]
    rows = [
        ("école", name),
        ("UAI", uai),
        ("circonscription", circonscription),
        ("commune", commune),
        ("élèves", len(pupils)),
        ("classes", len(real)),
        ("élèves sans classe", int(classes["pupils"].sum() - real["pupils"].sum())),
        ("responsables", guardians),
        ("enseignants", int(staff["teacher"].sum())),
        ("direction", ", ".join(directors) if directors else "aucun directeur"),
        ("autres personnels", int((~staff["teacher"] & ~staff["director"]).sum())),
        ("constats bloquants", int(sev.get("bloquant", 0))),
        ("avertissements", int(sev.get("avertissement", 0))),
        ("informations", int(sev.get("information", 0))),
        ("score qualité (0–100)", "" if score is None else f"{score:.1f}"),
        ("ENT ouvert", open_text[ent_open]),
        ("activité (connexions par semaine)", spark or "—"),
    ]
    return pd.DataFrame(
        {"indicator": [r[0] for r in rows], "value": [str(r[1]) for r in rows]}
    ).astype(STRING)


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """A tab frame with French column labels and readable booleans: what the tables and CSV
    exports show."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = np.where(out[col].to_numpy(), "oui", "non")
    if "birth_date" in out:
        out["birth_date"] = pd.to_datetime(out["birth_date"]).dt.strftime("%d/%m/%Y")
    return out.rename(columns=LABELS)
