"""The single source of truth for the four AAF kinds.

One declarative table per kind lists every attribute of Annexe 1 of the convention, the
first-degree extras seen in real files and the generic LDAP aliases: the AAF attribute, the
column it becomes, its dtype, whether it is multi-valued (and then which link table it feeds
and how its ``$``-separated value splits), whether it is required, and whether it is personal
data. The reader, the snapshot builder, the validators and the generator all read these tables;
nothing else in the package spells an AAF attribute name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Dtype = Literal["string", "date", "bool", "cycle", "level"]

DATE_FORMAT = "%d/%m/%Y"
"""AAF dates are ``dd/mm/yyyy``."""

BOOL_VALUES = {"O": True, "N": False}
"""AAF flags are ``O`` (oui) / ``N`` (non)."""

LEVELS = ("TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2")
"""First-degree levels, youngest first."""

LEVEL_CYCLE = {"TPS": 1, "PS": 1, "MS": 1, "GS": 1, "CP": 2, "CE1": 2, "CE2": 2, "CM1": 3, "CM2": 3}

LEVEL_AGE = {"TPS": 2, "PS": 3, "MS": 4, "GS": 5, "CP": 6, "CE1": 7, "CE2": 8, "CM1": 9, "CM2": 10}
"""Usual age on 31 December of the school year's first calendar year."""

LINK_CODES = {
    "10": "mère",
    "20": "père",
    "38": "ascendant",
    "39": "autre membre de la famille",
    "41": "éducateur",
    "42": "assistant familial",
    "43": "garde d'enfant",
    "50": "tuteur",
    "51": "aide sociale à l'enfance",
    "90": "autre lien",
}
"""First-degree codes of ``ENTEleveAutoriteParentale`` (``guardian$code``)."""

FUNCTION_CODES = {
    "ENS": "enseignement",
    "DIR": "direction",
    "DOC": "documentation",
    "EDU": "éducation",
    "-": "aucune",
}


@dataclass(frozen=True)
class Field:
    """One AAF attribute of one kind."""

    attr: str
    column: str
    dtype: Dtype = "string"
    multi: bool = False
    required: bool = False
    personal: bool = False
    """Personal data: never shown in rendered reports."""
    aliases: tuple[str, ...] = ()
    """Other names the same attribute arrives under (LDAP names, accented spellings)."""
    in_convention: bool = True
    """Listed in Annexe 1 for this kind; False for the first-degree extras importers accept."""
    link: str | None = None
    """For multi-valued fields: the link table the values feed."""
    owner: str | None = None
    """Column of the link table that receives the record's jointure."""
    parts: tuple[str, ...] = ()
    """Columns of the link table filled from the ``$``-separated value, in order."""
    description: str = ""


@dataclass(frozen=True)
class Kind:
    """The table of one AAF kind."""

    name: str
    """Kind token of file names and of ``categoriePersonne`` / ``categorieStructure``."""
    frame: str
    """Entity frame of the snapshot."""
    entity: str
    """One row of the frame, as named in link tables (``student``, ``guardian``…)."""
    category_attr: str
    id_attr: str
    fields: tuple[Field, ...]
    by_attr: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Field] = {}
        for f in self.fields:
            for name in (f.attr, *f.aliases):
                assert name not in index, f"{self.name}: {name} declared twice"
                index[name] = f
        object.__setattr__(self, "by_attr", index)

    @property
    def single(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.multi)

    @property
    def multi(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.multi)

    def field(self, column: str) -> Field:
        for f in self.fields:
            if f.column == column:
                return f
        raise KeyError(column)


def _person(**overrides: Field) -> dict[str, Field]:
    """Fields every kind of person shares, keyed by column; kinds override or drop some."""
    base = {
        "jointure": Field(
            "ENTPersonJointure", "jointure", required=True, description="clé de jointure avec le SI"
        ),
        "birth_name": Field(
            "ENTPersonNomPatro", "birth_name", personal=True, description="nom patronymique"
        ),
        "last_name": Field(
            "ENTPersonNom",
            "last_name",
            required=True,
            personal=True,
            aliases=("sn",),
            description="nom d'usage",
        ),
        "first_name": Field(
            "ENTPersonPrenom",
            "first_name",
            required=True,
            personal=True,
            aliases=("givenName",),
            description="prénom usuel",
        ),
        "other_first_names": Field(
            "ENTPersonAutresPrenoms",
            "other_first_names",
            multi=True,
            personal=True,
            link="person_other_name",
            owner="person",
            parts=("other_first_name",),
            description="autres prénoms",
        ),
        "title": Field(
            "ENTPersonCivilite",
            "title",
            aliases=("personalTitle", "ENTPersonCivilité"),
            description="civilité",
        ),
    }
    base.update(overrides)
    return base


_BIRTH = Field(
    "ENTPersonDateNaissance",
    "birth_date",
    dtype="date",
    required=True,
    personal=True,
    description="date de naissance",
)
_STRUCT = Field(
    "ENTPersonStructRattach",
    "structures",
    multi=True,
    link="person_structure",
    owner="person",
    parts=("structure",),
    description="structure(s) de rattachement (jointures)",
)
_MAIL = Field(
    "ENTPersonMail",
    "mail",
    personal=True,
    aliases=("mail",),
    description="adresse mail issue du SI",
)


def _flag(attr: str, column: str, description: str) -> Field:
    return Field(attr, column, dtype="bool", description=description)


def _person_kind(name: str, frame: str, entity: str, fields: tuple[Field, ...]) -> Kind:
    return Kind(
        name=name,
        frame=frame,
        entity=entity,
        category_attr="categoriePersonne",
        id_attr="ENTPersonJointure",
        fields=fields,
    )


STRUCTURE = Kind(
    name="EtabEducNat",
    frame="structures",
    entity="structure",
    category_attr="categorieStructure",
    id_attr="ENTStructureJointure",
    fields=(
        Field("ENTStructureJointure", "jointure", required=True, description="clé de jointure"),
        Field("ENTStructureUAI", "uai", required=True, description="code RNE / UAI"),
        Field("ENTStructureSIREN", "siren", description="numéro SIREN"),
        Field("ENTStructureNomCourant", "name", required=True, description="nom courant"),
        Field(
            "ENTStructureTypeStruct",
            "struct_type",
            required=True,
            description="type de structure (ECOLE, INSPECTIONS ACADEMIQUES…)",
        ),
        Field("ENTEcoleMinistereTutelle", "ministry", description="ministère de tutelle"),
        Field("ENTEcoleSecteur", "sector", description="secteur (public, privé)"),
        Field("ENTEcoleCirconscription", "circonscription", description="circonscription"),
        Field("ENTEcoleCommune", "commune", description="commune de rattachement"),
        Field("ENTEcoleRPI", "rpi", description="RPI d'appartenance"),
        Field("ENTServAcAcademie", "academy", description="académie"),
        Field("ENTStructureAdresse", "address", description="adresse"),
        Field("ENTStructureBoitePostale", "po_box", description="boîte postale"),
        Field("ENTStructureCodePostal", "postal_code", description="code postal"),
        Field("ENTStructureVille", "city", description="ville"),
        Field("ENTStructureTelephone", "phone", description="téléphone"),
        Field("ENTStructureFax", "fax", description="fax"),
        Field("ENTStructureMailSI", "mail", description="adresse mail issue du SI"),
    ),
)

STUDENT = _person_kind(
    "Eleve",
    "students",
    "student",
    fields=tuple(
        _person(
            ine=Field(
                "ENTEleveINE",
                "ine",
                required=True,
                personal=True,
                description="identifiant national élève",
            ),
            birth_date=_BIRTH,
            structures=_STRUCT,
            guardians=Field(
                "ENTEleveAutoriteParentale",
                "guardians",
                multi=True,
                link="student_guardian",
                owner="student",
                parts=("guardian", "link_code"),
                description="personne ayant l'autorité parentale ($code lien)",
            ),
            canteen=_flag("ENTEleveRestaurantScolaire", "canteen", "restaurant scolaire"),
            transport=_flag("ENTEleveTransport", "transport", "transport scolaire"),
            morning_care=_flag("ENTEleveGarderieMatin", "morning_care", "garderie du matin"),
            evening_care=_flag("ENTEleveGarderieSoir", "evening_care", "garderie du soir"),
            supervised_study=_flag(
                "ENTEleveEtudesSurveillees", "supervised_study", "études surveillées"
            ),
            level=Field(
                "ENTEleveNiveau",
                "level",
                dtype="level",
                required=True,
                description="niveau (TPS … CM2)",
            ),
            cycle=Field("ENTEleveCycle", "cycle", dtype="cycle", description="cycle 1, 2 ou 3"),
            class_type=Field(
                "ENTEleveTypeClasse", "class_type", description="type de classe (ordinaire, ULIS)"
            ),
            classes=Field(
                "ENTPersonClasses",
                "classes",
                multi=True,
                link="student_class",
                owner="student",
                parts=("structure", "field1", "field2", "class_id", "class_name"),
                description="école et classe(s)",
            ),
            groups=Field(
                "ENTPersonGroupes",
                "groups",
                multi=True,
                link="student_group",
                owner="student",
                parts=("structure", "field1", "field2", "group_id", "group_name"),
                description="école et groupe(s)",
            ),
            class_entry=Field(
                "ENTEleveDateEntreeClasses",
                "class_entry",
                multi=True,
                in_convention=False,
                link="student_class_entry",
                owner="student",
                parts=("value",),
                description="dates d'entrée en classe (brut)",
            ),
            class_exit=Field(
                "ENTEleveDateSortieClasses",
                "class_exit",
                multi=True,
                in_convention=False,
                link="student_class_exit",
                owner="student",
                parts=("value",),
                description="dates de sortie de classe (brut)",
            ),
        ).values()
    ),
)

GUARDIAN = _person_kind(
    "PersRelEleve",
    "guardians",
    "guardian",
    fields=tuple(
        _person(
            # First names are absent for legal persons (organismes): not required here.
            first_name=Field(
                "ENTPersonPrenom",
                "first_name",
                personal=True,
                aliases=("givenName",),
                description="prénom (personnes physiques)",
            ),
            students=Field(
                "ENTPersRelEleveEleve",
                "students",
                multi=True,
                link="student_guardian",
                owner="guardian",
                parts=("student",),
                description="élèves en relation",
            ),
            address=Field(
                "ENTPersonAdresse",
                "address",
                personal=True,
                description="adresse (lignes séparées par $)",
            ),
            postal_code=Field(
                "ENTPersonCodePostal", "postal_code", personal=True, description="code postal"
            ),
            city=Field("ENTPersonVille", "city", personal=True, description="ville"),
            country=Field("ENTPersonPays", "country", personal=True, description="pays"),
            address_sharing=_flag(
                "ENTPersonAdresseDiffusion",
                "address_sharing",
                "diffusion de l'adresse aux associations de parents",
            ),
            home_phone=Field(
                "ENTPersonTelPerso", "home_phone", personal=True, description="téléphone personnel"
            ),
            mobile_phone=Field(
                "ENTPersRelEleveTelMobile",
                "mobile_phone",
                personal=True,
                description="téléphone mobile",
            ),
            mail=_MAIL,
            work_phone=Field(
                "ENTPersRelEleveTelPro",
                "work_phone",
                personal=True,
                description="téléphone professionnel",
            ),
        ).values()
    ),
)

STAFF = _person_kind(
    "PersEducNat",
    "staff",
    "staff",
    fields=tuple(
        _person(
            birth_date=_BIRTH,
            mail=_MAIL,
            structures=_STRUCT,
            functions=Field(
                "ENTPersonFonctions",
                "functions",
                multi=True,
                link="staff_function",
                owner="staff",
                parts=("structure", "code", "label", "discipline_code", "discipline_label"),
                description="fonction(s) par structure",
            ),
            is_teacher=_flag("ENTPersonCategorieEnseignant", "is_teacher", "catégorie enseignant"),
            director_of=Field(
                "ENTEnsFonctionDir",
                "director_of",
                multi=True,
                link="staff_director",
                owner="staff",
                parts=("structure",),
                description="directeur de ces écoles (jointures)",
            ),
            specialities=Field(
                "ENTEnsSpecialites",
                "specialities",
                multi=True,
                link="staff_speciality",
                owner="staff",
                parts=("speciality",),
                description="spécialités du professeur des écoles",
            ),
        ).values()
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in (STRUCTURE, STUDENT, GUARDIAN, STAFF)}
"""The four first-degree kinds by file-name token, in processing order."""

KIND_BY_FRAME: dict[str, Kind] = {k.frame: k for k in KINDS.values()}

UAI_KEYS = "ABCDEFGHJKLMNPRSTUVWXYZ"
"""Check letters of a UAI: ``UAI_KEYS[n % 23]``, n = its 7 leading digits as a number."""

FORMATS: dict[str, str] = {
    "uai": r"\d{7}[A-Z]",
    "ine": r"[0-9A-Z]{10}[A-Z]|[0-9]{9}[A-Z]{2}",
    "postal_code": r"\d{5}",
    "mail": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "phone": r"0[1-9]\d{8}|\+\d{7,15}",
    "mobile": r"0[67]\d{8}|\+\d{7,15}",
}
"""Whole-value formats (regular expressions valid for both Python ``re`` and Arrow's RE2).

Phones are matched once :data:`PHONE_SEPARATORS` are removed and a leading ``+33`` is written
``0``: ``05 61 84 55 55``, ``+33 5 61 84 55 55`` and ``05.61.84.55.55`` are one number. A
foreign number (``+`` and another country code) is well formed, and may be a mobile. INE: 10
digits or capitals and a key letter (INE-BEA) or 9 digits and 2 letters (INE-RNIE)."""

PHONE_SEPARATORS = r"[\s.()\-]"

FIELD_FORMATS: dict[tuple[str, str], str] = {
    ("EtabEducNat", "uai"): "uai",
    ("EtabEducNat", "postal_code"): "postal_code",
    ("EtabEducNat", "phone"): "phone",
    ("EtabEducNat", "fax"): "phone",
    ("EtabEducNat", "mail"): "mail",
    ("Eleve", "ine"): "ine",
    ("PersRelEleve", "postal_code"): "postal_code",
    ("PersRelEleve", "home_phone"): "phone",
    ("PersRelEleve", "mobile_phone"): "mobile",
    ("PersRelEleve", "work_phone"): "phone",
    ("PersRelEleve", "mail"): "mail",
    ("PersEducNat", "mail"): "mail",
}
"""(kind, column) -> the format of :data:`FORMATS` its values must have (``mobile``: a phone
that must also be a mobile)."""

for (_kind, _column), _format in FIELD_FORMATS.items():
    assert _format in FORMATS and KINDS[_kind].field(_column), (_kind, _column)


@dataclass(frozen=True)
class LinkTable:
    """A link table built from one or more multi-valued fields."""

    name: str
    columns: tuple[str, ...]
    origin: str | None = None
    """Column telling which kind's file stated the link, for tables fed by several kinds."""
    labels: tuple[tuple[str, str, dict[str, str]], ...] = ()
    """Derived label columns: (label column, code column, code -> label)."""


LINK_TABLES: dict[str, LinkTable] = {
    t.name: t
    for t in (
        LinkTable(
            "student_guardian",
            ("student", "guardian", "link_code", "link_label"),
            origin="seen_from",
            labels=(("link_label", "link_code", LINK_CODES),),
        ),
        LinkTable(
            "student_class", ("student", "structure", "class_id", "class_name", "field1", "field2")
        ),
        LinkTable(
            "student_group", ("student", "structure", "group_id", "group_name", "field1", "field2")
        ),
        LinkTable("person_structure", ("person", "structure"), origin="kind"),
        LinkTable(
            "staff_function",
            ("staff", "structure", "code", "label", "discipline_code", "discipline_label"),
        ),
        LinkTable("staff_director", ("staff", "structure")),
        LinkTable("staff_speciality", ("staff", "speciality")),
        LinkTable("person_other_name", ("person", "other_first_name"), origin="kind"),
        LinkTable("student_class_entry", ("student", "value")),
        LinkTable("student_class_exit", ("student", "value")),
    )
}

# Every multi-valued field must feed a declared table with declared columns.
for _k in KINDS.values():
    for _f in _k.multi:
        assert _f.link in LINK_TABLES, (_k.name, _f.attr)
        _cols = LINK_TABLES[_f.link].columns
        assert _f.owner in _cols and set(_f.parts) <= set(_cols), (_k.name, _f.attr)

KNOWN_ATTRIBUTES: frozenset[str] = frozenset(
    name for k in KINDS.values() for f in k.fields for name in (f.attr, *f.aliases)
)
"""Every attribute name any kind declares: a name outside it is unknown to ent-audit."""


def personal_columns(frame: str) -> tuple[str, ...]:
    """Columns of an entity frame that hold personal data."""
    return tuple(f.column for f in KIND_BY_FRAME[frame].single if f.personal)
