"""Palier's standard cleanliness questionnaire, as a French social landlord's team leader walks it.

Sections follow the common areas met from the street to the cellar. Critical items are those of
hygiene and safety (overflowing bins, pests, blocked escape routes, dangerous waste, stairs in
the dark): one failure caps the score. `seed_standard_template` is idempotent: it creates
version 1 once and never touches a version audits were answered with.
"""

CODE = "proprete-parties-communes"
NAME = "Contrôle de propreté des parties communes"

CLEANING = "cleaning_contractor"
CARETAKER = "caretaker"
TECHNICIAN = "technician"
OK = "compliance"
SCALE = "scale"

# New request categories that failures open, below the standard "proprete" family.
CATEGORIES = [
    ("proprete-vitrerie", "Vitres ou portes vitrées sales", "Dirty glass doors or windows", 16),
    ("proprete-caves", "Couloirs de caves sales", "Dirty cellar corridors", 40),
    ("proprete-parking", "Parking sale", "Dirty car park", 40),
    ("proprete-abords", "Abords de l'immeuble sales", "Dirty surroundings", 24),
    ("proprete-odeurs", "Mauvaises odeurs", "Bad smells", 16),
]


def _q(code, text, answer_type, weight, responsible, category, *, critical=False, photo=True):
    return {
        "code": code,
        "text": text,
        "answer_type": answer_type,
        "weight": weight,
        "responsible": responsible,
        "ticket_category": category,
        "critical": critical,
        "photo_required": photo,
    }


SECTIONS = [
    (
        "hall",
        "Hall d'entrée",
        [
            _q(
                "hall-sol",
                "Sol du hall propre (ni traces, ni déchets)",
                SCALE,
                3,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "hall-boites",
                "Boîtes aux lettres propres, sans prospectus au sol",
                OK,
                2,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "hall-portes-vitrees",
                "Portes vitrées et vitrages propres",
                SCALE,
                2,
                CLEANING,
                "proprete-vitrerie",
            ),
            _q(
                "hall-murs-miroir",
                "Murs, miroir et plinthes propres",
                SCALE,
                2,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "hall-interphone",
                "Platine d'interphone et poignées nettoyées",
                OK,
                1,
                CLEANING,
                "proprete-hall",
            ),
            _q("hall-tapis", "Tapis ou grille d'entrée propre", OK, 1, CLEANING, "proprete-hall"),
            _q(
                "hall-eclairage",
                "Éclairage du hall en état de marche",
                OK,
                2,
                TECHNICIAN,
                "eclairage-panne",
            ),
            _q(
                "hall-porte-ferme",
                "Porte d'entrée qui se ferme correctement",
                OK,
                2,
                TECHNICIAN,
                "portes-hall",
                critical=True,
            ),
            _q(
                "hall-affichage",
                "Panneau d'affichage propre et à jour",
                OK,
                1,
                CARETAKER,
                "proprete-hall",
                photo=False,
            ),
        ],
    ),
    (
        "stairwell",
        "Escaliers et paliers",
        [
            _q(
                "escalier-marches",
                "Marches et contremarches propres",
                SCALE,
                3,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "escalier-paliers",
                "Paliers propres (sols et recoins)",
                SCALE,
                3,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "escalier-mains-courantes",
                "Mains courantes et rampes essuyées",
                OK,
                2,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "escalier-vitres",
                "Fenêtres de la cage d'escalier propres",
                OK,
                1,
                CLEANING,
                "proprete-vitrerie",
            ),
            _q(
                "escalier-toiles",
                "Pas de toiles d'araignée ni de poussière en hauteur",
                OK,
                1,
                CLEANING,
                "proprete-hall",
            ),
            _q(
                "escalier-eclairage",
                "Éclairage des escaliers et paliers en état de marche",
                OK,
                2,
                TECHNICIAN,
                "eclairage-panne",
                critical=True,
            ),
            _q(
                "escalier-degagement",
                "Escaliers dégagés (aucun objet gênant l'évacuation)",
                OK,
                3,
                CARETAKER,
                "proprete-encombrants",
                critical=True,
            ),
            _q(
                "escalier-gaines",
                "Portes de gaines techniques fermées et propres",
                OK,
                1,
                TECHNICIAN,
                "proprete-hall",
            ),
        ],
    ),
    (
        "lift",
        "Ascenseur",
        [
            _q(
                "ascenseur-sol",
                "Sol de la cabine propre",
                SCALE,
                3,
                CLEANING,
                "ascenseur-degradation",
            ),
            _q(
                "ascenseur-parois",
                "Parois et miroir de la cabine propres",
                SCALE,
                2,
                CLEANING,
                "ascenseur-degradation",
            ),
            _q(
                "ascenseur-portes",
                "Portes palières et seuils propres",
                OK,
                1,
                CLEANING,
                "ascenseur-degradation",
            ),
            _q(
                "ascenseur-boutons",
                "Boutons et boîte à boutons nettoyés",
                OK,
                1,
                CLEANING,
                "ascenseur-degradation",
            ),
        ],
    ),
    (
        "bin_room",
        "Local poubelles",
        [
            _q(
                "poubelles-sol",
                "Sol du local propre et lavé",
                SCALE,
                3,
                CLEANING,
                "proprete-poubelles",
            ),
            _q(
                "poubelles-bacs",
                "Bacs propres, non débordants, couvercles fermés",
                OK,
                3,
                CARETAKER,
                "proprete-poubelles",
                critical=True,
            ),
            _q(
                "poubelles-tri",
                "Tri respecté (bacs jaunes et verts)",
                OK,
                1,
                CARETAKER,
                "proprete-poubelles",
                photo=False,
            ),
            _q(
                "poubelles-sortie",
                "Bacs sortis et rentrés aux jours de collecte",
                OK,
                2,
                CARETAKER,
                "proprete-poubelles",
                photo=False,
            ),
            _q(
                "poubelles-odeurs",
                "Pas de mauvaises odeurs dans le local",
                OK,
                2,
                CLEANING,
                "proprete-odeurs",
            ),
        ],
    ),
    (
        "cellar",
        "Caves et sous-sols",
        [
            _q(
                "caves-couloirs",
                "Couloirs de caves propres et dégagés",
                SCALE,
                2,
                CLEANING,
                "proprete-caves",
            ),
            _q(
                "caves-encombrants",
                "Aucun encombrant dans les couloirs de caves",
                OK,
                2,
                CARETAKER,
                "proprete-encombrants",
                critical=True,
            ),
            _q(
                "caves-eclairage",
                "Éclairage des sous-sols en état de marche",
                OK,
                1,
                TECHNICIAN,
                "eclairage-panne",
            ),
        ],
    ),
    (
        "car_park",
        "Parking",
        [
            _q(
                "parking-sol",
                "Sol du parking propre (déchets, huile)",
                SCALE,
                2,
                CLEANING,
                "proprete-parking",
            ),
            _q(
                "parking-epaves",
                "Aucun véhicule épave ni dépôt sauvage",
                OK,
                1,
                CARETAKER,
                "proprete-encombrants",
            ),
            _q(
                "parking-eclairage",
                "Éclairage du parking en état de marche",
                OK,
                1,
                TECHNICIAN,
                "eclairage-exterieur",
            ),
        ],
    ),
    (
        "outdoor",
        "Abords et parties communes générales",
        [
            _q(
                "abords-proprete",
                "Abords et cheminements propres (papiers, mégots)",
                SCALE,
                2,
                CLEANING,
                "proprete-abords",
            ),
            _q(
                "abords-espaces-verts",
                "Espaces verts entretenus, sans déchets",
                OK,
                1,
                CLEANING,
                "exterieurs-espaces-verts",
            ),
            _q(
                "abords-encombrants",
                "Aucun encombrant déposé aux abords",
                OK,
                2,
                CARETAKER,
                "proprete-encombrants",
            ),
            _q(
                "abords-dechets-dangereux",
                "Aucun déchet dangereux (seringues, verre brisé)",
                OK,
                3,
                CARETAKER,
                "proprete-abords",
                critical=True,
            ),
            _q("graffitis", "Aucun tag ni graffiti", OK, 1, CLEANING, "proprete-tags"),
            _q(
                "odeurs",
                "Pas de mauvaises odeurs (urine, tabac, humidité)",
                OK,
                2,
                CLEANING,
                "proprete-odeurs",
            ),
            _q(
                "nuisibles",
                "Aucune trace de nuisibles (rats, souris, cafards)",
                OK,
                3,
                TECHNICIAN,
                "nuisibles-rongeurs",
                critical=True,
            ),
            _q(
                "dejections",
                "Aucune déjection animale dans les parties communes",
                OK,
                2,
                CLEANING,
                "proprete-hall",
                critical=True,
            ),
        ],
    ),
]


def question_count() -> int:
    """How many questions the standard questionnaire holds."""
    return sum(len(questions) for _, _, questions in SECTIONS)


def seed_standard_template(AuditTemplate, TemplateSection, TemplateQuestion):
    """Create version 1 of the standard questionnaire if it is missing; return it."""
    template = AuditTemplate.objects.filter(organisation=None, code=CODE, version=1).first()
    if template is not None:
        return template
    template = AuditTemplate.objects.create(
        organisation=None, code=CODE, version=1, name=NAME, is_current=True
    )
    for position, (kind, title, questions) in enumerate(SECTIONS):
        section = TemplateSection.objects.create(
            template=template, area_kind=kind, title=title, position=position
        )
        for q_position, question in enumerate(questions):
            TemplateQuestion.objects.create(
                template=template, section=section, position=q_position, **question
            )
    return template


def seed_cleanliness_categories(Category) -> None:
    """Add the request categories audit failures open, under the standard cleanliness family."""
    from datetime import timedelta

    parent = Category.objects.filter(organisation=None, code="proprete").first()
    if parent is None:
        return
    for position, (code, name, english, resolve_hours) in enumerate(CATEGORIES, start=10):
        Category.objects.update_or_create(
            organisation=None,
            code=code,
            defaults={
                "parent": parent,
                "name": name,
                "labels": {"en": english},
                "in_dwelling": False,
                "in_common_areas": True,
                "default_priority": "normal",
                "acknowledge_within": timedelta(hours=8),
                "resolve_within": timedelta(hours=resolve_hours),
                "payer": "landlord",
                "payer_note": parent.payer_note,
                "position": position,
                "is_active": True,
            },
        )
