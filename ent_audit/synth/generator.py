"""Synthetic first-degree perimeter, written in the real AAF format, with injectable defects.

:func:`generate` builds, from a seed, a Haute-Garonne-like département: schools spread over
communes and circonscriptions, their IEN offices and the DSDEN, pupils in classes, their
guardians (families share them), teachers, directors and other staff. It returns three
extractions in date order: a ``Complet``, a ``Delta`` some weeks later (arrivals, departures,
class and guardian changes) and a later ``Complet`` equal to the state after the delta, plus
the ground truth of what it did. :func:`write` puts them on disk as the academy ships them:
one ``tar.gz`` per extraction, one XML file per kind and part, mixed encodings and line ends,
header comments, DOCTYPE, escaped values.

No real personal data: people's names are random combinations of common French first names
and surnames; mails use reserved ``.example`` domains. Commune and circonscription names are
real Haute-Garonne place names or invented ones.

Defects (:data:`DEFECTS`) are injected into the first ``Complet`` at chosen rates and carried
unchanged into the later one; the delta never touches a defect's records, and every record is
the victim of at most one defect, so a checker can be scored against ``truth.json`` exactly.

Attribute names always come from :mod:`ent_audit.aaf.schema`; file and archive names from
:mod:`ent_audit.aaf.naming`.

``truth.json`` (= ``Perimeter.truth``) holds:

- ``config``: the arguments, the school year, the injected defects (rate, count, French
  description), where defects live (``defect_archives``), the structure types used;
- ``extractions``: archive name, type and date of each extraction, in date order;
- ``counts``: ``{kind: {archive name: number of records}}``;
- ``defects``: ``{defect name: [{kind, jointure, uai, attribute, detail[, related]}]}`` for
  every registered defect (empty list when not injected). ``jointure`` is the victim's
  jointure; ``uai`` the school concerned as written in the first Complet (or null);
  ``related`` the other records involved (first holder of a duplicated INE, the two
  directors, the absent guardian, the other school…);
- ``delta``: arrivals, departures, class changes and guardian changes, and per kind the
  jointures the Delta adds, modifies and deletes.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import functools
import gc
import gzip
import io
import itertools
import json
import tarfile
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np

from ent_audit.aaf import naming, schema

__all__ = [
    "DEFECTS",
    "Defect",
    "Extraction",
    "InjectContext",
    "Perimeter",
    "Record",
    "SynthResult",
    "generate",
    "write",
    "write_perimeter",
]

Op = Literal["add", "modify", "delete"]

KINDS = naming.FIRST_DEGREE_KINDS
"""The four kinds, in the order importers process them."""

# Attribute names by column, straight from the schema tables (never retyped here).
_ST = SimpleNamespace(**{f.column: f.attr for f in schema.STRUCTURE.fields})
_EL = SimpleNamespace(**{f.column: f.attr for f in schema.STUDENT.fields})
_PR = SimpleNamespace(**{f.column: f.attr for f in schema.GUARDIAN.fields})
_PE = SimpleNamespace(**{f.column: f.attr for f in schema.STAFF.fields})

UAI_KEYS = schema.UAI_KEYS
"""Check letters of a UAI: ``UAI_KEYS[n % 23]``, n = the 7 leading digits."""

DELTA_AFTER = dt.timedelta(days=21)
"""The delta is extracted this long after the first complete extraction."""
SECOND_COMPLETE_AFTER = dt.timedelta(days=28)
"""The second complete extraction: the state after the delta, nothing else changed."""

CYCLE_FORMS = ("CYCLE {}", "Cycle {}", "cycle {}")
"""Written forms of ``ENTEleveCycle``; each school uses one."""
ORDINARY_CLASS = "Classe ordinaire"
ULIS_CLASS = "ULIS"

GZIP_LEVEL = 6


def uai_key(digits: str) -> str:
    """The check letter of a UAI whose first 7 characters are ``digits``."""
    return UAI_KEYS[int(digits) % 23]


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One AAF record as the generator means it.

    ``attrs`` maps AAF attribute names to their values in order; ``None`` is written as an
    empty ``<value/>``. A delete record has no attributes. Records of the two complete
    extractions that did not change are the same objects.
    """

    op: Op
    id: str
    attrs: dict[str, list[str | None]]


@dataclass
class Extraction:
    """One extraction: its archive name and its records by kind name."""

    name: naming.ArchiveName
    records: dict[str, list[Record]]


@dataclass
class Perimeter:
    """The generated extractions in date order, and the ground truth (``truth.json``)."""

    extractions: list[Extraction]
    truth: dict


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


# --------------------------------------------------------------------------------------------
# Reference lists (names are common French names, combined at random)
# --------------------------------------------------------------------------------------------


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


_GIRLS = _words(
    "Emma Louise Jade Alice Chloé Lina Léa Rose Anna Mila Inès Ambre Julia Mia Léna Manon "
    "Juliette Lou Zoé Camille Agathe Jeanne Lucie Eléna Sarah Romane Nina Louna Adèle Margaux "
    "Clémence Charlotte Léonie Lola Anaïs Maëlys Océane Élise Héloïse Gabrielle Capucine "
    "Noémie Joséphine Victoire Iris Apolline Maëlle Salomé Éva Clara Yasmine Aya Lana Thaïs"
)
_BOYS = _words(
    "Gabriel Léo Raphaël Arthur Louis Jules Adam Maël Lucas Hugo Noah Liam Gabin Sacha Paul "
    "Nathan Aaron Mohamed Éthan Tom Léon Théo Noé Victor Martin Mathis Axel Timéo Enzo Marius "
    "Naël Baptiste Antoine Robin Valentin Clément Joseph Maxime Célestin Ismaël Eliott Côme "
    "Aurèle Anselme Loïs Yanis Rayan Amir Mathéo Bastien"
)
_WOMEN = _words(
    "Marie Nathalie Isabelle Sylvie Catherine Sandrine Céline Stéphanie Aurélie Émilie Julie "
    "Caroline Virginie Laetitia Hélène Sophie Valérie Christelle Audrey Élodie Mélanie Karine "
    "Séverine Delphine Anne Claire Amélie Marion Pauline Laure Cécile Fanny Mathilde Noëlle "
    "Françoise Geneviève Anne-Sophie Marie-Claire Fatima Samira Agnès Béatrice Ophélie Maïté"
)
_MEN = _words(
    "Jean Pierre Michel Philippe Nicolas Christophe Stéphane Sébastien Julien Frédéric Laurent "
    "Olivier David Éric Thierry Jérôme Vincent Cédric François Guillaume Mathieu Benoît "
    "Yannick Grégory Damien Fabien Romain Alexandre Thomas Jérémy Hervé Loïc Gaël Jean-Pierre "
    "Jean-Marc Karim Mehdi Rachid Joël Raphaël Bruno Gilles Xavier"
)
_SURNAMES = (
    *_words(
        "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel "
        "Lefèvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine "
        "Rousseau Vincent Muller Faure André Mercier Blanc Guérin Boyer Garnier Chevalier "
        "François Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel "
        "Mathieu Masson Marchand Duval Denis Dumont Lemaire Noël Meyer Dufour Meunier Brun "
        "Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche "
        "Renard Schmitt Roy Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas "
        "Lacroix Olivier Bourgeois Benoît Rey Leclerc Rolland Lecomte Lopez Dupuis Hubert Berger "
        "Sanchez Dupuy Moulin Deschamps Huet Perez Fleury Royer Jacquet Poirier Marty Aubry "
        "Carré Charpentier Ménard Maillard Baron Bertin Bailly Hervé Fernandez Collet Léger "
        "Bouvier Prévost Millet Perrot Cousin Germain Besson Pelletier Lévêque Perrier Barré "
        "Lebrun Weber Mallet Hamon Jacob Monnier Michaud Rodriguez Gillet Étienne Tessier Chauvin "
        "Bouchet Lemaître Bénard Maréchal Humbert Reynaud Barthélemy Cordier Pichon Lejeune "
        "Lamy Delaunay Laporte Castex Cazeneuve Dupré Escudier Laffont Lafitte Puech Sabatier "
        "Soulié Teyssier Vergnes Bousquet Cabanes Delmas Fauré Lacombe Lagarde Maury Pujol "
        "Rouquette Salles Sarda Baylac Carrère Espinasse Labat Lasserre Mirouze Ferrié Bonnafous "
        "Azéma Gonçalves Ribeiro Benali Haddad Nguyen Diallo Traoré"
    ),
    "N'Diaye",
    "D'Almeida",
    "Da Silva",
    "Le Gall",
    "De Oliveira",
    "Ben Salah",
)

_COMMUNES = _words(
    "Toulouse|Colomiers|Tournefeuille|Muret|Blagnac|Plaisance-du-Touch|Cugnaux|Balma|L'Union|"
    "Ramonville-Saint-Agne|Saint-Orens-de-Gameville|Castanet-Tolosan|Saint-Gaudens|Frouzins|"
    "Fonsorbes|Villeneuve-Tolosane|Portet-sur-Garonne|Aucamville|Castelginest|Fenouillet|"
    "Saint-Jean|Launaguet|Bessières|Fronton|Grenade|Villemur-sur-Tarn|Revel|"
    "Villefranche-de-Lauragais|Auterive|Carbonne|Cazères|Rieumes|Léguevin|Pibrac|"
    "Cornebarrieu|Aussonne|Seilh|Beauzelle|Mondonville|Brax|Lévignac|Escalquens|Labège|"
    "Quint-Fonsegrives|Saint-Alban|Bruguières|Gratentour|Saint-Lys|Seysses|Roques|Pinsaguel|"
    "Lacroix-Falgarde|Vieille-Toulouse|Auzeville-Tolosane|Montastruc-la-Conseillère|Verfeil|"
    "Lanta|Caraman|Nailloux|Montesquieu-Volvestre|Rieux-Volvestre|Salies-du-Salat|Aspet|"
    "Bagnères-de-Luchon|Montréjeau|Boulogne-sur-Gesse|L'Isle-en-Dodon|Aurignac|"
    "Martres-Tolosane|Saint-Martory|Le Fousseret|Noé|Longages|Lherm|Eaunes|"
    "Labarthe-sur-Lèze|Pins-Justaret|Venerque|Miremont|Cintegabelle|Calmont|Montgiscard|"
    "Baziège|Ayguesvives|Deyme|Donneville|Belberaud|Odars|Flourens|Drémil-Lafage|Mons|"
    "Pechbonnieu|Saint-Geniès-Bellevue|Montberon|Castelmaurou|Rouffiac-Tolosan|"
    "Saint-Loup-Cammas|Villeneuve-lès-Bouloc|Bouloc|Castelnau-d'Estrétefonds|Saint-Rustice|"
    "Cépet|Vacquiers|Labastide-Saint-Sernin|Montjoire|Paulhac|Buzet-sur-Tarn|"
    "Layrac-sur-Tarn|Merville|Daux|Larra|Saint-Paul-sur-Save|Cadours|Cox|Mauzac|"
    "Saint-Clar-de-Rivière|Fontenilles|La Salvetat-Saint-Gilles|Bonrepos-sur-Aussonnelle|"
    "Saiguède|Saint-Thomas|Lavernose-Lacasse|Le Lherm|Montbrun-Lauragais|Corronsac|Pompertuzat|"
    "Vigoulet-Auzil|Clermont-le-Fort|Goyrans|Aureville|Labastidette|Saubens|Roquettes|"
    "Villate|Beaumont-sur-Lèze|Lagardelle-sur-Lèze|Vernet|Grépiac|Aigrefeuille|Lauzerville|"
    "Mervilla|Pechabou|Vallesvilles|Saint-Pierre-de-Lages|Gragnague|Lapeyrouse-Fossat|"
    "Bazus|Garidech|Gémil|Roquesérière|Azas|Villariès|Saint-Sauveur|Ondes|Castelnau-Picampeau",
    "|",
)
_COMMUNE_PREFIXES = _words(
    "Saint-Martin Saint-Pierre Saint-Jean Saint-Paul Saint-Sernin Saint-Félix Saint-Élix "
    "Saint-Amans Saint-Julien Sainte-Foy Castelnau Montesquieu Villeneuve Labastide Montastruc "
    "Montégut Lasbordes Lézat Mauvezin Montgaillard Castéra Lamothe Lacaune Belesta Cassagne "
    "Lavelanet Auriac Bellegarde Fabas Saint-André"
)
_COMMUNE_SUFFIXES = _words(
    "de-Rivière du-Touch de-Lèze sur-Save de-Lauragais de-Comminges sur-Garonne en-Volvestre "
    "d'Aussonnelle sur-Tarn de-Lherm la-Vallée de-Gascogne sur-Girou du-Salat sur-Arize "
    "de-Marestaing d'Arbas de-Boulbonne sur-Louge des-Coteaux de-Montfort du-Lac sur-Ariège "
    "de-Bourrassol"
)
_TOULOUSE_CODES = ("31000", "31100", "31200", "31300", "31400", "31500")

_EPONYMS = _words(
    "Jules Ferry|Jean Jaurès|Victor Hugo|Jean Moulin|Marie Curie|Jacques Prévert|Louise Michel|"
    "Paul Bert|Jean de La Fontaine|Antoine de Saint-Exupéry|Condorcet|Anatole France|"
    "Georges Brassens|Les Tilleuls|Le Château|Les Platanes|Pasteur|Lucie & Raymond Aubrac|"
    "Simone Veil|Olympe de Gouges|Françoise Dolto|Claude Nougaro|Ernest Renan|Michelet|"
    "Jean Macé|Léo Lagrange|Marcel Pagnol|Albert Camus|Les Chênes|Le Bourg|Le Village|"
    "L'Oustal|L'Ormeau|Clément Ader|Émile Zola|Frédéric Mistral|Molière|Voltaire|"
    "Pierre & Marie Curie|Les Pradettes|La Juncasse|Bellefontaine|Lespinet|Les Sables|"
    "Fontaine-Lestang|L'Île aux enfants|Germaine Tillion|Joséphine Baker|Jean Monnet|"
    "Les Coquelicots|Les Violettes|L'Arc-en-ciel|Le Petit Prince|Charles Perrault|"
    "Marie Laurencin|Saint-Exupéry|Port-Garaud|Ricardie|Matabiau|Borderouge|Lalande|Ancely",
    "|",
)
_AMPERSAND_EPONYMS = tuple(e for e in _EPONYMS if "&" in e)
_STREETS = _words(
    "rue des Lilas|avenue Jean Jaurès|chemin du Moulin|impasse des Tilleuls|allée des Pins|"
    "place de l'Église|rue de la République|route de Toulouse|rue Pasteur|boulevard Carnot|"
    "rue du Languedoc|chemin de la Garonne|rue des Écoles|avenue de Lombez|rue Saint-Exupéry|"
    "rue Gambetta|impasse du Stade|chemin des Vignes|rue d'Occitanie|allée des Demoiselles|"
    "rue du Taur|rue de Metz|allée Jean Monnet|rue de la Paix|chemin de Borde Blanche|"
    "rue des Trois Journées|avenue des Pyrénées|rue du Lauragais|rue Alsace-Lorraine|"
    "rue de l'Ormeau|avenue de Muret|chemin des Crêtes|rue Clémence Isaure|place du Marché",
    "|",
)
_COMPLEMENTS = (
    "Résidence Les Acacias",
    "Bâtiment B",
    "Appartement 12",
    "Les Jardins d'Occitanie",
    "Lotissement Le Clos",
    "Escalier 3",
)
_DIRECTIONS = ("Nord", "Sud", "Est", "Ouest", "Centre", "Rive Gauche", "Rive Droite")
_GROUPS = (
    "Chorale",
    "Anglais renforcé",
    "Atelier théâtre",
    "APC lecture",
    "Occitan",
    "Classe découverte",
    "Jardin & nature",
)
_SPECIALITIES = (
    "ANGLAIS",
    "OCCITAN",
    "ESPAGNOL",
    "ALLEMAND",
    "MAITRE FORMATEUR",
    "ANIMATEUR TICE",
    "RESSOURCE SCIENCES",
)
_AREAS = ("0561", "0562", "0534", "0567", "0581", "0582", "0563")
"""Landline prefixes of the area."""
_MAIL_DOMAINS = ("example.com", "example.org", "example.net")
_STAFF_DOMAIN = "ac-toulouse.example"
_ACADEMY = "TOULOUSE"
_MINISTRY = "MINISTERE DE L'EDUCATION NATIONALE"
_SECTOR = "PU"
_STRUCT_SCHOOL = "ECOLE"
_STRUCT_CIRC = "CIRCONSCRIPTION"
_STRUCT_DSDEN = "INSPECTIONS ACADEMIQUES"

_SCHOOL_KINDS = {
    "maternelle": (0, 1, 2, 3),
    "elementaire": (4, 5, 6, 7, 8),
    "primaire": tuple(range(9)),
}
_SCHOOL_LABELS = {
    "maternelle": "École maternelle",
    "elementaire": "École élémentaire",
    "primaire": "École primaire",
}
_LEVEL_WEIGHT = np.array([0.15, 1, 1, 1, 1, 1, 1, 1, 1])
"""Few TPS: a toute petite section is rare."""

_GUARDIAN_PLANS: tuple[tuple[float, tuple[tuple[str, str], ...]], ...] = (
    # probability, ((gender F/M/X, link code), ...)
    (0.76, (("F", "10"), ("M", "20"))),
    (0.04, (("F", "10"), ("X", "38"))),
    (0.02, (("F", "10"), ("X", "90"))),
    (0.11, (("F", "10"),)),
    (0.04, (("M", "20"),)),
    (0.02, (("X", "50"),)),
    (0.01, (("F", "42"),)),
)
_PLAN_CUMULATIVE = list(itertools.accumulate(p for p, _ in _GUARDIAN_PLANS))


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


@functools.cache
def _ascii(text: str) -> str:
    """Lower-case ASCII slug of a name, for mail local parts."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum() or c in "-.")


def _names_key(last: str, first: str) -> tuple[str, str]:
    """Names as a duplicate check compares them: no case, accents, spaces or punctuation."""
    return (
        _ascii(last).replace("-", "").replace(".", ""),
        _ascii(first).replace("-", "").replace(".", ""),
    )


def _date(d: dt.date) -> str:
    """``dd/mm/yyyy`` (``schema.DATE_FORMAT``), without strftime's per-call cost."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _phone(digits: str, style: int) -> str:
    """A 10-digit French number in one of the free-text forms real files carry."""
    pairs = [digits[i : i + 2] for i in range(0, 10, 2)]
    if style == 0:
        return digits
    if style == 1:
        return " ".join(pairs)
    if style == 2:
        return f"+33 {digits[1]} " + " ".join(pairs[1:])
    return ".".join(pairs)


def _split_total(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integers proportional to ``weights``, each at least ``minimum``, summing to ``total``."""
    base = np.full(len(weights), minimum, dtype=np.int64)
    rest = total - int(base.sum())
    raw = rest * weights / weights.sum()
    out = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - out), kind="stable")
    out[order[: rest - int(out.sum())]] += 1
    return base + out


class _IdPool:
    """Opaque, unique digit strings drawn in increasing blocks, shuffled within a block."""

    def __init__(self, rng: np.random.Generator, start: int, max_gap: int) -> None:
        self._rng = rng
        self._next = start
        self._max_gap = max_gap

    def take(self, n: int) -> list[str]:
        if n <= 0:
            return []
        values = self._next + np.cumsum(self._rng.integers(1, self._max_gap, n))
        self._next = int(values[-1])
        self._rng.shuffle(values)
        return [str(v) for v in values.tolist()]

    def one(self) -> str:
        return self.take(1)[0]


class _Random:
    """A numpy Generator plus fast scalar draws.

    numpy's per-call overhead dominates single draws, and the generator makes millions of
    them; scalar draws come from a buffer of uniforms, bulk draws go to ``np`` directly.
    Both are deterministic for a given seed.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.np = rng
        self._buf: list[float] = []
        self._pos = 0

    def random(self) -> float:
        if self._pos == len(self._buf):
            self._buf = self.np.random(4096).tolist()
            self._pos = 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def below(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return int(self.random() * n)

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi)."""
        return lo + int(self.random() * (hi - lo))

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def weighted(self, cumulative: Sequence[float]) -> int:
        """Index drawn with the weights whose running sums are ``cumulative``."""
        return bisect.bisect_right(cumulative, self.random() * cumulative[-1])


_FIELD_COLUMNS = {
    k: tuple((f.attr, f.column) for f in spec.fields) for k, spec in schema.KINDS.items()
}


def _record(kind: schema.Kind, jointure: str, values: Mapping[str, Any]) -> Record:
    """A complete-file record with every attribute of ``kind``, in schema order.

    ``values`` maps columns to a string, a list of strings, or None/[] (written ``<value/>``).
    """
    attrs: dict[str, list[str | None]] = {}
    for attr, column in _FIELD_COLUMNS[kind.name]:
        v = values.get(column)
        attrs[attr] = [v] if v.__class__ is str else list(v) if v else [None]
    return Record("add", jointure, attrs)


# --------------------------------------------------------------------------------------------
# The model: who is where (only what the delta and the defects need beyond the records)
# --------------------------------------------------------------------------------------------


@dataclass
class _Class:
    class_id: str
    name: str
    levels: tuple[int, ...]
    value: str
    """The ``ENTPersonClasses`` value."""


@dataclass
class _School:
    index: int
    jointure: str
    uai: str
    kind: str
    commune: int
    circ: int
    postal_code: str
    cycle_form: str
    classes: list[_Class] = field(default_factory=list)
    teachers: list[str] = field(default_factory=list)
    director: str = ""


@dataclass
class _Family:
    children: list[int]
    """Pupil indices."""
    guardians: list[tuple[str, str]]
    """(guardian jointure, link code)."""
    legal: bool = False


@dataclass
class _Model:
    """The first complete extraction and the facts needed to change it coherently."""

    schools: list[_School]
    circ_jointures: list[str]
    pupil_school: list[int]
    """School index of each pupil (pupils are indexed as in ``records["Eleve"]``)."""
    pupil_class: list[_Class]
    pupil_level: list[int]
    """Index into ``schema.LEVELS``."""
    families: list[_Family]
    records: dict[str, list[Record]]
    """Complet 1, by kind."""
    communes: list[str]


class _Builder:
    """Draws the first complete extraction from one random stream."""

    def __init__(
        self, seed: int, n_schools: int, n_pupils: int, start: dt.date, ids: _IdPool, ines: _IdPool
    ) -> None:
        self.rng = _Random(np.random.default_rng([seed, 0]))
        self.n_schools = n_schools
        self.n_pupils = n_pupils
        self.start = start
        self.year = start.year if start.month >= 8 else start.year - 1
        self.year_label = f"{self.year}-{self.year + 1}"
        self.ids = ids
        self.ines = ines
        self.struct_ids = _IdPool(np.random.default_rng([seed, 8]), 1000, 50)
        self._dsden: tuple[str, str] = ("", "")
        self._circ_communes: list[str] = []
        self._legal_ids: list[str] = []
        self._births: set[tuple[str, str, str, dt.date]] = set()

    # -- geography ---------------------------------------------------------------------------

    def communes(self) -> tuple[list[str], list[list[str]], np.ndarray]:
        """Commune names, their postal codes, and the number of schools in each."""
        n = max(1, min(self.n_schools, round(self.n_schools * 0.3)))
        names = list(_COMMUNES)
        invented = [f"{p}-{s}" for s in _COMMUNE_SUFFIXES for p in _COMMUNE_PREFIXES]
        self.rng.np.shuffle(invented)
        names += [c for c in invented if c not in names]
        k = 2
        while len(names) < n:
            names += [f"{c} {k}" for c in _COMMUNES]
            k += 1
        names = names[:n]
        codes = [list(_TOULOUSE_CODES)] + [
            [f"31{int(c):03d}"] for c in (self.rng.np.integers(1, 89, n - 1) * 10).tolist()
        ]
        if n == 1:
            per = np.array([self.n_schools])
        else:
            toulouse = max(1, round(0.18 * self.n_schools))
            weights = 1.0 / np.arange(1, n) ** 0.9
            self.rng.np.shuffle(weights)
            per = np.concatenate([[toulouse], _split_total(self.n_schools - toulouse, weights, 1)])
        return names, codes, per

    def schools(
        self,
    ) -> tuple[
        list[_School], list[str], list[tuple[str, str]], list[str], list[list[str]], np.ndarray
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
        sizes = _split_total(self.n_pupils, np.array(raw), min(5, self.n_pupils // self.n_schools))

        # Circonscriptions: contiguous runs of schools ordered by commune, named after the
        # commune most of their schools sit in.
        n_circ = max(min(2, self.n_schools), round(self.n_schools / 32))
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
                label = f"{main} {_DIRECTIONS[k % len(_DIRECTIONS)]}"
                if k >= len(_DIRECTIONS):
                    label += f" {k // len(_DIRECTIONS) + 1}"
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
                _School(
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

    def _phone_number(self, prefix: str) -> str:
        """Ten digits starting with ``prefix``; a bare ``05`` gets a Haute-Garonne area."""
        if prefix == "05":
            prefix = self.rng.pick(_AREAS)
        rest = 10 - len(prefix)
        return prefix + f"{self.rng.below(10**rest):0{rest}d}"

    def structure_records(
        self,
        schools: list[_School],
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
            eponym = rng.pick(_AMPERSAND_EPONYMS if s.index % 20 == 1 else _EPONYMS)
            label = _SCHOOL_LABELS[s.kind]
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
                _record(
                    schema.STRUCTURE,
                    s.jointure,
                    {
                        "jointure": s.jointure,
                        "uai": s.uai,
                        "name": name,
                        "struct_type": _STRUCT_SCHOOL,
                        "ministry": _MINISTRY,
                        "sector": _SECTOR,
                        "circonscription": labels[s.circ],
                        "commune": commune,
                        "rpi": rpi,
                        "academy": _ACADEMY,
                        "address": f"{rng.between(1, 60)} {rng.pick(_STREETS)}",
                        "po_box": f"BP {rng.between(1, 90)}" if rng.random() < 0.05 else None,
                        "postal_code": s.postal_code,
                        "city": commune.upper(),
                        "phone": _phone(self._phone_number("05"), rng.below(4)),
                        "fax": _phone(self._phone_number("05"), 1) if rng.random() < 0.3 else None,
                        "mail": f"ce.{s.uai.lower()}@{_STAFF_DOMAIN}",
                    },
                )
            )
        for (j, uai), label, seat in zip(circs, labels, self._circ_communes, strict=True):
            records.append(
                _record(
                    schema.STRUCTURE,
                    j,
                    {
                        "jointure": j,
                        "uai": uai,
                        "name": f"Circonscription de {label}",
                        "struct_type": _STRUCT_CIRC,
                        "ministry": _MINISTRY,
                        "sector": _SECTOR,
                        "circonscription": label,
                        "commune": seat,
                        "academy": _ACADEMY,
                        "address": "Cité administrative$Bâtiment A",
                        "postal_code": codes[0][0],
                        "city": communes[0].upper(),
                        "phone": _phone(self._phone_number("05"), 1),
                        "mail": f"ien.{_ascii(label).replace('-', '')[:20]}@{_STAFF_DOMAIN}",
                    },
                )
            )
        j, uai = self._dsden
        records.append(
            _record(
                schema.STRUCTURE,
                j,
                {
                    "jointure": j,
                    "uai": uai,
                    "name": "Direction des services départementaux de l'éducation nationale de la "
                    "Haute-Garonne",
                    "struct_type": _STRUCT_DSDEN,
                    "ministry": _MINISTRY,
                    "sector": _SECTOR,
                    "siren": "130000000",
                    "commune": communes[0],
                    "academy": _ACADEMY,
                    "address": "75 rue Saint-Roch",
                    "po_box": "BP 7203",
                    "postal_code": "31073",
                    "city": "TOULOUSE CEDEX 7",
                    "phone": "05 67 76 56 00",
                    "mail": f"ce.dsden31@{_STAFF_DOMAIN}",
                },
            )
        )
        return records

    # -- pupils and classes ------------------------------------------------------------------

    def classes(
        self, schools: list[_School], sizes: np.ndarray
    ) -> tuple[list[int], list[_Class], list[int], list[bool]]:
        """Levels drawn per school, pupils sorted by level and cut into classes."""
        rng = self.rng
        p_school: list[int] = []
        p_class: list[_Class] = []
        p_level: list[int] = []
        for s in schools:
            n = int(sizes[s.index])
            allowed = np.array(_SCHOOL_KINDS[s.kind])
            w = _LEVEL_WEIGHT[allowed]
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
                cls = _Class(cid, name, uniq, f"{s.jointure}${self.year_label}$${cid}${name}")
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

    def families(self, p_school: list[int], schools: list[_School]) -> list[_Family]:
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
        families: list[_Family] = []
        for members in by_commune.values():
            sizes = rng.np.choice([1, 2, 3], len(members), p=[0.80, 0.17, 0.03]).tolist()
            pos = k = 0
            while pos < len(members):
                families.append(_Family(members[pos : pos + sizes[k]], []))
                pos += sizes[k]
                k += 1
        n_legal = max(1, round(len(placed) / 40))
        legal_ids = self.ids.take(n_legal)
        for i, p in enumerate(sorted(placed)):
            families.append(_Family([p], [(legal_ids[i % n_legal], "51")], legal=True))
        self._legal_ids = legal_ids
        return families

    # -- people ------------------------------------------------------------------------------

    def new_ines(self, n: int) -> list[str]:
        """Unique INE-like ids: 10 digits and a key letter (no public key rule is claimed)."""
        return [f"{v:010d}{UAI_KEYS[v % 23]}" for v in map(int, self.ines.take(n))]

    def _other_names(self, pool: Sequence[str]) -> list[str]:
        """Zero to two other first names."""
        r = self.rng.random()
        k = 0 if r < 0.5 else 1 if r < 0.85 else 2
        return [self.rng.pick(pool) for _ in range(k)]

    def _surname(self) -> str:
        return self.rng.pick(_SURNAMES)

    def _address(self) -> str:
        rng = self.rng
        line = f"{rng.between(1, 120)} {rng.pick(_STREETS)}"
        if rng.random() < 0.15:
            return f"{rng.pick(_COMPLEMENTS)}${line}$$"
        return f"{line}$$$"

    def guardian_contacts(
        self, first: str, last: str, postal_code: str, city: str
    ) -> dict[str, Any]:
        """Address, phones and mail of a natural person."""
        rng = self.rng
        r = [rng.random() for _ in range(6)]
        styles = [rng.below(4) for _ in range(3)]
        mobile = self._phone_number(("06", "07")[int(r[0] < 0.4)])
        return {
            "address": self._address(),
            "postal_code": postal_code,
            "city": city,
            "country": "FRANCE",
            "address_sharing": "O" if r[1] < 0.4 else "N",
            "home_phone": _phone(self._phone_number("05"), styles[0]) if r[2] < 0.45 else None,
            "mobile_phone": _phone(mobile, styles[1]) if r[3] < 0.88 else None,
            "mail": f"{_ascii(first)}.{_ascii(last)}{rng.between(1, 99)}@{rng.pick(_MAIL_DOMAINS)}"
            if r[4] < 0.75
            else None,
            "work_phone": _phone(self._phone_number("05"), styles[2]) if r[5] < 0.2 else None,
        }

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
        names = _WOMEN if gender == "F" else _MEN
        first = rng.pick(names)
        if code == "20" or (code == "10" and single):
            birth = last = surname
        elif code == "10":
            birth = self._surname()
            last = surname if rng.random() < 0.5 else birth
        else:
            birth = last = self._surname()
        contacts = self.guardian_contacts(first, last, postal_code, city)
        if household is not None and rng.random() < 0.9:
            for key in ("address", "postal_code", "city", "home_phone"):
                contacts[key] = household[key]
        return _record(
            schema.GUARDIAN,
            gid,
            {
                "jointure": gid,
                "birth_name": birth,
                "last_name": last,
                "first_name": first,
                "other_first_names": self._other_names(names),
                "title": "Mme" if gender == "F" else "M.",
                "students": child_ids,
                **contacts,
            },
        )

    def family_guardians(
        self, fam: _Family, surname: str, postal_code: str, city: str, child_ids: list[str]
    ) -> list[Record]:
        """Draw the guardians of a natural family; fills ``fam.guardians``."""
        plan = _GUARDIAN_PLANS[self.rng.weighted(_PLAN_CUMULATIVE)][1]
        records: list[Record] = []
        for (gender, code), gid in zip(plan, self.ids.take(len(plan)), strict=True):
            household = None
            if records:
                first = records[0].attrs
                household = {
                    "address": first[_PR.address][0],
                    "postal_code": first[_PR.postal_code][0],
                    "city": first[_PR.city][0],
                    "home_phone": first[_PR.home_phone][0],
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

    def legal_guardians(self, families: list[_Family], pupil_ids: list[str]) -> list[Record]:
        """The ASE (aide sociale à l'enfance) legal persons: no first name, no civilité."""
        children: dict[str, list[str]] = {j: [] for j in self._legal_ids}
        for fam in families:
            if fam.legal:
                children[fam.guardians[0][0]].append(pupil_ids[fam.children[0]])
        records = []
        for k, j in enumerate(self._legal_ids):
            records.append(
                _record(
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
        school: _School,
        cls: _Class,
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
        first = rng.pick(_GIRLS if girl else _BOYS)
        born = self._unique_birth("Eleve", surname, first, born)
        elementary = level >= 4
        return _record(
            schema.STUDENT,
            jointure,
            {
                "jointure": jointure,
                "birth_name": surname,
                "last_name": surname,
                "first_name": first,
                "other_first_names": self._other_names(_GIRLS if girl else _BOYS),
                "title": "Mme" if girl else "M.",
                "ine": ine,
                "birth_date": _date(born),
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
        names = _names_key(last, first)
        jan1 = dt.date(born.year, 1, 1)
        while (kind, *names, born) in self._births:
            born = jan1 + dt.timedelta(days=((born - jan1).days + 1) % 365)
        self._births.add((kind, *names, born))
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
        first = rng.pick(_WOMEN if woman else _MEN)
        birth = self._surname()
        last = self._surname() if woman and rng.random() < 0.4 else birth
        local = f"{_ascii(first)}.{_ascii(last)}"
        if mails is not None:
            mails[local] = mails.get(local, 0) + 1
            if mails[local] > 1:
                local += str(mails[local])
        born = dt.date(self.year - rng.between(24, 63), 1, 1) + dt.timedelta(days=rng.below(365))
        born = self._unique_birth("PersEducNat", last, first, born)
        return _record(
            schema.STAFF,
            jointure,
            {
                "jointure": jointure,
                "birth_name": birth,
                "last_name": last,
                "first_name": first,
                "other_first_names": self._other_names(_WOMEN if woman else _MEN),
                "title": "Mme" if woman else "M.",
                "birth_date": _date(born),
                "mail": f"{local}@{_STAFF_DOMAIN}",
                "structures": structure,
                "functions": functions,
                "is_teacher": "O" if teacher else "N",
                "director_of": director_of,
                "specialities": list(specialities),
            },
        )

    def staff(
        self, schools: list[_School], circs: list[tuple[str, str]], sizes: np.ndarray
    ) -> list[Record]:
        """One teacher per class, one of them director; AESH; IEN offices; DSDEN."""
        rng = self.rng
        mails: dict[str, int] = {}
        records = []
        for s in schools:
            ids = self.ids.take(len(s.classes))
            s.teachers = ids
            s.director = rng.pick(ids)
            for j in ids:
                functions = [f"{s.jointure}$ENS$ENSEIGNEMENT$-$-"]
                if j == s.director:
                    functions.append(f"{s.jointure}$DIR$DIRECTION$-$-")
                spec = [rng.pick(_SPECIALITIES)] if rng.random() < 0.15 else []
                records.append(
                    self.staff_record(
                        j,
                        s.jointure,
                        functions,
                        True,
                        s.jointure if j == s.director else None,
                        spec,
                        mails,
                    )
                )
        n_aesh = max(1, round(self.n_pupils / 400))
        weights = sizes / sizes.sum()
        for k in rng.np.choice(len(schools), n_aesh, p=weights).tolist():
            s = schools[k]
            records.append(
                self.staff_record(
                    self.ids.one(),
                    s.jointure,
                    [f"{s.jointure}$EDU$ACCOMPAGNANT ELEVE EN SITUATION DE HANDICAP$-$-"],
                    False,
                    mails=mails,
                )
            )
        for circ, _uai in circs:
            records.append(
                self.staff_record(
                    self.ids.one(),
                    circ,
                    [f"{circ}$DIR$INSPECTION DE CIRCONSCRIPTION$-$-"],
                    False,
                    mails=mails,
                )
            )
            for _ in range(2):
                records.append(
                    self.staff_record(
                        self.ids.one(),
                        circ,
                        [f"{circ}$ENS$CONSEILLER PEDAGOGIQUE$-$-"],
                        True,
                        specialities=["CONSEILLER PEDAGOGIQUE"],
                        mails=mails,
                    )
                )
        dsden = self._dsden[0]
        records.append(
            self.staff_record(
                self.ids.one(), dsden, [f"{dsden}$DIR$DIRECTION ACADEMIQUE$-$-"], False, mails=mails
            )
        )
        for label in ("CONSEILLER TECHNIQUE NUMERIQUE", "GESTION DES ECOLES"):
            records.append(
                self.staff_record(
                    self.ids.one(), dsden, [f"{dsden}$-${label}$-$-"], False, mails=mails
                )
            )
        return records

    def groups(self, schools: list[_School]) -> list[list[str]]:
        """``ENTPersonGroupes`` values offered per school (and the ULIS group)."""
        out = []
        for s in schools:
            base = self.rng.between(100, 900)
            k = self.rng.below(3)
            picks = self.rng.np.choice(len(_GROUPS), k, replace=False).tolist()
            out.append(
                [
                    f"{s.jointure}${self.year_label}$$G{base + i}${_GROUPS[g]}"
                    for i, g in enumerate(picks)
                ]
                + [f"{s.jointure}${self.year_label}$$G{base + 9}$ULIS école"]
            )
        return out

    # -- everything --------------------------------------------------------------------------

    def build(self) -> _Model:
        schools, labels, circs, communes, codes, sizes = self.schools()
        structures = self.structure_records(schools, labels, circs, communes, codes)
        p_school, p_class, p_level, p_ulis = self.classes(schools, sizes)
        families = self.families(p_school, schools)
        pupil_ids = self.ids.take(len(p_school))
        ines = self.new_ines(len(p_school))
        school_groups = self.groups(schools)

        guardians: list[Record] = []
        pupil_family: list[_Family | None] = [None] * len(p_school)
        surnames: list[str] = [""] * len(p_school)
        for fam in families:
            for p in fam.children:
                pupil_family[p] = fam
            if fam.legal:
                surnames[fam.children[0]] = self._surname()
                continue
            surname = self._surname()
            for p in fam.children:
                surnames[p] = surname
            school = schools[p_school[fam.children[0]]]
            guardians += self.family_guardians(
                fam,
                surname,
                school.postal_code,
                communes[school.commune].upper(),
                [pupil_ids[p] for p in fam.children],
            )
        guardians += self.legal_guardians(families, pupil_ids)

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
                self.pupil_record(
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
        return _Model(
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


# --------------------------------------------------------------------------------------------
# The delta
# --------------------------------------------------------------------------------------------


@dataclass
class _Delta:
    records: dict[str, list[Record]]
    """Delta records by kind (ops mixed, ordered by id)."""
    after: dict[str, list[Record]]
    """The complete state after the delta, by kind."""
    touched: set[tuple[str, str]]
    """(kind, jointure) of every record the delta adds, modifies or deletes."""
    truth: dict


def _modified(rec: Record, **changes: list[str | None]) -> Record:
    attrs = dict(rec.attrs)
    attrs.update(changes)
    return Record("modify", rec.id, attrs)


def _build_delta(model: _Model, builder: _Builder, seed: int, date: dt.date) -> _Delta:
    """Departures, class changes, guardian changes and arrivals, each on distinct records."""
    rng = _Random(np.random.default_rng([seed, 1]))
    builder.rng = rng  # the builder's drawing helpers now draw from the delta stream
    pupils = model.records["Eleve"]
    guardians = {r.id: r for r in model.records["PersRelEleve"]}
    n = len(pupils)
    adds: dict[str, list[Record]] = {"Eleve": [], "PersRelEleve": []}
    mods: dict[str, dict[str, Record]] = {"Eleve": {}, "PersRelEleve": {}}
    dels: dict[str, list[str]] = {"Eleve": [], "PersRelEleve": []}
    truth: dict[str, Any] = {
        "arrivals": [],
        "departures": [],
        "class_changes": [],
        "guardian_changes": [],
    }
    natural = [f for f in model.families if not f.legal]
    order = rng.np.permutation(len(natural)).tolist()
    cursor = 0

    # Departures: whole families leave; their guardians go with them.
    target = max(1, round(0.008 * n))
    left = 0
    while left < target and cursor < len(order):
        fam = natural[order[cursor]]
        cursor += 1
        for p in fam.children:
            dels["Eleve"].append(pupils[p].id)
            truth["departures"].append(
                {
                    "jointure": pupils[p].id,
                    "_school": model.schools[model.pupil_school[p]].jointure,
                    "guardians_deleted": [g for g, _ in fam.guardians],
                }
            )
        dels["PersRelEleve"] += [g for g, _ in fam.guardians]
        left += len(fam.children)

    # Guardian changes: a new guardian joins a one-guardian family; contact details change.
    target = max(1, round(0.003 * n))
    new_guardians = contacts = 0
    while (new_guardians < (target + 1) // 2 or contacts < target // 2 + 1) and cursor < len(order):
        fam = natural[order[cursor]]
        cursor += 1
        kids = [pupils[p].id for p in fam.children]
        school = model.schools[model.pupil_school[fam.children[0]]]
        if len(fam.guardians) == 1 and new_guardians < (target + 1) // 2:
            code = rng.pick(("20", "50", "90", "38"))
            gid = builder.ids.one()
            adds["PersRelEleve"].append(
                builder.guardian(
                    gid,
                    "M" if code == "20" else "X",
                    code,
                    builder._surname(),
                    False,
                    school.postal_code,
                    model.communes[school.commune].upper(),
                    kids,
                )
            )
            for p in fam.children:
                rec = pupils[p]
                mods["Eleve"][rec.id] = _modified(
                    rec, **{_EL.guardians: [*rec.attrs[_EL.guardians], f"{gid}${code}"]}
                )
            truth["guardian_changes"].append(
                {
                    "change": "new_guardian",
                    "guardian": gid,
                    "link_code": code,
                    "students": kids,
                    "_school": school.jointure,
                }
            )
            new_guardians += 1
        elif contacts < target // 2 + 1:
            gid = fam.guardians[0][0]
            rec = guardians[gid]
            style = rng.below(4)
            changes = {
                _PR.mobile_phone: [_phone(builder._phone_number("06"), style)],
                _PR.address: [builder._address()],
            }
            mods["PersRelEleve"][gid] = _modified(rec, **changes)
            truth["guardian_changes"].append(
                {
                    "change": "contact",
                    "guardian": gid,
                    "attributes": sorted(changes),
                    "students": kids,
                    "_school": school.jointure,
                }
            )
            contacts += 1
    touched_families = set(order[:cursor])  # no pupil is changed twice

    # Class changes: a pupil moves to another class of the same school holding its level.
    target = max(1, round(0.004 * n))
    family_of: dict[int, int] = {}
    for k, fam in enumerate(natural):
        for p in fam.children:
            family_of[p] = k
    moved = 0
    for p in rng.np.permutation(n).tolist():
        if moved >= target:
            break
        if p not in family_of or family_of[p] in touched_families:
            continue
        current = model.pupil_class[p]
        school = model.schools[model.pupil_school[p]]
        options = [
            c for c in school.classes if c is not current and model.pupil_level[p] in c.levels
        ]
        if not options:
            continue
        to = rng.pick(options)
        rec = pupils[p]
        mods["Eleve"][rec.id] = _modified(rec, **{_EL.classes: [to.value]})
        moved += 1
        truth["class_changes"].append(
            {
                "jointure": rec.id,
                "_school": school.jointure,
                "from": current.class_id,
                "to": to.class_id,
            }
        )

    # Arrivals: new families (1-2 children in one school) with new guardians.
    target = max(1, round(0.01 * n))
    sizes = np.bincount(model.pupil_school, minlength=len(model.schools)).astype(float)
    arrived = 0
    while arrived < target:
        school = model.schools[int(rng.np.choice(len(sizes), p=sizes / sizes.sum()))]
        k = min(target - arrived, 1 if rng.random() < 0.7 else 2)
        kids = builder.ids.take(k)
        fam = _Family([], [])
        surname = builder._surname()
        adds["PersRelEleve"] += builder.family_guardians(
            fam, surname, school.postal_code, model.communes[school.commune].upper(), kids
        )
        for j in kids:
            cls = rng.pick(school.classes)
            level = rng.pick(cls.levels)
            adds["Eleve"].append(
                builder.pupil_record(
                    j, builder.new_ines(1)[0], surname, school, cls, level, False, fam.guardians, []
                )
            )
            truth["arrivals"].append(
                {
                    "jointure": j,
                    "_school": school.jointure,
                    "class_id": cls.class_id,
                    "guardians": [g for g, _ in fam.guardians],
                }
            )
        arrived += k

    records: dict[str, list[Record]] = {k: [] for k in KINDS}
    after: dict[str, list[Record]] = {}
    touched: set[tuple[str, str]] = set()
    summary: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        a, m, d = adds.get(kind, []), mods.get(kind, {}), set(dels.get(kind, []))
        delta = a + list(m.values()) + [Record("delete", j, {}) for j in sorted(d)]
        records[kind] = sorted(delta, key=lambda r: r.id)
        after[kind] = [
            Record("add", m[r.id].id, m[r.id].attrs) if r.id in m else r
            for r in model.records[kind]
            if r.id not in d
        ] + a
        touched |= {(kind, r.id) for r in delta}
        summary[kind] = {"add": sorted(r.id for r in a), "modify": sorted(m), "delete": sorted(d)}
    truth["records"] = summary
    return _Delta(records, after, touched, truth)


# --------------------------------------------------------------------------------------------
# Defects
# --------------------------------------------------------------------------------------------


class InjectContext:
    """What a defect sees and may change: the complete states that carry the defects.

    Every change goes through the record objects of the first complete extraction, which the
    later complete extraction shares for every record the delta did not touch; records
    removed by a defect are removed from every complete state.
    """

    def __init__(
        self,
        model: _Model,
        states: list[dict[str, list[Record]]],
        used: set[tuple[str, str]],
        ids: _IdPool,
        start: dt.date,
    ) -> None:
        self.model = model
        self.states = states
        """The complete extractions that carry the defects, by kind."""
        self.used = used
        """(kind, jointure) of the records no defect may take: victims so far, and every
        record the delta touches."""
        self.ids = ids
        self.start = start
        """Date of the first complete extraction."""
        self.rng = np.random.default_rng(0)
        """Set to the defect's own stream before each injection."""
        self.index: dict[str, dict[str, Record]] = {
            k: {r.id: r for r in recs} for k, recs in states[0].items()
        }
        """Records of the first complete extraction by kind and jointure."""
        self.removed: set[int] = set()
        """``id()`` of the removed records (shared by every state that holds them)."""
        self.school_by_jointure = {s.jointure: s for s in model.schools}

    @functools.cached_property
    def births(self) -> set[tuple[str, str, str | None]]:
        """Names and birth date of every pupil of every state: a defect must not make two
        pupils look like one person (an audit's probable duplicate)."""
        return {
            (
                *_names_key(r.attrs[_EL.last_name][0] or "", r.attrs[_EL.first_name][0] or ""),
                r.attrs[_EL.birth_date][0],
            )
            for state in self.states
            for r in state["Eleve"]
        }

    def free(self, kind: str, *jointures: str) -> bool:
        return all((kind, j) not in self.used for j in jointures)

    def claim(self, kind: str, *jointures: str) -> None:
        self.used.update((kind, j) for j in jointures)

    def take(self, kind: str, jointure: str) -> Record | None:
        """Claim a record for one defect; None when another defect or the delta has it."""
        if not self.free(kind, jointure):
            return None
        self.claim(kind, jointure)
        return self.rec(kind, jointure)

    def remove(self, kind: str, jointure: str) -> None:
        self.removed.add(id(self.index[kind][jointure]))

    def rec(self, kind: str, jointure: str) -> Record:
        return self.index[kind][jointure]

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.integers(len(seq)))]

    def finish(self) -> None:
        """Apply the deferred removals to every complete state."""
        if not self.removed:
            return
        for state in self.states:
            for kind in state:
                state[kind] = [r for r in state[kind] if id(r) not in self.removed]


Entry = dict[str, Any]


@dataclass(frozen=True)
class Defect:
    """One kind of defect a checker should find.

    ``eligible`` lists the candidate victims; ``apply`` turns one candidate into a defect and
    returns its truth entry, or None when the candidate clashes with an earlier victim.
    """

    name: str
    kind: str
    description: str
    eligible: Callable[[InjectContext], list[Any]]
    apply: Callable[[InjectContext, Any], Entry | None]

    def inject(self, ctx: InjectContext, rate: float) -> list[Entry]:
        """Inject ``max(1, round(rate * eligible))`` defects (fewer if candidates run out)."""
        candidates = self.eligible(ctx)
        if rate <= 0 or not candidates:
            return []
        wanted = max(1, round(rate * len(candidates)))
        entries: list[Entry] = []
        for i in ctx.rng.permutation(len(candidates)).tolist():
            if len(entries) >= wanted:
                break
            entry = self.apply(ctx, candidates[i])
            if entry is not None:
                entries.append(entry)
        return entries


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
    return [v for v in rec.attrs[_PR.students] if v]


def _guardian_ids(rec: Record) -> list[str]:
    return [v.split("$")[0] for v in rec.attrs[_EL.guardians] if v]


def _school_of(rec: Record) -> str:
    return rec.attrs[_EL.structures][0] or ""


def _natural_guardians(ctx: InjectContext) -> list[str]:
    return [j for j, r in ctx.index["PersRelEleve"].items() if r.attrs[_PR.first_name][0]]


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
        _EL.guardians,
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
    links = [v for v in pupil.attrs[_EL.guardians] if v and v.split("$")[0] != gid]
    if not links:
        return None
    ctx.claim("PersRelEleve", gid)
    ctx.claim("Eleve", kids[0])
    pupil.attrs[_EL.guardians] = links
    guardian.attrs[_PR.students] = [None]
    return _entry("PersRelEleve", gid, _PR.students, "responsable désigné par aucun élève")


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
    guardian.attrs[_PR.students] = [k for k in kids if k != kid]
    return _entry(
        "Eleve",
        kid,
        _EL.guardians,
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
    ine = ctx.rec("Eleve", other).attrs[_EL.ine][0]
    rec.attrs[_EL.ine] = [ine]
    return _entry(
        "Eleve", pid, _EL.ine, f"INE {ine} déjà porté par l'élève {other}", _school_of(rec), [other]
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
    ine = rec.attrs[_EL.ine][0] or ""
    bad = (ine[:-1], ine + "7", f"{ine[:5]} {ine[5:]}", ine[:-1] + "-")[int(ctx.rng.integers(4))]
    rec.attrs[_EL.ine] = [bad]
    return _entry("Eleve", pid, _EL.ine, f"INE {bad!r} mal formé", _school_of(rec))


@_defect("wrong_uai_key", "EtabEducNat", "Code UAI dont la lettre clé est fausse.", _schools)
def _wrong_uai_key(ctx: InjectContext, sid: str) -> Entry | None:
    rec = ctx.take("EtabEducNat", sid)
    if rec is None:
        return None
    uai = rec.attrs[_ST.uai][0] or ""
    wrong = ctx.pick([k for k in UAI_KEYS if k != uai[7]])
    rec.attrs[_ST.uai] = [uai[:7] + wrong]
    return _entry("EtabEducNat", sid, _ST.uai, f"clé {wrong}, attendue {uai[7]}", sid)


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
    rec.attrs[_PE.director_of] = [None]
    rec.attrs[_PE.functions] = [v for v in rec.attrs[_PE.functions] if v and "$DIR$" not in v]
    return _entry("EtabEducNat", sid, _PE.director_of, "aucun directeur", sid, [director])


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
    rec.attrs[_PE.director_of] = [sid]
    rec.attrs[_PE.functions] = [*rec.attrs[_PE.functions], f"{sid}$DIR$DIRECTION$-$-"]
    return _entry(
        "EtabEducNat", sid, _PE.director_of, "deux directeurs", sid, [school.director, second]
    )


@_defect(
    "director_not_attached",
    "PersEducNat",
    "Directeur d'une école à laquelle il n'est pas rattaché (ENTPersonStructRattach).",
    lambda ctx: [s.director for s in ctx.model.schools],
)
def _director_not_attached(ctx: InjectContext, did: str) -> Entry | None:
    rec = ctx.rec("PersEducNat", did)
    sid = rec.attrs[_PE.director_of][0] or ""
    if not ctx.free("PersEducNat", did) or not ctx.free("EtabEducNat", sid):
        return None
    ctx.claim("PersEducNat", did)
    ctx.claim("EtabEducNat", sid)
    circ = ctx.model.circ_jointures[ctx.school_by_jointure[sid].circ]
    rec.attrs[_PE.structures] = [circ]
    return _entry("PersEducNat", did, _PE.structures, f"directeur de {sid}, rattaché à {circ}", sid)


@_defect(
    "staff_without_structure",
    "PersEducNat",
    "Personnel sans structure de rattachement.",
    lambda ctx: [
        j for j, r in ctx.index["PersEducNat"].items() if r.attrs[_PE.director_of][0] is None
    ],
)
def _staff_without_structure(ctx: InjectContext, sid: str) -> Entry | None:
    rec = ctx.take("PersEducNat", sid)
    if rec is None:
        return None
    school = rec.attrs[_PE.structures][0]
    rec.attrs[_PE.structures] = [None]
    return _entry(
        "PersEducNat",
        sid,
        _PE.structures,
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
    year = (rec.attrs[_EL.birth_date][0] or "01/01/2000")[-4:]
    if ctx.rng.random() < 0.7:
        bad = (
            ctx.pick(["31/02", "30/02", "31/04", "31/06", "31/09", "31/11", "00/05", "12/13"])
            + f"/{year}"
        )
        detail = f"{bad} n'est pas une date"
    else:
        bad = _date(ctx.start + dt.timedelta(days=int(ctx.rng.integers(30, 400))))
        detail = f"{bad} est postérieure à l'extraction"
    rec.attrs[_EL.birth_date] = [bad]
    return _entry("Eleve", pid, _EL.birth_date, detail, _school_of(rec))


@_defect(
    "birth_date_level_mismatch",
    "Eleve",
    "Âge incompatible avec le niveau (hors ULIS), d'au moins deux ans.",
    lambda ctx: [
        j for j, r in ctx.index["Eleve"].items() if r.attrs[_EL.class_type][0] != ULIS_CLASS
    ],
)
def _birth_date_level_mismatch(ctx: InjectContext, pid: str) -> Entry | None:
    if not ctx.free("Eleve", pid):
        return None
    rec = ctx.rec("Eleve", pid)
    age = schema.LEVEL_AGE[rec.attrs[_EL.level][0] or "CP"]
    shifts = [s for s in (-3, -2, 2, 3) if age - s >= 1]
    shift = ctx.pick(shifts)
    day, month, year = (rec.attrs[_EL.birth_date][0] or "").split("/")
    if (day, month) == ("29", "02"):
        day = "28"
    new = f"{day}/{month}/{int(year) + shift}"
    key = (*_names_key(rec.attrs[_EL.last_name][0] or "", rec.attrs[_EL.first_name][0] or ""), new)
    if key in ctx.births:
        return None
    ctx.births.add(key)
    ctx.claim("Eleve", pid)
    rec.attrs[_EL.birth_date] = [new]
    return _entry(
        "Eleve",
        pid,
        _EL.birth_date,
        f"né le {new}, {age - shift} ans au 31/12 en {rec.attrs[_EL.level][0]}",
        _school_of(rec),
    )


@_defect("level_cycle_mismatch", "Eleve", "Cycle incohérent avec le niveau.", _pupils)
def _level_cycle_mismatch(ctx: InjectContext, pid: str) -> Entry | None:
    rec = ctx.take("Eleve", pid)
    if rec is None:
        return None
    level = rec.attrs[_EL.level][0] or "CP"
    right = schema.LEVEL_CYCLE[level]
    wrong = ctx.pick([c for c in (1, 2, 3) if c != right])
    form = ctx.school_by_jointure[_school_of(rec)].cycle_form
    rec.attrs[_EL.cycle] = [form.format(wrong)]
    return _entry("Eleve", pid, _EL.cycle, f"cycle {wrong} pour le niveau {level}", _school_of(rec))


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
    rec.attrs[_EL.structures] = [own, other.jointure]
    rec.attrs[_EL.classes] = [*rec.attrs[_EL.classes], ctx.pick(other.classes).value]
    return _entry(
        "Eleve",
        pid,
        _EL.structures,
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
    parts = (rec.attrs[_EL.classes][0] or "").split("$")
    rec.attrs[_EL.classes] = ["$".join([other, *parts[1:]])]
    return _entry(
        "Eleve", pid, _EL.classes, f"classe déclarée dans la structure {other}", own, [other]
    )


@_defect("pupil_without_class", "Eleve", "Élève sans classe.", _pupils)
def _pupil_without_class(ctx: InjectContext, pid: str) -> Entry | None:
    rec = ctx.take("Eleve", pid)
    if rec is None:
        return None
    rec.attrs[_EL.classes] = [None]
    return _entry("Eleve", pid, _EL.classes, "aucune classe", _school_of(rec))


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
        ("Eleve", (_EL.last_name, _EL.first_name)),
        ("PersRelEleve", (_PR.last_name, _PR.first_name)),
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
    "malformed_mail", "PersRelEleve", "Adresse mail mal formée.", _with("PersRelEleve", _PR.mail)
)
def _malformed_mail(ctx: InjectContext, gid: str) -> Entry | None:
    rec = ctx.take("PersRelEleve", gid)
    if rec is None:
        return None
    mail = rec.attrs[_PR.mail][0] or ""
    local, domain = mail.split("@")
    bad = (
        f"{local}.{domain}",
        f"{local}@@{domain}",
        f"{local.replace('.', ' ')}@{domain}",
        f"{local}@",
    )[int(ctx.rng.integers(4))]
    rec.attrs[_PR.mail] = [bad]
    return _entry("PersRelEleve", gid, _PR.mail, f"{bad!r} n'est pas une adresse")


@_defect(
    "non_mobile_phone",
    "PersRelEleve",
    "Le champ téléphone mobile contient un numéro fixe (05).",
    _with("PersRelEleve", _PR.mobile_phone),
)
def _non_mobile_phone(ctx: InjectContext, gid: str) -> Entry | None:
    rec = ctx.take("PersRelEleve", gid)
    if rec is None:
        return None
    digits = "05" + f"{int(ctx.rng.integers(0, 10**8)):08d}"
    bad = _phone(digits, int(ctx.rng.integers(4)))
    rec.attrs[_PR.mobile_phone] = [bad]
    return _entry("PersRelEleve", gid, _PR.mobile_phone, f"{bad} n'est pas un mobile")


@_defect(
    "malformed_postal_code",
    "PersRelEleve",
    "Code postal mal formé.",
    _with("PersRelEleve", _PR.postal_code),
)
def _malformed_postal_code(ctx: InjectContext, gid: str) -> Entry | None:
    rec = ctx.take("PersRelEleve", gid)
    if rec is None:
        return None
    code = rec.attrs[_PR.postal_code][0] or ""
    bad = (code[:4], code + "0", code[:2] + "O" + code[3:])[int(ctx.rng.integers(3))]
    rec.attrs[_PR.postal_code] = [bad]
    return _entry("PersRelEleve", gid, _PR.postal_code, f"code postal {bad!r}")


# --------------------------------------------------------------------------------------------
# generate()
# --------------------------------------------------------------------------------------------


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
    return {r.attrs[_ST.jointure][0] or r.id: r.attrs[_ST.uai][0] for r in records}


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
    perimeter: str = "ENT1D_DEMO31",
    start: dt.date = dt.date(2026, 9, 14),
    defects: Mapping[str, float] | None = None,
) -> Perimeter:
    """Generate a synthetic perimeter: Complet, Delta, later Complet, and the truth.

    ``defects`` maps names of :data:`DEFECTS` to rates in [0, 1]: a rate injects
    ``max(1, round(rate * eligible))`` victims. Without defects the perimeter is clean.
    The same arguments always give the same perimeter.
    """
    if seed < 0:
        raise ValueError(f"seed={seed}: la graine doit être un entier positif ou nul")
    if schools < 1 or pupils < schools:
        raise ValueError(
            f"il faut au moins une école et un élève par école (schools={schools}, pupils={pupils})"
        )
    if schools > 9_000:
        raise ValueError(f"schools={schools}: au plus 9000 écoles (UAI 031NNNN)")
    rates = dict(defects or {})
    unknown = sorted(set(rates) - set(DEFECTS))
    if unknown:
        raise ValueError(f"défauts inconnus: {unknown}; connus: {sorted(DEFECTS)}")
    bad = {k: v for k, v in rates.items() if not 0 <= v <= 1}
    if bad:
        raise ValueError(f"taux hors de [0, 1]: {bad}")
    with _no_gc():
        return _generate(seed, schools, pupils, perimeter, start, rates)


def _generate(
    seed: int, schools: int, pupils: int, perimeter: str, start: dt.date, rates: dict[str, float]
) -> Perimeter:
    ids = _IdPool(np.random.default_rng([seed, 9]), 1_000_000, 40)
    ines = _IdPool(np.random.default_rng([seed, 7]), 1_000_000_000, 5000)
    builder = _Builder(seed, schools, pupils, start, ids, ines)
    model = builder.build()
    dates = (start, start + DELTA_AFTER, start + SECOND_COMPLETE_AFTER)
    names = (
        naming.ArchiveName(perimeter, "complete", dates[0]),
        naming.ArchiveName(perimeter, "delta", dates[1]),
        naming.ArchiveName(perimeter, "complete", dates[2]),
    )
    delta = _build_delta(model, builder, seed, dates[1])

    first = {k: list(v) for k, v in model.records.items()}
    states = [first, delta.after]
    ctx = InjectContext(model, states, set(delta.touched), ids, start)
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
                "school": _STRUCT_SCHOOL,
                "circonscription": _STRUCT_CIRC,
                "dsden": _STRUCT_DSDEN,
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileStyle:
    """How one kind's files are written (real files vary across kinds)."""

    encoding: str
    declaration: bool
    newline: str
    empty: str


FILE_STYLES: dict[str, _FileStyle] = {
    "EtabEducNat": _FileStyle("ISO-8859-15", True, "\r\n", "<value/>"),
    "Eleve": _FileStyle("UTF-8", True, "\n", "<value/>"),
    "PersRelEleve": _FileStyle("UTF-8", False, "\r\n", "<value/>"),
    "PersEducNat": _FileStyle("ISO-8859-15", True, "\n", "<value></value>"),
}
"""Encoding, XML declaration, line ends and empty-value form per kind."""

VERSION_AF = "AAF-VE1301"
VERSION_SDET = "V6.5"
ACADEMY_CODE = "16"


def _escape(v: str) -> str:
    if "&" in v or "<" in v or ">" in v or "'" in v or '"' in v:
        return (
            v.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace("'", "&apos;")
            .replace('"', "&quot;")
        )
    return v


_TAGS = {
    "add": ("addRequest", "attributes", "attr name", "</attr>"),
    "modify": ("modifyRequest", "modifications", "modification name", "</modification>"),
}


class _Renderer:
    """Renders the records of one kind as XML bytes, with string templates."""

    def __init__(self, kind: str) -> None:
        spec = schema.KINDS[kind]
        style = FILE_STYLES[kind]
        self.nl = nl = style.newline
        self.encoding = style.encoding
        self.declaration = style.declaration
        self.empty = style.empty
        self.operational = (
            f'  <operationalAttributes><attr name="{spec.category_attr}">'
            f"<value>{spec.name}</value></attr></operationalAttributes>{nl}"
        )
        self._open: dict[str, dict[str, str]] = {"add": {}, "modify": {}}

    def header(self, date: dt.date) -> bytes:
        nl = self.nl
        decl = f'<?xml version="1.0" encoding="{self.encoding}"?>{nl}' if self.declaration else ""
        return (
            f'{decl}<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">{nl}'
            f"<ficAlimMENESR>{nl}"
            f'<!-- versionAF="{VERSION_AF}" -->{nl}'
            f'<!-- versionSDET="{VERSION_SDET}" codeAcademieExport="{ACADEMY_CODE}" '
            f'degre="1D" dateGenerationExport="{_date(date)}" -->{nl}'
        ).encode(self.encoding)

    def footer(self) -> bytes:
        return f"</ficAlimMENESR>{self.nl}".encode(self.encoding)

    def _opening(self, op: str, name: str) -> str:
        """``<attr name="X">`` or ``<modification name="X" operation="replace">``, cached."""
        text = f'    <{_TAGS[op][2]}="{_escape(name)}"'
        text += ' operation="replace">' if op == "modify" else ">"
        self._open[op][name] = text
        return text

    def render(self, rec: Record) -> bytes:
        nl = self.nl
        ident = f"  <identifier><id>{_escape(rec.id)}</id></identifier>{nl}"
        if rec.op == "delete":
            text = f"<deleteRequest>{nl}{self.operational}{ident}</deleteRequest>{nl}"
            return text.encode(self.encoding, "xmlcharrefreplace")
        tag, block, _, close = _TAGS[rec.op]
        close += nl
        opening = self._open[rec.op]
        empty = self.empty
        out = [f"<{tag}>{nl}{self.operational}{ident}  <{block}>{nl}"]
        for name, values in rec.attrs.items():
            head = opening.get(name) or self._opening(rec.op, name)
            if len(values) == 1:
                v = values[0]
                out.append(
                    f"{head}{empty}{close}"
                    if v is None
                    else f"{head}<value>{_escape(v)}</value>{close}"
                )
            else:
                out.append(
                    head
                    + "".join(
                        empty if v is None else f"<value>{_escape(v)}</value>" for v in values
                    )
                    + close
                )
        out.append(f"  </{block}>{nl}</{tag}>{nl}")
        return "".join(out).encode(self.encoding, "xmlcharrefreplace")


def _parts(kind: str, records: list[Record], date: dt.date, part_size: int) -> Iterator[bytes]:
    """The files of one kind: records packed into parts of at most ``part_size`` bytes.

    A record is never split; a part holds at least one record (one kind always yields at
    least one part, possibly empty of records).
    """
    renderer = _Renderer(kind)
    head, foot = renderer.header(date), renderer.footer()
    chunks: list[bytes] = [head]
    size = len(head) + len(foot)
    count = 0
    for rec in records:
        body = renderer.render(rec)
        if count and size + len(body) > part_size:
            chunks.append(foot)
            yield b"".join(chunks)
            chunks, size, count = [head], len(head) + len(foot), 0
        chunks.append(body)
        size += len(body)
        count += 1
    chunks.append(foot)
    yield b"".join(chunks)


def _tarinfo(name: str, size: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_archive(
    extraction: Extraction, out: Path, part_size: int, unpack: bool
) -> tuple[Path, Path | None]:
    """One extraction as ``<name>.tar.gz`` (files in a ``<name>/`` sub-folder), and with
    ``unpack`` as a plain ``<name>/`` folder; tar and gzip times are the extraction date."""
    name = extraction.name
    assert name.date is not None
    stem = name.filename.removesuffix(".tar.gz")
    mtime = int(dt.datetime.combine(name.date, dt.time(5, 0), dt.UTC).timestamp())
    archive = out / name.filename
    folder = out / stem if unpack else None
    if folder is not None:
        folder.mkdir(exist_ok=True)
    with (
        open(archive, "wb") as raw,
        gzip.GzipFile(
            filename=stem + ".tar", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=mtime
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        tar.addfile(_tarinfo(stem, 0, mtime, directory=True))
        for kind in KINDS:
            for part, data in enumerate(
                _parts(kind, extraction.records[kind], name.date, part_size)
            ):
                filename = name.file(kind, part).filename
                tar.addfile(_tarinfo(f"{stem}/{filename}", len(data), mtime), io.BytesIO(data))
                if folder is not None:
                    (folder / filename).write_bytes(data)
    return archive, folder


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
            pool.map(lambda e: _write_archive(e, out, part_size, unpack), perimeter.extractions)
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
