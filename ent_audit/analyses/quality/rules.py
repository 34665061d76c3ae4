"""The checks: each a pure, vectorised function of the :class:`Context` (merges, ``isin``,
string methods: no Python loop over records) returning one finding row per record at fault
(:func:`context.rows`). The catalogue (:mod:`.catalogue`) says what each one means."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import isin
from ent_audit.analyses.quality.context import (
    GUARDIAN,
    PEOPLE,
    STAFF,
    STRUCTURE,
    STUDENT,
    Context,
    attr,
    by_blocks,
    concat,
    issues,
    missing,
    none,
    not_in,
    pairs_in,
    rows,
)

ULIS = "ULIS"
MOJIBAKE = "[ÃÂÅâ][" + "".join(map(chr, range(0x80, 0xC0))) + "ŒœŠšŸŽžƒˆ˜–—‘’‚“”„†‡•…‰‹›€™]"
"""UTF-8 read as Windows-1252 or Latin-1: ``é`` -> ``Ã©``, ``É`` -> ``Ã‰``, ``œ`` -> ``Å“``."""

ISSUE_RULES = {
    "id_mismatch",
    "invalid_value",
    "malformed_value",
    "multiple_values",
    "missing_jointure",
    "unknown_attribute",
    "unlisted_attribute",
    "malformed_file",
}
"""Reader findings (``snapshot.issues`` codes) that dedicated rules report; the others go to
``reader_other``. Unknown and unlisted attributes are read per record from ``extras``."""


# ---------------------------------------------------------------------------------------------
# Checks: structures
# ---------------------------------------------------------------------------------------------


def uai_invalid(ctx: Context) -> pd.DataFrame:
    s = ctx.structures
    bad = s[~ctx.uai_valid.to_numpy()]
    return rows(bad, STRUCTURE.name, attr(STRUCTURE, "uai"), bad["uai"])


def uai_duplicate(ctx: Context) -> pd.DataFrame:
    s = ctx.structures.dropna(subset=["uai"])
    dup = s[s["uai"].duplicated(keep=False).to_numpy()]
    return rows(dup, STRUCTURE.name, attr(STRUCTURE, "uai"), dup["uai"])


def structure_incomplete(ctx: Context) -> pd.DataFrame:
    s = ctx.structures
    parts = [rows(s[s["name"].isna().to_numpy()], STRUCTURE.name, attr(STRUCTURE, "name"))]
    for column in ("commune", "circonscription"):
        sch = ctx.schools
        parts.append(
            rows(sch[sch[column].isna().to_numpy()], STRUCTURE.name, attr(STRUCTURE, column))
        )
    return concat(parts)


def school_without_pupils(ctx: Context) -> pd.DataFrame:
    sch = ctx.schools
    return rows(
        sch[not_in(sch["jointure"], ctx.pupil_structures)],
        STRUCTURE.name,
        attr(STUDENT, "structures"),
    )


def school_without_teacher(ctx: Context) -> pd.DataFrame:
    """Schools no teacher belongs to (:func:`population.memberships`: attached, directing or
    holding a function there, with ``ENTPersonCategorieEnseignant`` = O)."""
    sch = ctx.schools
    return rows(
        sch[not_in(sch["jointure"], ctx.teacher_structures)],
        STRUCTURE.name,
        attr(STAFF, "is_teacher"),
    )


def _directors(ctx: Context) -> pd.DataFrame:
    d = ctx.link("staff_director").dropna(subset=["staff", "structure"])
    return d[isin(d["staff"], ctx.staff["jointure"])].drop_duplicates(["staff", "structure"])


def school_without_director(ctx: Context) -> pd.DataFrame:
    sch = ctx.schools
    return rows(
        sch[not_in(sch["jointure"], _directors(ctx)["structure"])],
        STRUCTURE.name,
        attr(STAFF, "director_of"),
    )


def school_several_directors(ctx: Context) -> pd.DataFrame:
    n = _directors(ctx).groupby("structure", observed=True).size()
    many = n[n > 1]
    sch = ctx.schools
    hit = sch[isin(sch["jointure"], many.index)] if len(many) else sch.iloc[:0]
    count = hit["jointure"].map(many).astype("Int64").astype(str) + " directeurs"
    return rows(hit, STRUCTURE.name, attr(STAFF, "director_of"), count)


def school_outside_perimeter(ctx: Context) -> pd.DataFrame:
    sch = ctx.schools
    valid = ctx.uai_valid[ctx.is_school.to_numpy()].to_numpy()
    assert ctx.perimeter is not None
    out = sch[valid & ~isin(sch["uai"].fillna(""), ctx.perimeter)]
    return rows(out, STRUCTURE.name, attr(STRUCTURE, "uai"), out["uai"])


# ---------------------------------------------------------------------------------------------
# Checks: pupils
# ---------------------------------------------------------------------------------------------


def ine_missing(ctx: Context) -> pd.DataFrame:
    return missing(ctx, STUDENT, "ine")


def ine_malformed(ctx: Context) -> pd.DataFrame:
    st = ctx.entity(STUDENT, "ine")
    ine = st["ine"]
    bad = (ine.notna() & ~ine.str.fullmatch(schema.FORMATS["ine"]).fillna(False)).to_numpy()
    return rows(st[bad], STUDENT.name, attr(STUDENT, "ine"), ine[bad])


def ine_duplicate(ctx: Context) -> pd.DataFrame:
    st = ctx.entity(STUDENT, "ine").dropna(subset=["ine"]).drop_duplicates(["jointure", "ine"])
    dup = st[st["ine"].duplicated(keep=False).to_numpy()]
    return rows(dup, STUDENT.name, attr(STUDENT, "ine"), dup["ine"])


def birth_date_missing(ctx: Context) -> pd.DataFrame:
    return missing(ctx, STUDENT, "birth_date")


def _date_text(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%d/%m/%Y")


def birth_date_invalid(ctx: Context) -> pd.DataFrame:
    i = ctx.invalid
    birth = attr(STUDENT, "birth_date")
    untypable = i[((i["kind"] == STUDENT.name) & (i["attribute"] == birth)).to_numpy()]
    parts = [
        rows(
            untypable.assign(line=untypable["line"].astype("Int64")),
            STUDENT.name,
            birth,
            untypable["value"],
        )
    ]
    if ctx.reference is not None:
        st = ctx.entity(STUDENT, "birth_date")
        future = (st["birth_date"] > pd.Timestamp(ctx.reference)).fillna(False).to_numpy()
        parts.append(rows(st[future], STUDENT.name, birth, _date_text(st["birth_date"][future])))
    return concat(parts)


def age_level_mismatch(ctx: Context) -> pd.DataFrame:
    st = ctx.entity(STUDENT, "level", "birth_date", "class_type")
    usual = st["level"].map(schema.LEVEL_AGE).astype("Float64")
    age = ctx.school_year - st["birth_date"].dt.year.astype("Float64")
    ulis = st["class_type"].str.upper().str.contains(ULIS, regex=False).fillna(False)
    born = st["birth_date"] <= pd.Timestamp(ctx.reference or dt.date.today())
    bad = ((age - usual).abs() > ctx.age_tolerance) & born & ~ulis
    bad = bad.fillna(False).to_numpy(dtype=bool)
    hit = st[bad]
    text = (
        age[bad].astype("Int64").astype(str)
        + " ans au 31/12/"
        + str(ctx.school_year)
        + " en "
        + hit["level"].astype(str)
        + " (âge usuel "
        + usual[bad].astype("Int64").astype(str)
        + ")"
    )
    return rows(hit, STUDENT.name, attr(STUDENT, "birth_date"), text)


def level_cycle_mismatch(ctx: Context) -> pd.DataFrame:
    st = ctx.entity(STUDENT, "level", "cycle")
    expected = st["level"].map(schema.LEVEL_CYCLE).astype("Int64")
    stated = st["cycle"].astype("Int64")
    bad = (expected.notna() & stated.notna() & (expected != stated)).fillna(False)
    bad = bad.to_numpy(dtype=bool)
    hit = st[bad]
    text = hit["level"].astype(str) + " / cycle " + stated[bad].astype(str)
    return rows(hit, STUDENT.name, attr(STUDENT, "cycle"), text)


def pupil_without_structure(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    return rows(
        st[not_in(st["jointure"], ctx.attached_of("student")["person"])],
        STUDENT.name,
        attr(STUDENT, "structures"),
    )


def unknown_structure(ctx: Context) -> pd.DataFrame:
    a = ctx.attached
    hit = a[~isin(a["structure"], ctx.structures["jointure"])]
    kind = hit["kind"].map({"student": STUDENT.name, "staff": STAFF.name})
    return rows(hit, kind, attr(STUDENT, "structures"), hit["structure"], jointure="person")


def class_other_structure(ctx: Context) -> pd.DataFrame:
    c = ctx.link("student_class", "student", "structure").dropna(subset=["student", "structure"])
    a = ctx.attached_of("student")
    c = c[isin(c["student"], a["person"]) & isin(c["student"], ctx.students["jointure"])]
    hit = c[~pairs_in(c["student"], c["structure"], a["person"], a["structure"])]
    return rows(hit, STUDENT.name, attr(STUDENT, "classes"), hit["structure"], jointure="student")


def pupil_without_class(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    c = ctx.link("student_class", "student")
    return rows(st[not_in(st["jointure"], c["student"])], STUDENT.name, attr(STUDENT, "classes"))


def pupil_several_classes(ctx: Context) -> pd.DataFrame:
    c = ctx.link("student_class", "student", "structure", "class_id").dropna(subset=["student"])
    c = c[isin(c["student"], ctx.students["jointure"])]
    distinct = c.drop_duplicates(["student", "structure", "class_id"])
    n = distinct.groupby(["student", "structure"], dropna=False, observed=True).size()
    many = n[n > 1].reset_index(name="classes")
    hit = distinct.drop_duplicates(["student", "structure"]).merge(
        many, on=["student", "structure"]
    )
    return rows(
        hit,
        STUDENT.name,
        attr(STUDENT, "classes"),
        hit["classes"].astype(str) + " classes",
        jointure="student",
        structure=hit["structure"],
    )


def pupil_several_schools(ctx: Context) -> pd.DataFrame:
    a = ctx.attached_of("student").drop_duplicates(["person", "structure"])
    a = a[isin(a["person"], ctx.students["jointure"])]
    n = a.groupby("person", observed=True).size()
    many = n[n > 1]
    hit = a.drop_duplicates("person")
    hit = hit[isin(hit["person"], many.index)] if len(many) else hit.iloc[:0]
    return rows(
        hit,
        STUDENT.name,
        attr(STUDENT, "structures"),
        hit["person"].map(many).astype(str) + " structures",
        jointure="person",
    )


def pupil_without_guardian(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    g = ctx.guardian_links
    stated = g["student"].to_numpy()[(g["seen_from"] == "student").to_numpy()]
    return rows(
        st[~_has(ctx, "student", st["jointure"], stated)], STUDENT.name, attr(STUDENT, "guardians")
    )


def _has(ctx: Context, side: str, ids: pd.Series, linked: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are among the codes ``linked`` (:attr:`Context.guardian_links`)."""
    codes = ctx.id_codes(side, ids)
    seen = np.zeros(len(ctx.guardian_ids[side][0]) + 1, dtype=bool)
    seen[linked] = True
    return seen[codes]  # -1 (an id in no link): the last, False


def _links_from(ctx: Context, side: str) -> pd.DataFrame:
    g = ctx.guardian_links
    return g[(g["seen_from"] == side).to_numpy()]


def guardian_unknown(ctx: Context) -> pd.DataFrame:
    g = _links_from(ctx, "student")
    keep = ctx.known("student", g["student"].to_numpy())
    keep &= ~ctx.known("guardian", g["guardian"].to_numpy())
    hit = ctx.decoded(g[keep])
    return rows(hit, STUDENT.name, attr(STUDENT, "guardians"), hit["guardian"], jointure="student")


def _name_key(names: pd.Series) -> pd.Series:
    """Names compared without case, accents, spaces, hyphens or apostrophes."""
    return names.str.normalize("NFKD").str.replace(r"\p{Mn}|[^\p{L}]", "", regex=True).str.lower()


def duplicate_person(ctx: Context) -> pd.DataFrame:
    parts = []
    for kind in (STUDENT, STAFF):
        df = ctx.entity(kind, "last_name", "first_name", "birth_date").dropna(
            subset=["last_name", "first_name", "birth_date"]
        )
        key = (
            _name_key(df["last_name"])
            + "\x1f"
            + _name_key(df["first_name"])
            + "\x1f"
            + _date_text(df["birth_date"])
        )
        people = pd.DataFrame({"key": key, "jointure": df["jointure"]}).drop_duplicates()
        shared = people.loc[people["key"].duplicated(keep=False).to_numpy(), "key"]
        hit = df[isin(key, shared.unique())] if len(shared) else df.iloc[:0]
        parts.append(
            rows(
                hit, kind.name, attr(kind, "last_name"), hit["last_name"] + " " + hit["first_name"]
            )
        )
    return concat(parts)


def _people_inside(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attachments of pupils and staff to schools, and those to a school inside the perimeter
    (or whose UAI is invalid: membership cannot be decided, ``uai_invalid`` says so)."""
    assert ctx.perimeter is not None
    sch = ctx.schools
    valid = ctx.uai_valid[ctx.is_school.to_numpy()].to_numpy()
    inside = sch.loc[~valid | isin(sch["uai"].fillna(""), ctx.perimeter), "jointure"]
    a = ctx.attached
    at_school = a[isin(a["structure"], sch["jointure"])]
    return at_school, at_school[isin(at_school["structure"], inside)]


def person_outside_perimeter(ctx: Context) -> pd.DataFrame:
    at_school, ok = _people_inside(ctx)
    out = at_school[~isin(at_school["person"], ok["person"])].drop_duplicates("person")
    kind = out["kind"].map({"student": STUDENT.name, "staff": STAFF.name})
    parts = [
        rows(
            out,
            kind,
            attr(STUDENT, "structures"),
            out["structure"],
            jointure="person",
            structure=out["structure"],
        )
    ]
    # Guardians whose every (known) pupil is outside.
    pupils_out = out.loc[(out["kind"] == "student").to_numpy(), "person"]
    g = ctx.guardian_links
    student, guardian = g["student"].to_numpy(), g["guardian"].to_numpy()
    known = ctx.known("student", student)
    student, guardian = student[known], guardian[known]
    out_codes = ctx.id_codes("student", pupils_out)
    outside = np.isin(student, out_codes[out_codes >= 0])
    # Guardians with a known pupil, every one of them outside.
    n = len(ctx.guardian_ids["guardian"][0])
    linked = np.bincount(guardian, minlength=n) > 0
    inside = np.bincount(guardian[~outside], minlength=n) > 0
    gone = np.flatnonzero(linked & ~inside)
    gd = ctx.guardians
    hit = gd[_has(ctx, "guardian", gd["jointure"], gone)] if len(gone) else gd.iloc[:0]
    parts.append(rows(hit, GUARDIAN.name, attr(GUARDIAN, "students")))
    return concat(parts)


# ---------------------------------------------------------------------------------------------
# Checks: guardians
# ---------------------------------------------------------------------------------------------


def guardian_without_pupil(ctx: Context) -> pd.DataFrame:
    gd = ctx.guardians
    return rows(
        gd[~_has(ctx, "guardian", gd["jointure"], ctx.guardian_links["guardian"].to_numpy())],
        GUARDIAN.name,
        attr(GUARDIAN, "students"),
    )


def guardian_pupil_unknown(ctx: Context) -> pd.DataFrame:
    g = _links_from(ctx, "guardian")
    keep = ctx.known("guardian", g["guardian"].to_numpy())
    keep &= ~ctx.known("student", g["student"].to_numpy())
    hit = ctx.decoded(g[keep])
    return rows(hit, GUARDIAN.name, attr(GUARDIAN, "students"), hit["student"], jointure="guardian")


def _one_side(ctx: Context, side: str) -> pd.DataFrame:
    """Links stated by ``side`` only, both people being in the extraction. Masks over the
    link table, one copy of the rows kept (a million links on an académie)."""
    g = ctx.guardian_links
    other = "guardian" if side == "student" else "student"
    student, guardian = g["student"].to_numpy(), g["guardian"].to_numpy()
    mine = (
        (g["seen_from"] == side).to_numpy()
        & ctx.known("student", student)
        & ctx.known("guardian", guardian)
    )
    theirs = (g["seen_from"] == other).to_numpy()
    key = student.astype(np.int64) * (len(ctx.guardian_ids["guardian"][0]) + 1) + guardian
    mine[mine] = ~np.isin(key[mine], key[theirs])
    return ctx.decoded(g[mine])


def link_pupil_side_only(ctx: Context) -> pd.DataFrame:
    hit = _one_side(ctx, "student")
    return rows(hit, STUDENT.name, attr(STUDENT, "guardians"), hit["guardian"], jointure="student")


def link_guardian_side_only(ctx: Context) -> pd.DataFrame:
    hit = _one_side(ctx, "guardian")
    return rows(hit, GUARDIAN.name, attr(GUARDIAN, "students"), hit["student"], jointure="guardian")


def _format_errors(
    ctx: Context,
    formats: set[str],
    pattern: str,
    prepare: Callable[[pd.Series], pd.Series] = lambda s: s,
    where: Callable[[schema.Kind, pd.DataFrame], np.ndarray] | None = None,
    beside: tuple[str, ...] = (),
) -> pd.DataFrame:
    parts = []
    for kind, column, df, values in ctx.formatted(formats, beside=beside):
        bad = ~by_blocks(
            values, lambda v: prepare(v).str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
        )
        if where is not None:
            bad &= where(kind, df)
        if bad.any():
            parts.append(rows(df[bad], kind.name, attr(kind, column), values[bad]))
    return concat(parts)


def mail_malformed(ctx: Context) -> pd.DataFrame:
    return _format_errors(ctx, {"mail"}, schema.FORMATS["mail"])


def phone_malformed(ctx: Context) -> pd.DataFrame:
    return concat(
        rows(df[~ok], kind, attr(schema.KINDS[kind], column), values[~ok])
        for (kind, column), (df, values, ok, _) in ctx.phones({"phone", "mobile"})
    )


def _in_france(kind: schema.Kind, df: pd.DataFrame) -> np.ndarray:
    if "country" not in df:
        return np.ones(len(df), dtype=bool)
    country = df["country"].str.strip().str.upper()
    return (country.isna() | country.isin(["FRANCE", "FR"])).fillna(True).to_numpy(dtype=bool)


def postal_code_malformed(ctx: Context) -> pd.DataFrame:
    return _format_errors(
        ctx,
        {"postal_code"},
        schema.FORMATS["postal_code"],
        lambda s: s.str.strip(),
        _in_france,
        beside=("country",),
    )


def mobile_not_mobile(ctx: Context) -> pd.DataFrame:
    parts = []
    for (kind, column), (df, values, phone, mobile) in ctx.phones({"mobile"}):
        bad = phone & ~mobile
        parts.append(rows(df[bad], kind, attr(schema.KINDS[kind], column), values[bad]))
    return concat(parts)


# ---------------------------------------------------------------------------------------------
# Checks: staff
# ---------------------------------------------------------------------------------------------


def staff_without_structure(ctx: Context) -> pd.DataFrame:
    sf = ctx.staff
    return rows(
        sf[not_in(sf["jointure"], ctx.attached_of("staff")["person"])],
        STAFF.name,
        attr(STAFF, "structures"),
    )


def director_not_attached(ctx: Context) -> pd.DataFrame:
    d = _directors(ctx)
    a = ctx.attached_of("staff")
    hit = d[~pairs_in(d["staff"], d["structure"], a["person"], a["structure"])]
    return rows(
        hit,
        STAFF.name,
        attr(STAFF, "director_of"),
        hit["structure"],
        jointure="staff",
        structure=hit["structure"],
    )


def teacher_flag_missing(ctx: Context) -> pd.DataFrame:
    return missing(ctx, STAFF, "is_teacher")


# ---------------------------------------------------------------------------------------------
# Checks: every file
# ---------------------------------------------------------------------------------------------


def id_mismatch(ctx: Context) -> pd.DataFrame:
    return issues(ctx, ["id_mismatch"])


DEDICATED_MISSING = {
    (STRUCTURE.name, "uai"),
    (STRUCTURE.name, "name"),
    (STUDENT.name, "ine"),
    (STUDENT.name, "birth_date"),
}
"""Required attributes whose absence a dedicated rule reports (not ``required_empty``)."""


def required_empty(ctx: Context) -> pd.DataFrame:
    parts = [
        missing(ctx, kind, f.column)
        for kind in schema.KINDS.values()
        for f in kind.single
        if f.required and f.column != "jointure" and (kind.name, f.column) not in DEDICATED_MISSING
    ]
    parts.append(issues(ctx, ["missing_jointure"]))
    return concat(parts)


def _extras_of(ctx: Context, known: bool) -> pd.DataFrame:
    """Extra values whose attribute no kind declares (``known=False``) or another kind
    declares (``known=True``); a second value of a declared attribute is not one of them."""
    e = ctx.snapshot.extras
    if e.empty:
        return e
    declared = pd.Series(e["kind"].astype(str) + "\x1f" + e["attribute"].astype(str))
    own = isin(declared, [f"{k.name}\x1f{a}" for k in schema.KINDS.values() for a in k.by_attr])
    everywhere = isin(e["attribute"], schema.KNOWN_ATTRIBUTES)
    keep = ~own & (everywhere if known else ~everywhere)
    return e[keep].drop_duplicates(["kind", "jointure", "attribute"])


def unknown_attribute(ctx: Context) -> pd.DataFrame:
    e = _extras_of(ctx, known=False)
    return rows(e, e["kind"], e["attribute"], e["value"]) if len(e) else none()


def attribute_not_in_convention(ctx: Context) -> pd.DataFrame:
    e = _extras_of(ctx, known=True)
    parts = [rows(e, e["kind"], e["attribute"], e["value"])] if len(e) else []
    for kind in schema.KINDS.values():
        for f in kind.fields:
            if f.in_convention:
                continue
            if f.multi:
                linked = ctx.link(f.link, f.owner, f.parts[-1]).dropna(subset=[f.owner])
                linked = linked[isin(linked[f.owner], ctx.entity(kind)["jointure"])]
                linked = linked.drop_duplicates(f.owner)
                parts.append(rows(linked, kind.name, f.attr, linked[f.parts[-1]], jointure=f.owner))
            else:
                df = ctx.entity(kind, f.column)
                hit = df[df[f.column].notna().to_numpy()]
                parts.append(rows(hit, kind.name, f.attr, hit[f.column].astype(str)))
    return concat(parts)


def mojibake(ctx: Context) -> pd.DataFrame:
    parts = []
    for kind in schema.KINDS.values():
        for f in kind.single:
            if f.dtype != "string" or f.column == "jointure":
                continue
            df = ctx.entity(kind, f.column)
            bad = by_blocks(
                df[f.column],
                lambda v: v.str.contains(MOJIBAKE, regex=True).fillna(False).to_numpy(dtype=bool),
            )
            if bad.any():
                hit = df[bad]
                parts.append(rows(hit, kind.name, f.attr, hit[f.column]))
    names = ctx.link("person_other_name", "person", "other_first_name", "kind")
    hit = names[
        names["other_first_name"]
        .str.contains(MOJIBAKE, regex=True)
        .fillna(False)
        .to_numpy(dtype=bool)
    ]
    kinds = {k.entity: k.name for k in PEOPLE}
    parts.append(
        rows(
            hit,
            hit["kind"].map(kinds),
            attr(STUDENT, "other_first_names"),
            hit["other_first_name"],
            jointure="person",
        )
    )
    return concat(parts)


def invalid_value(ctx: Context) -> pd.DataFrame:
    return issues(ctx, ["invalid_value"], exclude=[(STUDENT.name, attr(STUDENT, "birth_date"))])


def malformed_value(ctx: Context) -> pd.DataFrame:
    return issues(ctx, ["malformed_value"])


def multiple_values(ctx: Context) -> pd.DataFrame:
    return issues(ctx, ["multiple_values"])


def skipped_record(ctx: Context) -> pd.DataFrame:
    """Each record a malformed file lost (``recover=True``), and a malformed file that lost
    none (its ``malformed_file`` reader finding)."""
    sk = ctx.snapshot.skipped
    parts = []
    if len(sk):
        kinds = ctx.snapshot.files.drop_duplicates("source_file").set_index("source_file")
        parts.append(
            rows(
                sk.assign(line=sk["line"].astype("Int64")),
                sk["source_file"].astype(str).map(kinds["kind"]),
                None,
                sk["message"],
                jointure="record_id",
            )
        )
    files = issues(ctx, ["malformed_file"])
    lost = sk["source_file"].astype(str).unique() if len(sk) else []
    parts.append(files[~files["source_file"].isin(lost).to_numpy()])
    return concat(parts)


def reader_other(ctx: Context) -> pd.DataFrame:
    i = ctx.snapshot.issues
    codes = sorted(set(i["code"].dropna().unique()) - ISSUE_RULES)
    out = issues(ctx, codes)
    if len(out):
        code = i.loc[i["code"].isin(codes).to_numpy(), "code"].to_numpy(dtype=object)
        out["attribute"] = np.where(
            pd.isna(out["attribute"]), code, code + ": " + out["attribute"].astype(str)
        )
    return out
