"""Palier's standard tree of request categories, as a French social landlord files them.

Who pays follows the décret n° 87-712 (réparations locatives): small upkeep of the dwelling
(seals, unblocking pipes, sockets, lost keys and badges) is the tenant's; the rest is the
landlord's. Service-level targets are counted in working hours, except where the category
is urgent (continuous clock). `seed_standard_categories` is idempotent: it upserts by code.
"""

from datetime import timedelta

H = timedelta(hours=1)

PAYER_NOTES = {
    "landlord": {
        "fr": "Cette réparation est à la charge de votre bailleur.",
        "en": "Your landlord pays for this repair.",
        "ar": "هذا الإصلاح على نفقة المؤجر.",
    },
    "tenant": {
        "fr": (
            "C'est une réparation locative, à la charge du locataire (décret n° 87-712). "
            "Si le bailleur intervient, elle pourra vous être facturée."
        ),
        "en": (
            "This is a tenant's repair (French decree 87-712). "
            "If the landlord does it, you may be charged for it."
        ),
        "ar": (
            "هذا إصلاح على نفقة المستأجر (المرسوم 87-712). "
            "إذا قام به المؤجر فقد يُطلب منك دفع تكلفته."
        ),
    },
    "depends": {
        "fr": (
            "Qui paie dépend de la cause : usure ou vétusté pour le bailleur, "
            "mauvais usage ou petit entretien pour le locataire."
        ),
        "en": (
            "Who pays depends on the cause: wear and age for the landlord, "
            "misuse or small upkeep for the tenant."
        ),
        "ar": (
            "من يدفع يتوقف على السبب: التقادم على المؤجر، "
            "وسوء الاستعمال أو الصيانة البسيطة على المستأجر."
        ),
    },
}

YES_NO = "bool"


def _q(key, kind, fr, en, ar, *, required=False, choices=None, min_value=None, max_value=None):
    return {
        "key": key,
        "kind": kind,
        "text": fr,
        "labels": {"en": en, "ar": ar},
        "required": required,
        "choices": [
            {"value": value, "labels": {"fr": c_fr, "en": c_en, "ar": c_ar}}
            for value, c_fr, c_en, c_ar in (choices or [])
        ],
        "min_value": min_value,
        "max_value": max_value,
    }


ROOMS = [
    ("cuisine", "Cuisine", "Kitchen", "المطبخ"),
    ("salle_de_bain", "Salle de bain", "Bathroom", "الحمام"),
    ("wc", "WC", "Toilet", "المرحاض"),
    ("chambre", "Chambre", "Bedroom", "غرفة النوم"),
    ("sejour", "Séjour", "Living room", "غرفة الجلوس"),
    ("autre", "Autre", "Other", "أخرى"),
]

VULNERABLE = _q(
    "vulnerable_person",
    YES_NO,
    "Une personne fragile vit-elle au logement (bébé, personne âgée ou malade) ?",
    "Does a vulnerable person live here (baby, elderly or ill person)?",
    "هل يسكن في المسكن شخص هش (رضيع، مسن أو مريض)؟",
)


def _node(
    code,
    fr,
    en,
    ar,
    *,
    dwelling=True,
    common=False,
    priority="normal",
    ack=8,
    resolve=40,
    continuous=False,
    payer="landlord",
    help=None,
    questions=(),
    children=(),
):
    return {
        "code": code,
        "name": fr,
        "labels": {"en": en, "ar": ar},
        "in_dwelling": dwelling,
        "in_common_areas": common,
        "default_priority": priority,
        "acknowledge_within": ack * H if ack is not None else None,
        "resolve_within": resolve * H if resolve is not None else None,
        "continuous_clock": continuous,
        "payer": payer,
        "help": help or {},
        "questions": list(questions),
        "children": list(children),
    }


STANDARD_TREE = [
    _node(
        "chauffage",
        "Chauffage et eau chaude",
        "Heating and hot water",
        "التدفئة والماء الساخن",
        common=True,
        children=[
            _node(
                "chauffage-panne",
                "Pas de chauffage",
                "No heating",
                "لا توجد تدفئة",
                priority="high",
                ack=4,
                resolve=24,
                continuous=True,
                questions=[
                    _q(
                        "whole_dwelling",
                        YES_NO,
                        "Tout le logement est-il sans chauffage ?",
                        "Is the whole dwelling without heating?",
                        "هل المسكن كله بدون تدفئة؟",
                        required=True,
                    ),
                    _q(
                        "heating_type",
                        "choice",
                        "Quel chauffage avez-vous ?",
                        "What heating do you have?",
                        "ما نوع التدفئة لديك؟",
                        choices=[
                            ("chaudiere", "Chaudière individuelle", "Own boiler", "غلاية فردية"),
                            ("collectif", "Chauffage collectif", "Shared heating", "تدفئة جماعية"),
                            (
                                "electrique",
                                "Radiateurs électriques",
                                "Electric heaters",
                                "مدافئ كهربائية",
                            ),
                        ],
                    ),
                    VULNERABLE,
                ],
            ),
            _node(
                "chauffage-insuffisant",
                "Chauffage insuffisant",
                "Not warm enough",
                "التدفئة غير كافية",
                questions=[
                    _q(
                        "temperature",
                        "number",
                        "Température mesurée dans la pièce (°C)",
                        "Temperature measured in the room (°C)",
                        "درجة الحرارة المقاسة في الغرفة",
                        min_value=0,
                        max_value=35,
                    ),
                ],
            ),
            _node(
                "chauffage-eau-chaude",
                "Pas d'eau chaude",
                "No hot water",
                "لا يوجد ماء ساخن",
                priority="high",
                ack=4,
                resolve=24,
                continuous=True,
                questions=[VULNERABLE],
            ),
            _node(
                "chauffage-radiateur",
                "Radiateur qui fuit ou reste froid",
                "Radiator leaking or cold",
                "مشعاع يسرب أو بارد",
                questions=[
                    _q(
                        "room",
                        "choice",
                        "Dans quelle pièce ?",
                        "Which room?",
                        "في أي غرفة؟",
                        choices=ROOMS,
                    )
                ],
            ),
            _node(
                "chauffage-chaudiere",
                "Chaudière en défaut",
                "Boiler fault",
                "عطل في الغلاية",
                priority="high",
                ack=4,
                resolve=24,
                continuous=True,
                help={
                    "fr": "Notez le code affiché par la chaudière s'il y en a un.",
                    "en": "Write down the code the boiler shows, if any.",
                    "ar": "سجّل الرمز الظاهر على الغلاية إن وجد.",
                },
                questions=[
                    _q(
                        "error_code",
                        "text",
                        "Code affiché par la chaudière",
                        "Code shown by the boiler",
                        "الرمز الظاهر على الغلاية",
                    )
                ],
            ),
            _node(
                "chauffage-collectif",
                "Panne du chauffage collectif",
                "Shared heating breakdown",
                "عطل في التدفئة الجماعية",
                dwelling=False,
                common=True,
                priority="urgent",
                ack=2,
                resolve=24,
                continuous=True,
            ),
        ],
    ),
    _node(
        "plomberie",
        "Plomberie",
        "Plumbing",
        "السباكة",
        common=True,
        children=[
            _node(
                "plomberie-fuite",
                "Fuite d'eau",
                "Water leak",
                "تسرب المياه",
                common=True,
                priority="urgent",
                ack=2,
                resolve=24,
                continuous=True,
                payer="depends",
                help={
                    "fr": "Coupez l'arrivée d'eau si vous le pouvez.",
                    "en": "Turn off the water supply if you can.",
                    "ar": "أغلق صنبور الماء الرئيسي إن استطعت.",
                },
                questions=[
                    _q(
                        "room",
                        "choice",
                        "Où est la fuite ?",
                        "Where is the leak?",
                        "أين يوجد التسرب؟",
                        required=True,
                        choices=[
                            *ROOMS[:3],
                            ("plafond", "Au plafond", "From the ceiling", "من السقف"),
                            ROOMS[-1],
                        ],
                    ),
                    _q(
                        "water_off",
                        YES_NO,
                        "Avez-vous pu couper l'eau ?",
                        "Could you turn the water off?",
                        "هل تمكنت من قطع الماء؟",
                    ),
                ],
            ),
            _node(
                "plomberie-bouche",
                "Évier, lavabo ou WC bouché",
                "Blocked sink or toilet",
                "انسداد المغسلة أو المرحاض",
                payer="tenant",
                priority="normal",
                questions=[_q("room", "choice", "Où ?", "Where?", "أين؟", choices=ROOMS[:3])],
            ),
            _node(
                "plomberie-robinet",
                "Robinet ou chasse d'eau qui fuit",
                "Dripping tap or running toilet",
                "صنبور أو سيفون يسرب",
                payer="tenant",
                priority="low",
                ack=16,
                resolve=80,
            ),
            _node(
                "plomberie-degat-des-eaux",
                "Dégât des eaux venant d'un voisin",
                "Water damage from a neighbour",
                "أضرار مياه من الجيران",
                priority="urgent",
                ack=2,
                resolve=24,
                continuous=True,
                payer="depends",
                help={
                    "fr": "Pensez à prévenir votre assurance habitation.",
                    "en": "Remember to tell your home insurance.",
                    "ar": "لا تنس إبلاغ تأمين المسكن.",
                },
            ),
            _node(
                "plomberie-colonne",
                "Fuite dans les parties communes",
                "Leak in the common areas",
                "تسرب في الأجزاء المشتركة",
                dwelling=False,
                common=True,
                priority="urgent",
                ack=2,
                resolve=24,
                continuous=True,
            ),
        ],
    ),
    _node(
        "ventilation",
        "Ventilation et humidité",
        "Ventilation and damp",
        "التهوية والرطوبة",
        children=[
            _node(
                "ventilation-vmc",
                "VMC en panne ou bruyante",
                "Ventilation unit broken or noisy",
                "جهاز التهوية معطل أو مزعج",
                priority="normal",
                ack=8,
                resolve=40,
            ),
            _node(
                "ventilation-humidite",
                "Humidité ou moisissures",
                "Damp or mould",
                "رطوبة أو عفن",
                payer="depends",
                questions=[
                    _q(
                        "room",
                        "choice",
                        "Dans quelle pièce ?",
                        "Which room?",
                        "في أي غرفة؟",
                        choices=ROOMS,
                    )
                ],
            ),
            _node(
                "ventilation-bouche",
                "Bouche d'aération encrassée",
                "Clogged air vent",
                "فتحة تهوية متسخة",
                payer="tenant",
                priority="low",
                ack=16,
                resolve=80,
            ),
        ],
    ),
    _node(
        "ascenseur",
        "Ascenseur",
        "Lift",
        "المصعد",
        dwelling=False,
        common=True,
        children=[
            _node(
                "ascenseur-panne",
                "Ascenseur en panne",
                "Lift out of order",
                "المصعد معطل",
                dwelling=False,
                common=True,
                priority="high",
                ack=4,
                resolve=48,
                continuous=True,
            ),
            _node(
                "ascenseur-personne-bloquee",
                "Personne bloquée dans l'ascenseur",
                "Someone stuck in the lift",
                "شخص عالق في المصعد",
                dwelling=False,
                common=True,
                priority="urgent",
                ack=0.25,
                resolve=1,
                continuous=True,
                help={
                    "fr": "Appuyez d'abord sur le bouton d'alarme de la cabine.",
                    "en": "First press the alarm button in the lift car.",
                    "ar": "اضغط أولاً على زر الإنذار داخل المصعد.",
                },
            ),
            _node(
                "ascenseur-degradation",
                "Cabine abîmée ou sale",
                "Lift car damaged or dirty",
                "مقصورة المصعد متضررة أو متسخة",
                dwelling=False,
                common=True,
            ),
        ],
    ),
    _node(
        "proprete",
        "Propreté des parties communes",
        "Cleanliness of common areas",
        "نظافة الأجزاء المشتركة",
        dwelling=False,
        common=True,
        children=[
            _node(
                "proprete-hall",
                "Hall ou escaliers sales",
                "Dirty hall or stairs",
                "المدخل أو الدرج متسخ",
                dwelling=False,
                common=True,
                ack=8,
                resolve=16,
            ),
            _node(
                "proprete-poubelles",
                "Local poubelles sale ou débordant",
                "Bin room dirty or overflowing",
                "غرفة النفايات متسخة أو ممتلئة",
                dwelling=False,
                common=True,
                priority="high",
                ack=4,
                resolve=16,
            ),
            _node(
                "proprete-encombrants",
                "Encombrants déposés",
                "Bulky items left",
                "أغراض ضخمة متروكة",
                dwelling=False,
                common=True,
                ack=8,
                resolve=24,
            ),
            _node(
                "proprete-tags",
                "Tags ou graffitis",
                "Graffiti",
                "كتابات على الجدران",
                dwelling=False,
                common=True,
                priority="low",
                ack=16,
                resolve=80,
            ),
        ],
    ),
    _node(
        "nuisibles",
        "Nuisibles",
        "Pests",
        "الحشرات والقوارض",
        common=True,
        children=[
            _node("nuisibles-cafards", "Cafards ou blattes", "Cockroaches", "صراصير", common=True),
            _node(
                "nuisibles-punaises",
                "Punaises de lit",
                "Bed bugs",
                "بق الفراش",
                priority="high",
                ack=8,
                resolve=80,
                payer="depends",
            ),
            _node(
                "nuisibles-rongeurs",
                "Rats ou souris",
                "Rats or mice",
                "فئران أو جرذان",
                common=True,
                priority="high",
                ack=8,
                resolve=40,
            ),
        ],
    ),
    _node(
        "portes",
        "Porte d'entrée et serrures",
        "Entrance door and locks",
        "باب المدخل والأقفال",
        common=True,
        children=[
            _node(
                "portes-hall",
                "Porte du hall qui ne ferme plus",
                "Entrance door does not lock",
                "باب المدخل لا يُغلق",
                dwelling=False,
                common=True,
                priority="high",
                ack=4,
                resolve=24,
                continuous=True,
            ),
            _node(
                "portes-interphone",
                "Interphone ou digicode en panne",
                "Intercom or door code broken",
                "جهاز الاتصال الداخلي أو الرمز معطل",
                dwelling=False,
                common=True,
                ack=8,
                resolve=40,
            ),
            _node(
                "portes-badge",
                "Badge ou télécommande à remplacer",
                "Badge or remote to replace",
                "استبدال البطاقة أو جهاز التحكم",
                payer="tenant",
                priority="low",
                ack=16,
                resolve=80,
            ),
            _node(
                "portes-serrure",
                "Serrure de la porte du logement",
                "Lock of the dwelling's door",
                "قفل باب المسكن",
                payer="depends",
                priority="high",
                ack=4,
                resolve=24,
            ),
        ],
    ),
    _node(
        "eclairage",
        "Éclairage des parties communes",
        "Common-area lighting",
        "إنارة الأجزاء المشتركة",
        dwelling=False,
        common=True,
        children=[
            _node(
                "eclairage-panne",
                "Lumière en panne (hall, escalier, palier)",
                "Light out (hall, stairs, landing)",
                "انطفاء الإنارة (المدخل، الدرج، البسطة)",
                dwelling=False,
                common=True,
                ack=8,
                resolve=24,
                questions=[
                    _q(
                        "floor",
                        "number",
                        "À quel étage ?",
                        "On which floor?",
                        "في أي طابق؟",
                        min_value=-5,
                        max_value=99,
                    )
                ],
            ),
            _node(
                "eclairage-exterieur",
                "Éclairage extérieur ou parking",
                "Outdoor or car-park lighting",
                "الإنارة الخارجية أو الموقف",
                dwelling=False,
                common=True,
                ack=8,
                resolve=40,
            ),
        ],
    ),
    _node(
        "electricite",
        "Électricité du logement",
        "Electricity in the dwelling",
        "كهرباء المسكن",
        children=[
            _node(
                "electricite-panne",
                "Plus de courant dans le logement",
                "No power in the dwelling",
                "انقطاع الكهرباء في المسكن",
                priority="urgent",
                ack=2,
                resolve=24,
                continuous=True,
                payer="depends",
                help={
                    "fr": "Vérifiez d'abord votre disjoncteur.",
                    "en": "First check your circuit breaker.",
                    "ar": "تحقق أولاً من قاطع التيار.",
                },
            ),
            _node(
                "electricite-prise",
                "Prise ou interrupteur défectueux",
                "Faulty socket or switch",
                "مقبس أو مفتاح معطل",
                payer="tenant",
                priority="low",
                ack=16,
                resolve=80,
            ),
        ],
    ),
    _node(
        "menuiseries",
        "Fenêtres et volets",
        "Windows and shutters",
        "النوافذ والمصاريع",
        children=[
            _node(
                "menuiseries-volet",
                "Volet roulant bloqué",
                "Roller shutter stuck",
                "مصراع عالق",
                payer="depends",
            ),
            _node(
                "menuiseries-fenetre",
                "Fenêtre qui ferme mal ou vitre cassée",
                "Window not closing or broken pane",
                "نافذة لا تُغلق أو زجاج مكسور",
                payer="depends",
                priority="high",
                ack=8,
                resolve=40,
            ),
        ],
    ),
    _node(
        "voisinage",
        "Troubles de voisinage",
        "Neighbourhood nuisance",
        "إزعاج الجيران",
        common=True,
        ack=16,
        resolve=None,
        help={
            "fr": "En cas de danger, appelez le 17 (police) ou le 112.",
            "en": "If anyone is in danger, call 17 (police) or 112.",
            "ar": "في حالة الخطر، اتصل بالرقم 17 (الشرطة) أو 112.",
        },
        children=[
            _node(
                "voisinage-bruit",
                "Bruit",
                "Noise",
                "ضجيج",
                common=True,
                ack=16,
                resolve=None,
                questions=[
                    _q("night", YES_NO, "Surtout la nuit ?", "Mostly at night?", "خاصة في الليل؟")
                ],
            ),
            _node(
                "voisinage-occupation",
                "Occupation des parties communes",
                "People gathering in the common areas",
                "تجمعات في الأجزاء المشتركة",
                dwelling=False,
                common=True,
                ack=16,
                resolve=None,
            ),
            _node(
                "voisinage-animaux",
                "Animaux",
                "Animals",
                "حيوانات",
                common=True,
                priority="low",
                ack=16,
                resolve=None,
            ),
        ],
    ),
    _node(
        "exterieurs",
        "Espaces extérieurs et parking",
        "Grounds and car park",
        "المساحات الخارجية والموقف",
        dwelling=False,
        common=True,
        children=[
            _node(
                "exterieurs-espaces-verts",
                "Espaces verts mal entretenus",
                "Green spaces not looked after",
                "المساحات الخضراء مهملة",
                dwelling=False,
                common=True,
                priority="low",
                ack=16,
                resolve=120,
            ),
            _node(
                "exterieurs-portail",
                "Portail ou barrière du parking en panne",
                "Car-park gate or barrier broken",
                "بوابة أو حاجز الموقف معطل",
                dwelling=False,
                common=True,
                priority="high",
                ack=4,
                resolve=24,
            ),
        ],
    ),
    _node("autre", "Autre demande", "Something else", "طلب آخر", common=True, ack=16, resolve=80),
]


def _walk(nodes, parent_code=None):
    for position, node in enumerate(nodes):
        yield position, parent_code, node
        yield from _walk(node["children"], node["code"])


def seed_standard_categories(Category, CategoryQuestion) -> int:
    """Upsert the standard tree (organisation empty); return how many categories it holds."""
    by_code = {}
    count = 0
    for position, parent_code, node in _walk(STANDARD_TREE):
        fields = {
            "parent": by_code.get(parent_code),
            "name": node["name"],
            "labels": node["labels"],
            "help": node["help"],
            "in_dwelling": node["in_dwelling"],
            "in_common_areas": node["in_common_areas"],
            "default_priority": node["default_priority"],
            "acknowledge_within": node["acknowledge_within"],
            "resolve_within": node["resolve_within"],
            "continuous_clock": node["continuous_clock"],
            "payer": node["payer"],
            "payer_note": PAYER_NOTES[node["payer"]],
            "position": position,
            "is_active": True,
        }
        category, _ = Category.objects.update_or_create(
            organisation=None, code=node["code"], defaults=fields
        )
        by_code[node["code"]] = category
        for q_position, question in enumerate(node["questions"]):
            CategoryQuestion.objects.update_or_create(
                category=category,
                key=question["key"],
                defaults={
                    "kind": question["kind"],
                    "text": question["text"],
                    "labels": question["labels"],
                    "required": question["required"],
                    "choices": question["choices"],
                    "min_value": question["min_value"],
                    "max_value": question["max_value"],
                    "position": q_position,
                },
            )
        count += 1
    return count
