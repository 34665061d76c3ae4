"""Reference lists and labels, and the draws of people's names, addresses, phones and mails.

No real personal data: people's names are random combinations of common French first names
and surnames; mails use reserved ``.example`` domains. Commune and circonscription names are
real Haute-Garonne place names or invented ones.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import Any

from ent_audit.synth.draws import Random

# Written labels: forms of values the schema leaves free, and the institutions' names.

CYCLE_FORMS = ("CYCLE {}", "Cycle {}", "cycle {}")
"""Written forms of ``ENTEleveCycle``; each school uses one."""
ORDINARY_CLASS = "Classe ordinaire"
ULIS_CLASS = "ULIS"


# Reference lists (names are common French names, combined at random)


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


GIRLS = _words(
    "Emma Louise Jade Alice Chloé Lina Léa Rose Anna Mila Inès Ambre Julia Mia Léna Manon "
    "Juliette Lou Zoé Camille Agathe Jeanne Lucie Eléna Sarah Romane Nina Louna Adèle Margaux "
    "Clémence Charlotte Léonie Lola Anaïs Maëlys Océane Élise Héloïse Gabrielle Capucine "
    "Noémie Joséphine Victoire Iris Apolline Maëlle Salomé Éva Clara Yasmine Aya Lana Thaïs"
)
BOYS = _words(
    "Gabriel Léo Raphaël Arthur Louis Jules Adam Maël Lucas Hugo Noah Liam Gabin Sacha Paul "
    "Nathan Aaron Mohamed Éthan Tom Léon Théo Noé Victor Martin Mathis Axel Timéo Enzo Marius "
    "Naël Baptiste Antoine Robin Valentin Clément Joseph Maxime Célestin Ismaël Eliott Côme "
    "Aurèle Anselme Loïs Yanis Rayan Amir Mathéo Bastien"
)
WOMEN = _words(
    "Marie Nathalie Isabelle Sylvie Catherine Sandrine Céline Stéphanie Aurélie Émilie Julie "
    "Caroline Virginie Laetitia Hélène Sophie Valérie Christelle Audrey Élodie Mélanie Karine "
    "Séverine Delphine Anne Claire Amélie Marion Pauline Laure Cécile Fanny Mathilde Noëlle "
    "Françoise Geneviève Anne-Sophie Marie-Claire Fatima Samira Agnès Béatrice Ophélie Maïté"
)
MEN = _words(
    "Jean Pierre Michel Philippe Nicolas Christophe Stéphane Sébastien Julien Frédéric Laurent "
    "Olivier David Éric Thierry Jérôme Vincent Cédric François Guillaume Mathieu Benoît "
    "Yannick Grégory Damien Fabien Romain Alexandre Thomas Jérémy Hervé Loïc Gaël Jean-Pierre "
    "Jean-Marc Karim Mehdi Rachid Joël Raphaël Bruno Gilles Xavier"
)
SURNAMES = (
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

COMMUNES = _words(
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
COMMUNE_PREFIXES = _words(
    "Saint-Martin Saint-Pierre Saint-Jean Saint-Paul Saint-Sernin Saint-Félix Saint-Élix "
    "Saint-Amans Saint-Julien Sainte-Foy Castelnau Montesquieu Villeneuve Labastide Montastruc "
    "Montégut Lasbordes Lézat Mauvezin Montgaillard Castéra Lamothe Lacaune Belesta Cassagne "
    "Lavelanet Auriac Bellegarde Fabas Saint-André"
)
COMMUNE_SUFFIXES = _words(
    "de-Rivière du-Touch de-Lèze sur-Save de-Lauragais de-Comminges sur-Garonne en-Volvestre "
    "d'Aussonnelle sur-Tarn de-Lherm la-Vallée de-Gascogne sur-Girou du-Salat sur-Arize "
    "de-Marestaing d'Arbas de-Boulbonne sur-Louge des-Coteaux de-Montfort du-Lac sur-Ariège "
    "de-Bourrassol"
)
TOULOUSE_CODES = ("31000", "31100", "31200", "31300", "31400", "31500")

EPONYMS = _words(
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
AMPERSAND_EPONYMS = tuple(e for e in EPONYMS if "&" in e)
STREETS = _words(
    "rue des Lilas|avenue Jean Jaurès|chemin du Moulin|impasse des Tilleuls|allée des Pins|"
    "place de l'Église|rue de la République|route de Toulouse|rue Pasteur|boulevard Carnot|"
    "rue du Languedoc|chemin de la Garonne|rue des Écoles|avenue de Lombez|rue Saint-Exupéry|"
    "rue Gambetta|impasse du Stade|chemin des Vignes|rue d'Occitanie|allée des Demoiselles|"
    "rue du Taur|rue de Metz|allée Jean Monnet|rue de la Paix|chemin de Borde Blanche|"
    "rue des Trois Journées|avenue des Pyrénées|rue du Lauragais|rue Alsace-Lorraine|"
    "rue de l'Ormeau|avenue de Muret|chemin des Crêtes|rue Clémence Isaure|place du Marché",
    "|",
)
COMPLEMENTS = (
    "Résidence Les Acacias",
    "Bâtiment B",
    "Appartement 12",
    "Les Jardins d'Occitanie",
    "Lotissement Le Clos",
    "Escalier 3",
)
DIRECTIONS = ("Nord", "Sud", "Est", "Ouest", "Centre", "Rive Gauche", "Rive Droite")
GROUPS = (
    "Chorale",
    "Anglais renforcé",
    "Atelier théâtre",
    "APC lecture",
    "Occitan",
    "Classe découverte",
    "Jardin & nature",
)
SPECIALITIES = (
    "ANGLAIS",
    "OCCITAN",
    "ESPAGNOL",
    "ALLEMAND",
    "MAITRE FORMATEUR",
    "ANIMATEUR TICE",
    "RESSOURCE SCIENCES",
)
AREAS = ("0561", "0562", "0534", "0567", "0581", "0582", "0563")
"""Landline prefixes of the area."""
MAIL_DOMAINS = ("example.com", "example.org", "example.net")
STAFF_DOMAIN = "ac-toulouse.example"
ACADEMY = "TOULOUSE"
MINISTRY = "MINISTERE DE L'EDUCATION NATIONALE"
SECTOR = "PU"
STRUCT_SCHOOL = "ECOLE"
STRUCT_CIRC = "CIRCONSCRIPTION"
STRUCT_DSDEN = "INSPECTIONS ACADEMIQUES"


# Name helpers


@functools.cache
def ascii_slug(text: str) -> str:
    """Lower-case ASCII slug of a name, for mail local parts."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum() or c in "-.")


def names_key(last: str, first: str) -> tuple[str, str]:
    """Names as a duplicate check compares them: no case, accents, spaces or punctuation."""
    return (
        ascii_slug(last).replace("-", "").replace(".", ""),
        ascii_slug(first).replace("-", "").replace(".", ""),
    )


def phone_text(digits: str, style: int) -> str:
    """A 10-digit French number in one of the free-text forms real files carry."""
    pairs = [digits[i : i + 2] for i in range(0, 10, 2)]
    if style == 0:
        return digits
    if style == 1:
        return " ".join(pairs)
    if style == 2:
        return f"+33 {digits[1]} " + " ".join(pairs[1:])
    return ".".join(pairs)


# Draws: each takes the stream to draw from (the model's, then the delta's), and draws in a
# fixed order, so that the same seed always gives the same people.


def draw_phone(rng: Random, prefix: str) -> str:
    """Ten digits starting with ``prefix``; a bare ``05`` gets a Haute-Garonne area."""
    if prefix == "05":
        prefix = rng.pick(AREAS)
    rest = 10 - len(prefix)
    return prefix + f"{rng.below(10**rest):0{rest}d}"


def draw_other_names(rng: Random, pool: Sequence[str]) -> list[str]:
    """Zero to two other first names."""
    r = rng.random()
    k = 0 if r < 0.5 else 1 if r < 0.85 else 2
    return [rng.pick(pool) for _ in range(k)]


def draw_surname(rng: Random) -> str:
    return rng.pick(SURNAMES)


def draw_address(rng: Random) -> str:
    """A street address as AAF writes it: four ``$``-separated lines."""
    line = f"{rng.between(1, 120)} {rng.pick(STREETS)}"
    if rng.random() < 0.15:
        return f"{rng.pick(COMPLEMENTS)}${line}$$"
    return f"{line}$$$"


def draw_contacts(
    rng: Random, first: str, last: str, postal_code: str, city: str
) -> dict[str, Any]:
    """Address, phones and mail of a natural person."""
    r = [rng.random() for _ in range(6)]
    styles = [rng.below(4) for _ in range(3)]
    mobile = draw_phone(rng, ("06", "07")[int(r[0] < 0.4)])
    return {
        "address": draw_address(rng),
        "postal_code": postal_code,
        "city": city,
        "country": "FRANCE",
        "address_sharing": "O" if r[1] < 0.4 else "N",
        "home_phone": phone_text(draw_phone(rng, "05"), styles[0]) if r[2] < 0.45 else None,
        "mobile_phone": phone_text(mobile, styles[1]) if r[3] < 0.88 else None,
        "mail": (
            f"{ascii_slug(first)}.{ascii_slug(last)}{rng.between(1, 99)}@{rng.pick(MAIL_DOMAINS)}"
        )
        if r[4] < 0.75
        else None,
        "work_phone": phone_text(draw_phone(rng, "05"), styles[2]) if r[5] < 0.2 else None,
    }
