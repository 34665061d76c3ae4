"""The rule catalogue, as data: each :class:`Rule` says what it checks (a function of
:mod:`.rules`), how bad a finding is, whose records and which AAF attributes it concerns,
what a rate is a share of, how a finding's value may be published, and, in French for the
coordinator, what it means and who gets it corrected.

The académie guarantees its data "at the date of transmission"; the town and its provider
must notice what is wrong and get it corrected (convention, art. 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.analyses.quality import rules
from ent_audit.analyses.quality.context import Context


class Severity(StrEnum):
    """How much a finding breaks the ENT: ranks the report, sets the default thresholds."""

    BLOCKING = "blocking"
    """The record cannot be provisioned, the school cannot use the ENT, or the data may not be
    held (outside the perimeter)."""
    WARNING = "warning"
    """Wrong or missing data an account still works with, or data beyond the convention."""
    INFO = "info"
    """Worth knowing; nothing breaks."""


SEVERITY_LABELS = {
    Severity.BLOCKING: "bloquant",
    Severity.WARNING: "avertissement",
    Severity.INFO: "information",
}
SEVERITY_RANK = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Corrector(StrEnum):
    """Who gets a finding corrected."""

    SCHOOL = "school"
    """The school, in ONDE (the DSDEN relays to the académie)."""
    ACADEMY = "academy"
    """The académie: DSDEN, staff department, or whoever runs the AAF export."""
    PROVIDER = "provider"
    """The ENT provider (import side)."""


CORRECTOR_LABELS = {
    Corrector.SCHOOL: "l'école, dans ONDE ; la DSDEN relaie auprès de l'académie",
    Corrector.ACADEMY: "l'académie : DSDEN, service des personnels ou de l'export AAF",
    Corrector.PROVIDER: "le prestataire de l'ENT",
}


class AAFKind(StrEnum):
    """The AAF kinds (file-name tokens) a rule reports records of."""

    STRUCTURE = schema.STRUCTURE.name
    """``EtabEducNat``: schools and the offices beside them."""
    PUPIL = schema.STUDENT.name
    """``Eleve``."""
    GUARDIAN = schema.GUARDIAN.name
    """``PersRelEleve``: people with parental authority or otherwise related to pupils."""
    STAFF = schema.STAFF.name
    """``PersEducNat``: teachers, directors and other staff."""


EVERY_KIND = tuple(AAFKind)
ANY_ATTRIBUTE = "*"
"""A rule about whatever attribute is at fault (reader findings, required values…)."""


class Population(StrEnum):
    """What a rule's rate is a share of (``"N%"`` thresholds, the report's rate column)."""

    STRUCTURES = "structures"
    """Every live structure record: schools and offices."""
    SCHOOLS = "schools"
    """Live structures of type ``ECOLE`` (:func:`population.is_school`)."""
    PUPILS = "pupils"
    GUARDIANS = "guardians"
    STAFF = "staff"
    PEOPLE = "people"
    """Pupils, guardians and staff."""
    RECORDS = "records"
    """Every live record of the four files."""


class ValuePolicy(StrEnum):
    """How ``findings.csv`` publishes a finding's value (the clear CSVs keep it as is)."""

    CLEAR = "clear"
    """As is: UAIs, levels, counts, structure ids, reader messages; nothing personal."""
    MASKED = "masked"
    """Always masked to its first character (``D*****``): names."""
    MASKED_IF_PERSONAL = "masked_if_personal"
    """Masked when the attribute holds personal data or people's ids, or is unknown to the
    schema; as is otherwise."""
    OWN_ID = "own_id"
    """A jointure of the record's own kind: pseudonymised with the same key as the record."""
    PUPIL_ID = "pupil_id"
    """A pupil's jointure: pseudonymised as an ``Eleve`` id."""
    GUARDIAN_ID = "guardian_id"
    """A guardian's jointure: pseudonymised as a ``PersRelEleve`` id."""


ID_KIND = {ValuePolicy.PUPIL_ID: AAFKind.PUPIL, ValuePolicy.GUARDIAN_ID: AAFKind.GUARDIAN}
"""Kind of the people whose ids a value holds, for the policies that name one."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One data-quality rule: what it checks, how bad it is, and how to get it corrected."""

    id: str
    """Stable identifier (``findings.csv``, thresholds, trend)."""
    severity: Severity
    kinds: tuple[AAFKind, ...]
    """Kinds whose records it reports."""
    attributes: tuple[str, ...]
    """AAF attributes concerned (:data:`ANY_ATTRIBUTE`: whichever is at fault)."""
    population: Population
    title: str
    """French, one neutral line."""
    explanation: str
    """French: what it means for the ENT."""
    correction: str
    """French: how to get it corrected."""
    corrector: Corrector
    value: ValuePolicy
    check: Callable[[Context], pd.DataFrame] = field(repr=False, compare=False)
    needs_perimeter: bool = False
    """Checked only when the perimeter's school list is given (else skipped)."""


RULES: tuple[Rule, ...] = (
    # -- structures --------------------------------------------------------------------------
    Rule(
        id="uai_invalid",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTStructureUAI",),
        population=Population.STRUCTURES,
        title="UAI absente, mal formée ou de lettre clé fausse",
        explanation=(
            "L'UAI (code RNE) identifie l'école dans l'ENT et dans toutes les applications "
            "nationales ; elle compte 7 chiffres et une lettre clé calculée sur ces chiffres. Une "
            "UAI fausse empêche de créer ou de retrouver l'école."
        ),
        correction=(
            "Signaler la structure à la DSDEN, qui fait corriger l'UAI dans la base des "
            "établissements (RAMSESE) avant la prochaine extraction."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.uai_invalid,
    ),
    Rule(
        id="uai_duplicate",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTStructureUAI",),
        population=Population.STRUCTURES,
        title="Même UAI sur plusieurs structures",
        explanation=(
            "Deux structures portent la même UAI : l'ENT ne peut en créer qu'une, les élèves et "
            "personnels de l'autre seraient rattachés à la mauvaise école."
        ),
        correction="Signaler les deux structures à la DSDEN (export AAF de l'académie).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.uai_duplicate,
    ),
    Rule(
        id="structure_incomplete",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTStructureNomCourant", "ENTEcoleCommune", "ENTEcoleCirconscription"),
        population=Population.STRUCTURES,
        title="Structure sans nom, école sans commune ou sans circonscription",
        explanation=(
            "Sans nom, la structure est illisible dans l'ENT ; sans commune ni circonscription, "
            "l'école manque aux tableaux de pilotage par circonscription et par commune."
        ),
        correction=(
            "Demander à la DSDEN de compléter la fiche de l'école dans la base des établissements."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.structure_incomplete,
    ),
    Rule(
        id="school_without_pupils",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTPersonStructRattach",),
        population=Population.SCHOOLS,
        title="École sans élève",
        explanation=(
            "Aucun élève n'est rattaché à l'école ni inscrit dans l'une de ses classes : extraction"
            " partielle, école fermée ou élèves rattachés ailleurs."
        ),
        correction=(
            "Vérifier avec l'école que ses élèves sont admis dans ONDE ; sinon signaler "
            "l'extraction incomplète à la DSDEN."
        ),
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.school_without_pupils,
    ),
    Rule(
        id="school_without_teacher",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTPersonCategorieEnseignant",),
        population=Population.SCHOOLS,
        title="École sans enseignant",
        explanation=(
            "Aucun personnel « catégorie enseignant » n'est rattaché à l'école, ne la dirige ni "
            "n'y exerce une fonction : personne ne peut ouvrir l'ENT de l'école ni animer ses "
            "classes."
        ),
        correction=(
            "Signaler à la DSDEN (service des personnels) : affectations manquantes dans "
            "l'extraction."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.school_without_teacher,
    ),
    Rule(
        id="school_without_director",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTEnsFonctionDir",),
        population=Population.SCHOOLS,
        title="École sans directeur",
        explanation=(
            "Aucun personnel n'est déclaré directeur de l'école (ENTEnsFonctionDir) : "
            "l'administrateur naturel de l'ENT de l'école manque."
        ),
        correction=(
            "Signaler à la DSDEN (service des personnels) : la fonction de direction doit figurer "
            "dans l'annuaire académique."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.school_without_director,
    ),
    Rule(
        id="school_several_directors",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTEnsFonctionDir",),
        population=Population.SCHOOLS,
        title="École avec plusieurs directeurs",
        explanation=(
            "Plusieurs personnels sont déclarés directeurs de la même école : une ancienne "
            "direction n'a sans doute pas été retirée."
        ),
        correction=(
            "Signaler à la DSDEN (service des personnels) la fonction de direction à retirer."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.school_several_directors,
    ),
    Rule(
        id="school_outside_perimeter",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.STRUCTURE,),
        attributes=("ENTStructureUAI",),
        population=Population.SCHOOLS,
        needs_perimeter=True,
        title="École hors du périmètre de la convention",
        explanation=(
            "L'extraction contient une école qui n'est pas dans la liste des écoles de la "
            "convention : ces données ne doivent pas être reçues ni chargées dans l'ENT."
        ),
        correction=(
            "Ne pas charger ces données ; signaler l'extraction à l'académie (périmètre de "
            "l'export) et les détruire."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.school_outside_perimeter,
    ),
    # -- pupils ------------------------------------------------------------------------------
    Rule(
        id="ine_missing",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveINE",),
        population=Population.PUPILS,
        title="Élève sans INE",
        explanation=(
            "L'identifiant national élève manque : l'élève ne peut pas être suivi d'une école à "
            "l'autre ni rapproché des autres applications."
        ),
        correction="L'école complète l'INE dans ONDE (immatriculation de l'élève).",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.ine_missing,
    ),
    Rule(
        id="ine_malformed",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveINE",),
        population=Population.PUPILS,
        title="INE mal formé",
        explanation=(
            "L'INE n'a pas la forme attendue (11 caractères : 10 chiffres ou lettres et une lettre "
            "clé, ou 9 chiffres et 2 lettres)."
        ),
        correction=(
            "L'école vérifie l'INE dans ONDE ; la DSDEN relaie si l'erreur vient de l'export."
        ),
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.ine_malformed,
    ),
    Rule(
        id="ine_duplicate",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveINE",),
        population=Population.PUPILS,
        title="Même INE pour plusieurs élèves",
        explanation=(
            "Deux fiches élèves différentes portent le même INE : l'ENT risque de fusionner deux "
            "enfants ou de donner à l'un l'accès aux données de l'autre."
        ),
        correction="Signaler les fiches à la DSDEN, qui fait corriger l'immatriculation dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.ine_duplicate,
    ),
    Rule(
        id="birth_date_missing",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonDateNaissance",),
        population=Population.PUPILS,
        title="Élève sans date de naissance",
        explanation=(
            "La date de naissance manque : l'ENT s'en sert pour distinguer les homonymes et pour "
            "les services en ligne adaptés à l'âge."
        ),
        correction="L'école complète la fiche de l'élève dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.birth_date_missing,
    ),
    Rule(
        id="birth_date_invalid",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonDateNaissance",),
        population=Population.PUPILS,
        title="Date de naissance impossible",
        explanation=(
            "La date de naissance n'est pas une date du calendrier (31/02…) ou elle est postérieure"
            " à l'extraction."
        ),
        correction="L'école corrige la date dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.birth_date_invalid,
    ),
    Rule(
        id="age_level_mismatch",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonDateNaissance", "ENTEleveNiveau"),
        population=Population.PUPILS,
        title="Âge incompatible avec le niveau",
        explanation=(
            "L'âge de l'élève au 31 décembre de l'année scolaire s'écarte de plus d'un an de l'âge "
            "usuel du niveau (TPS 2 ans … CM2 10 ans) ; les élèves d'ULIS ne sont pas concernés. La"
            " date de naissance ou le niveau est probablement faux."
        ),
        correction="L'école vérifie la date de naissance et le niveau dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.CLEAR,
        check=rules.age_level_mismatch,
    ),
    Rule(
        id="level_cycle_mismatch",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveNiveau", "ENTEleveCycle"),
        population=Population.PUPILS,
        title="Cycle incohérent avec le niveau",
        explanation=(
            "Le cycle transmis ne correspond pas au niveau (cycle 1 : TPS à GS, cycle 2 : CP à CE2,"
            " cycle 3 : CM1 et CM2) : les ressources par cycle seront mal attribuées."
        ),
        correction=(
            "Signaler à la DSDEN (l'export calcule le cycle) ou à l'école si le niveau est faux."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.level_cycle_mismatch,
    ),
    Rule(
        id="pupil_without_structure",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonStructRattach",),
        population=Population.PUPILS,
        title="Élève sans structure de rattachement",
        explanation=(
            "L'élève n'est rattaché à aucune école : son compte ne peut pas être créé dans une "
            "école."
        ),
        correction="L'école vérifie l'admission de l'élève dans ONDE ; la DSDEN relaie.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.pupil_without_structure,
    ),
    Rule(
        id="unknown_structure",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.PUPIL, AAFKind.STAFF),
        attributes=("ENTPersonStructRattach",),
        population=Population.PEOPLE,
        title="Rattachement à une structure absente de l'extraction",
        explanation=(
            "La personne est rattachée à une structure (jointure) qui n'est pas dans le fichier des"
            " structures : son compte ne peut pas être placé."
        ),
        correction=(
            "Signaler à la DSDEN : structure manquante dans l'extraction ou rattachement erroné."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.unknown_structure,
    ),
    Rule(
        id="class_other_structure",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonClasses",),
        population=Population.PUPILS,
        title="Classe déclarée dans une autre école que celle de l'élève",
        explanation=(
            "La classe de l'élève (ENTPersonClasses) appartient à une structure à laquelle l'élève "
            "n'est pas rattaché : l'élève apparaîtrait dans la classe d'une autre école."
        ),
        correction="L'école vérifie la répartition de l'élève dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.CLEAR,
        check=rules.class_other_structure,
    ),
    Rule(
        id="pupil_without_class",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonClasses",),
        population=Population.PUPILS,
        title="Élève sans classe",
        explanation=(
            "L'élève n'est dans aucune classe : il n'apparaît dans aucun espace de classe de l'ENT."
        ),
        correction="L'école répartit l'élève dans une classe dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.pupil_without_class,
    ),
    Rule(
        id="pupil_several_classes",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonClasses",),
        population=Population.PUPILS,
        title="Élève dans plusieurs classes d'une même école",
        explanation=(
            "Un élève du premier degré est dans une seule classe : une ancienne répartition n'a "
            "sans doute pas été retirée."
        ),
        correction="L'école corrige la répartition dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.CLEAR,
        check=rules.pupil_several_classes,
    ),
    Rule(
        id="pupil_several_schools",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTPersonStructRattach",),
        population=Population.PUPILS,
        title="Élève rattaché à plusieurs écoles",
        explanation=(
            "L'élève est rattaché à plusieurs structures : une radiation n'a sans doute pas été "
            "faite après un changement d'école ; il aurait un compte dans chacune."
        ),
        correction="L'ancienne école radie l'élève dans ONDE ; la DSDEN relaie.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.CLEAR,
        check=rules.pupil_several_schools,
    ),
    Rule(
        id="pupil_without_guardian",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveAutoriteParentale",),
        population=Population.PUPILS,
        title="Élève sans responsable légal",
        explanation=(
            "Aucune personne ayant l'autorité parentale n'est indiquée : aucun compte parent ne "
            "sera relié à l'élève."
        ),
        correction="L'école saisit les responsables légaux dans ONDE.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.pupil_without_guardian,
    ),
    Rule(
        id="guardian_unknown",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveAutoriteParentale",),
        population=Population.PUPILS,
        title="Responsable désigné mais absent du fichier des responsables",
        explanation=(
            "L'élève désigne un responsable (autorité parentale) qui n'est pas dans le fichier "
            "PersRelEleve (« PARENT NOT FOUND ») : ce parent n'aura pas de compte."
        ),
        correction=(
            "Signaler à la DSDEN (export incomplet) ; l'école vérifie la fiche du responsable dans "
            "ONDE."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.GUARDIAN_ID,
        check=rules.guardian_unknown,
    ),
    Rule(
        id="duplicate_person",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL, AAFKind.STAFF),
        attributes=("ENTPersonNom", "ENTPersonPrenom", "ENTPersonDateNaissance"),
        population=Population.PEOPLE,
        title="Doublon probable (mêmes nom, prénom et date de naissance)",
        explanation=(
            "Deux fiches de jointures différentes portent les mêmes nom, prénom et date de "
            "naissance (sans tenir compte des accents ni de la casse) : la même personne aurait "
            "deux comptes."
        ),
        correction="L'école (élèves) ou la DSDEN (personnels) vérifie et fusionne les fiches.",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED,
        check=rules.duplicate_person,
    ),
    Rule(
        id="person_outside_perimeter",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.PUPIL, AAFKind.GUARDIAN, AAFKind.STAFF),
        attributes=("ENTPersonStructRattach",),
        population=Population.PEOPLE,
        needs_perimeter=True,
        title="Personne hors du périmètre de la convention",
        explanation=(
            "Élève ou personnel rattaché uniquement à des écoles hors de la liste de la convention,"
            " ou responsable dont tous les élèves le sont : ces données ne doivent pas être reçues."
        ),
        correction=(
            "Ne pas charger ces données ; signaler l'extraction à l'académie et les détruire."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.person_outside_perimeter,
    ),
    # -- guardians ---------------------------------------------------------------------------
    Rule(
        id="guardian_without_pupil",
        severity=Severity.WARNING,
        kinds=(AAFKind.GUARDIAN,),
        attributes=("ENTPersRelEleveEleve",),
        population=Population.GUARDIANS,
        title="Responsable sans élève",
        explanation=(
            "Aucun élève n'est relié au responsable, dans un sens ou dans l'autre : son compte "
            "serait inutile (certains ENT l'ignorent, d'autres le créent)."
        ),
        correction="Signaler à la DSDEN (export) ; l'école vérifie les responsables dans ONDE.",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.guardian_without_pupil,
    ),
    Rule(
        id="guardian_pupil_unknown",
        severity=Severity.WARNING,
        kinds=(AAFKind.GUARDIAN,),
        attributes=("ENTPersRelEleveEleve",),
        population=Population.GUARDIANS,
        title="Élève désigné par un responsable mais absent du fichier des élèves",
        explanation=(
            "Le responsable cite un élève (ENTPersRelEleveEleve) qui n'est pas dans le fichier "
            "Eleve."
        ),
        correction="Signaler à la DSDEN (export incomplet).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.PUPIL_ID,
        check=rules.guardian_pupil_unknown,
    ),
    Rule(
        id="link_pupil_side_only",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL,),
        attributes=("ENTEleveAutoriteParentale", "ENTPersRelEleveEleve"),
        population=Population.PUPILS,
        title="Lien élève → responsable non réciproque",
        explanation=(
            "L'élève désigne le responsable, mais le responsable ne cite pas l'élève : selon l'ENT,"
            " le lien parent-enfant sera créé ou non."
        ),
        correction="Signaler à la DSDEN (cohérence de l'export).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.GUARDIAN_ID,
        check=rules.link_pupil_side_only,
    ),
    Rule(
        id="link_guardian_side_only",
        severity=Severity.WARNING,
        kinds=(AAFKind.GUARDIAN,),
        attributes=("ENTPersRelEleveEleve", "ENTEleveAutoriteParentale"),
        population=Population.GUARDIANS,
        title="Lien responsable → élève non réciproque",
        explanation=(
            "Le responsable cite l'élève, mais l'élève ne le désigne pas comme ayant l'autorité "
            "parentale : le parent pourrait voir un enfant sur lequel il n'a pas d'autorité."
        ),
        correction=(
            "L'école vérifie les responsables légaux de l'élève dans ONDE ; la DSDEN relaie."
        ),
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.PUPIL_ID,
        check=rules.link_guardian_side_only,
    ),
    Rule(
        id="mail_malformed",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE, AAFKind.GUARDIAN, AAFKind.STAFF),
        attributes=("ENTPersonMail", "ENTStructureMailSI"),
        population=Population.RECORDS,
        title="Adresse mail mal formée",
        explanation=(
            "L'adresse mail n'a pas la forme nom@domaine.tld : les notifications et la récupération"
            " de mot de passe échouent."
        ),
        correction=(
            "Le responsable corrige sa fiche auprès de l'école (ONDE) ; la DSDEN pour les "
            "personnels et les écoles."
        ),
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.mail_malformed,
    ),
    Rule(
        id="phone_malformed",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE, AAFKind.GUARDIAN),
        attributes=(
            "ENTPersonTelPerso",
            "ENTPersRelEleveTelMobile",
            "ENTPersRelEleveTelPro",
            "ENTStructureTelephone",
            "ENTStructureFax",
        ),
        population=Population.RECORDS,
        title="Numéro de téléphone mal formé",
        explanation=(
            "Le numéro n'est pas un numéro français à 10 chiffres (ou international en +…) : il ne "
            "pourra pas être appelé ni recevoir de SMS."
        ),
        correction="Le responsable corrige ses coordonnées auprès de l'école (ONDE).",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.phone_malformed,
    ),
    Rule(
        id="postal_code_malformed",
        severity=Severity.WARNING,
        kinds=(AAFKind.STRUCTURE, AAFKind.GUARDIAN),
        attributes=("ENTPersonCodePostal", "ENTStructureCodePostal"),
        population=Population.RECORDS,
        title="Code postal mal formé",
        explanation=(
            "Le code postal d'une adresse en France n'a pas 5 chiffres : courriers et statistiques "
            "par commune sont faussés."
        ),
        correction="L'école corrige l'adresse dans ONDE (la DSDEN pour une école).",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.postal_code_malformed,
    ),
    Rule(
        id="mobile_not_mobile",
        severity=Severity.WARNING,
        kinds=(AAFKind.GUARDIAN,),
        attributes=("ENTPersRelEleveTelMobile",),
        population=Population.GUARDIANS,
        title="Numéro fixe dans le champ téléphone mobile",
        explanation=(
            "Le champ mobile contient un numéro français qui ne commence pas par 06 ou 07 : les SMS"
            " de l'ENT (codes d'activation, alertes) n'arriveront pas."
        ),
        correction="Le responsable corrige ses coordonnées auprès de l'école (ONDE).",
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.mobile_not_mobile,
    ),
    # -- staff -------------------------------------------------------------------------------
    Rule(
        id="staff_without_structure",
        severity=Severity.BLOCKING,
        kinds=(AAFKind.STAFF,),
        attributes=("ENTPersonStructRattach",),
        population=Population.STAFF,
        title="Personnel sans structure de rattachement",
        explanation=(
            "Le personnel n'est rattaché à aucune structure : son compte ne peut être placé dans "
            "aucune école."
        ),
        correction="Signaler à la DSDEN (service des personnels) : affectation manquante.",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.staff_without_structure,
    ),
    Rule(
        id="director_not_attached",
        severity=Severity.WARNING,
        kinds=(AAFKind.STAFF,),
        attributes=("ENTEnsFonctionDir", "ENTPersonStructRattach"),
        population=Population.STAFF,
        title="Directeur d'une école à laquelle il n'est pas rattaché",
        explanation=(
            "Le personnel est déclaré directeur d'une école qui ne figure pas parmi ses structures "
            "de rattachement : il n'aura pas les droits de direction dans l'ENT de cette école."
        ),
        correction="Signaler à la DSDEN (service des personnels).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.director_not_attached,
    ),
    Rule(
        id="teacher_flag_missing",
        severity=Severity.WARNING,
        kinds=(AAFKind.STAFF,),
        attributes=("ENTPersonCategorieEnseignant",),
        population=Population.STAFF,
        title="Catégorie enseignant non renseignée",
        explanation=(
            "L'indicateur « catégorie enseignant » manque : l'ENT ne sait pas s'il doit créer un "
            "profil enseignant ou personnel."
        ),
        correction="Signaler à la DSDEN (service des personnels).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.teacher_flag_missing,
    ),
    # -- every file --------------------------------------------------------------------------
    Rule(
        id="id_mismatch",
        severity=Severity.BLOCKING,
        kinds=EVERY_KIND,
        attributes=("identifier/id",),
        population=Population.RECORDS,
        title="Identifiant d'enregistrement différent de la jointure",
        explanation=(
            "L'identifiant de l'enregistrement (identifier/id) diffère de sa clé de jointure : "
            "certains ENT rejettent l'enregistrement, d'autres créent un second compte."
        ),
        correction="Signaler à l'académie (export AAF).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.OWN_ID,
        check=rules.id_mismatch,
    ),
    Rule(
        id="required_empty",
        severity=Severity.BLOCKING,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Attribut obligatoire vide",
        explanation=(
            "Un attribut obligatoire pour créer le compte est vide (nom, prénom, niveau, type de "
            "structure, jointure…) : l'ENT rejette ou crée mal l'enregistrement."
        ),
        correction=(
            "L'école complète la fiche dans ONDE ; la DSDEN pour les personnels et les structures."
        ),
        corrector=Corrector.SCHOOL,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.required_empty,
    ),
    Rule(
        id="unknown_attribute",
        severity=Severity.INFO,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Attribut inconnu",
        explanation=(
            "L'enregistrement porte un attribut qu'aucun type AAF ne déclare (nouvelle version du "
            "format ?) : il est conservé à part, pas chargé ; il n'est pas listé dans l'annexe 1 de"
            " la convention."
        ),
        correction=(
            "Demander à l'académie s'il s'agit d'une évolution du format ; sinon de ne plus "
            "l'envoyer."
        ),
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.unknown_attribute,
    ),
    Rule(
        id="attribute_not_in_convention",
        severity=Severity.WARNING,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Donnée non prévue par la convention (minimisation)",
        explanation=(
            "L'attribut existe dans l'AAF mais l'annexe 1 de la convention ne le prévoit pas pour "
            "ce type de fiche (par exemple les dates d'entrée en classe, ou un attribut d'un autre "
            "type) : la commune ne doit recevoir que les données prévues."
        ),
        correction=(
            "Demander à l'académie de ne plus l'envoyer ; le prestataire ne le charge pas dans "
            "l'ENT."
        ),
        corrector=Corrector.PROVIDER,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.attribute_not_in_convention,
    ),
    Rule(
        id="mojibake",
        severity=Severity.WARNING,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Texte mal encodé (« Ã© » au lieu de « é »)",
        explanation=(
            "Le texte a été encodé deux fois (UTF-8 relu en Latin-1) : noms et prénoms s'affichent "
            "abîmés dans l'ENT."
        ),
        correction=(
            "Si la valeur est aussi abîmée dans ONDE, l'école la corrige ; sinon signaler "
            "l'encodage du fichier à l'académie (export) ou au prestataire (import)."
        ),
        corrector=Corrector.PROVIDER,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.mojibake,
    ),
    Rule(
        id="invalid_value",
        severity=Severity.WARNING,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Valeur non conforme à son type",
        explanation=(
            "Une date, un indicateur O/N, un niveau, un cycle ou un code de lien de parenté n'a pas"
            " une valeur permise : elle n'est pas chargée."
        ),
        correction="Signaler à la DSDEN (export) ; l'école vérifie la fiche dans ONDE.",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.invalid_value,
    ),
    Rule(
        id="malformed_value",
        severity=Severity.WARNING,
        kinds=(AAFKind.PUPIL, AAFKind.GUARDIAN, AAFKind.STAFF),
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Valeur composée mal formée",
        explanation=(
            "Une valeur composée (classe, groupe, fonction, autorité parentale) n'a pas le bon "
            "nombre de champs séparés par $ : elle est lue au mieux."
        ),
        correction="Signaler à l'académie (export AAF).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.malformed_value,
    ),
    Rule(
        id="multiple_values",
        severity=Severity.INFO,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Plusieurs valeurs pour un attribut mono-valué",
        explanation=(
            "Un attribut qui n'a qu'une valeur en a plusieurs : seule la première est gardée."
        ),
        correction="Signaler à l'académie (export AAF).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.multiple_values,
    ),
    Rule(
        id="skipped_record",
        severity=Severity.BLOCKING,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Enregistrement illisible écarté",
        explanation=(
            "Un enregistrement mal formé (XML) a été écarté à la lecture : la personne ou la "
            "structure manque à l'extraction."
        ),
        correction="Signaler le fichier, la ligne et le message à l'académie (export AAF).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.CLEAR,
        check=rules.skipped_record,
    ),
    Rule(
        id="reader_other",
        severity=Severity.WARNING,
        kinds=EVERY_KIND,
        attributes=(ANY_ATTRIBUTE,),
        population=Population.RECORDS,
        title="Autre anomalie de lecture",
        explanation=(
            "Le lecteur a relevé une anomalie de structure du fichier (catégorie erronée, "
            "identifiant absent, opération inattendue…)."
        ),
        correction="Signaler le fichier et la ligne à l'académie (export AAF).",
        corrector=Corrector.ACADEMY,
        value=ValuePolicy.MASKED_IF_PERSONAL,
        check=rules.reader_other,
    ),
)
"""Every rule, in report order within each severity."""

RULE_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}


def _invariants() -> None:
    """Checked at import, like the schema's: a catalogue error never reaches a report."""
    assert len(RULE_BY_ID) == len(RULES), "rule ids must be unique"
    known = schema.KNOWN_ATTRIBUTES | {ANY_ATTRIBUTE, "identifier/id"}
    assert set(AAFKind) == set(schema.KINDS), "one AAFKind per schema kind"
    for r in RULES:
        assert r.id.isidentifier() and r.id == r.id.lower(), r.id
        assert r.kinds and all(isinstance(k, AAFKind) for k in r.kinds), r.id
        assert isinstance(r.kinds, tuple) and isinstance(r.attributes, tuple), r.id
        assert set(r.attributes) <= known, (r.id, set(r.attributes) - known)
        assert isinstance(r.severity, Severity) and isinstance(r.population, Population), r.id
        assert isinstance(r.corrector, Corrector) and isinstance(r.value, ValuePolicy), r.id


_invariants()


def catalogue(rules: Iterable[Rule] = RULES) -> pd.DataFrame:
    """The rules as a table (README, report appendix)."""
    return pd.DataFrame(
        [
            {
                "rule": r.id,
                "severity": r.severity.value,
                "kinds": ", ".join(r.kinds),
                "attributes": ", ".join(r.attributes),
                "title": r.title,
                "explanation": r.explanation,
                "correction": r.correction,
                "corrector": CORRECTOR_LABELS[r.corrector],
            }
            for r in rules
        ]
    )
