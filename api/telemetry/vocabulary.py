"""What the units measure: stable storage codes, and plain-language labels and purposes.

Readings are stored with a small integer per name (two bytes instead of a string on every
row). The codes are part of the storage format: never renumber or reuse one, only add.
"""

from devices.contract import HEALTH_VOCABULARY, HEATING_VOCABULARY, VOCABULARY

NAME_CODES: dict[str, int] = {
    "room_temp": 1,
    "room_setpoint": 2,
    "flow_temp": 3,
    "return_temp": 4,
    "outdoor_temp": 5,
    "ch_pressure": 6,
    "flame": 7,
    "heat_demand": 8,
    "burner_starts": 9,
    "fault_active": 10,
    "fault_code": 11,
    "fan_rpm": 20,
    "extract_pressure": 21,
    "rh": 22,
    "co2": 23,
    "filter_alarm": 24,
    "fan_fault": 25,
    "battery": 40,
    "rssi": 41,
}
CODE_NAMES: dict[int, str] = {code: name for name, code in NAME_CODES.items()}

# name -> unit ("" for booleans and codes) and value field ("v", "vb" or "vs").
UNITS: dict[str, str] = {name: unit for name, (unit, _field) in VOCABULARY.items()}
FIELDS: dict[str, str] = {name: field for name, (_unit, field) in VOCABULARY.items()}
NUMERIC_NAMES = frozenset(name for name, field in FIELDS.items() if field != "vs")
TEXT_NAMES = frozenset(name for name, field in FIELDS.items() if field == "vs")


def names_for_kind(kind: str) -> list[str]:
    """The names a unit of this kind may send (its own vocabulary plus health)."""
    own = HEATING_VOCABULARY if kind == "heating" else VOCABULARY.keys() - HEATING_VOCABULARY
    names = [n for n in NAME_CODES if n in own and n not in HEALTH_VOCABULARY]
    return names + [n for n in NAME_CODES if n in HEALTH_VOCABULARY]


# Plain-language label of each reading, per language of settings.LANGUAGES.
LABELS: dict[str, dict[str, str]] = {
    "room_temp": {
        "fr": "Température de la pièce",
        "fr-falc": "La température dans votre logement",
        "en": "Room temperature",
        "ar": "درجة حرارة الغرفة",
    },
    "room_setpoint": {
        "fr": "Température demandée au thermostat",
        "fr-falc": "La température que vous avez choisie",
        "en": "Thermostat setting",
        "ar": "درجة الحرارة المطلوبة في منظم الحرارة",
    },
    "flow_temp": {
        "fr": "Température de l'eau de chauffage (départ)",
        "fr-falc": "La chaleur de l'eau qui part vers les radiateurs",
        "en": "Heating water temperature (flow)",
        "ar": "درجة حرارة مياه التدفئة (الذهاب)",
    },
    "return_temp": {
        "fr": "Température de l'eau de chauffage (retour)",
        "fr-falc": "La chaleur de l'eau qui revient des radiateurs",
        "en": "Heating water temperature (return)",
        "ar": "درجة حرارة مياه التدفئة (الإياب)",
    },
    "outdoor_temp": {
        "fr": "Température extérieure",
        "fr-falc": "La température dehors",
        "en": "Outdoor temperature",
        "ar": "درجة الحرارة الخارجية",
    },
    "ch_pressure": {
        "fr": "Pression du circuit de chauffage",
        "fr-falc": "La pression de l'eau dans la chaudière",
        "en": "Heating circuit pressure",
        "ar": "ضغط دائرة التدفئة",
    },
    "flame": {
        "fr": "Brûleur allumé",
        "fr-falc": "La flamme de la chaudière est allumée",
        "en": "Burner lit",
        "ar": "الموقد مشتعل",
    },
    "heat_demand": {
        "fr": "Demande de chauffage",
        "fr-falc": "Le thermostat demande de la chaleur",
        "en": "Heat demanded",
        "ar": "طلب التدفئة",
    },
    "burner_starts": {
        "fr": "Nombre d'allumages du brûleur",
        "fr-falc": "Combien de fois la chaudière s'est allumée",
        "en": "Burner starts",
        "ar": "عدد مرات تشغيل الموقد",
    },
    "fault_active": {
        "fr": "Panne signalée par l'appareil",
        "fr-falc": "L'appareil dit qu'il est en panne",
        "en": "Fault reported by the unit",
        "ar": "عطل أبلغ عنه الجهاز",
    },
    "fault_code": {
        "fr": "Code de panne du fabricant",
        "fr-falc": "Le code de la panne",
        "en": "Maker's fault code",
        "ar": "رمز العطل من الصانع",
    },
    "fan_rpm": {
        "fr": "Vitesse du ventilateur (VMC)",
        "fr-falc": "La vitesse du ventilateur de la VMC",
        "en": "Ventilation fan speed",
        "ar": "سرعة مروحة التهوية",
    },
    "extract_pressure": {
        "fr": "Pression d'extraction de la VMC",
        "fr-falc": "La force d'aspiration de la VMC",
        "en": "Ventilation extract pressure",
        "ar": "ضغط شفط التهوية",
    },
    "rh": {
        "fr": "Humidité de l'air",
        "fr-falc": "L'humidité de l'air dans votre logement",
        "en": "Air humidity",
        "ar": "رطوبة الهواء",
    },
    "co2": {
        "fr": "Taux de CO2 (qualité de l'air)",
        "fr-falc": "La qualité de l'air (CO2)",
        "en": "CO2 level (air quality)",
        "ar": "مستوى ثاني أكسيد الكربون (جودة الهواء)",
    },
    "filter_alarm": {
        "fr": "Filtre de VMC à changer",
        "fr-falc": "Le filtre de la VMC est sale",
        "en": "Ventilation filter to replace",
        "ar": "يجب تغيير فلتر التهوية",
    },
    "fan_fault": {
        "fr": "Panne du ventilateur de VMC",
        "fr-falc": "Le ventilateur de la VMC est en panne",
        "en": "Ventilation fan fault",
        "ar": "عطل في مروحة التهوية",
    },
    "battery": {
        "fr": "Niveau de pile du boîtier",
        "fr-falc": "La pile du boîtier",
        "en": "Sensor battery level",
        "ar": "مستوى بطارية الجهاز",
    },
    "rssi": {
        "fr": "Qualité de la liaison radio du boîtier",
        "fr-falc": "Le signal radio du boîtier",
        "en": "Sensor radio signal",
        "ar": "جودة إشارة الجهاز",
    },
}

# Why each reading is collected: safety and repairs, or comfort and energy statistics.
PURPOSE_REPAIRS = "repairs"
PURPOSE_COMFORT = "comfort"
NAME_PURPOSES: dict[str, tuple[str, ...]] = {
    "room_temp": (PURPOSE_REPAIRS, PURPOSE_COMFORT),
    "room_setpoint": (PURPOSE_REPAIRS, PURPOSE_COMFORT),
    "flow_temp": (PURPOSE_REPAIRS,),
    "return_temp": (PURPOSE_REPAIRS,),
    "outdoor_temp": (PURPOSE_REPAIRS, PURPOSE_COMFORT),
    "ch_pressure": (PURPOSE_REPAIRS,),
    "flame": (PURPOSE_REPAIRS,),
    "heat_demand": (PURPOSE_REPAIRS, PURPOSE_COMFORT),
    "burner_starts": (PURPOSE_REPAIRS,),
    "fault_active": (PURPOSE_REPAIRS,),
    "fault_code": (PURPOSE_REPAIRS,),
    "fan_rpm": (PURPOSE_REPAIRS,),
    "extract_pressure": (PURPOSE_REPAIRS,),
    "rh": (PURPOSE_REPAIRS, PURPOSE_COMFORT),
    "co2": (PURPOSE_REPAIRS, PURPOSE_COMFORT),
    "filter_alarm": (PURPOSE_REPAIRS,),
    "fan_fault": (PURPOSE_REPAIRS,),
    "battery": (PURPOSE_REPAIRS,),
    "rssi": (PURPOSE_REPAIRS,),
}

PURPOSE_TEXTS: dict[str, dict[str, str]] = {
    PURPOSE_REPAIRS: {
        "fr": "Détecter les pannes et les risques (chauffage, VMC) pour envoyer un technicien "
        "avant que vous ayez à nous appeler.",
        "fr-falc": "Voir vite quand un appareil est en panne, pour envoyer un réparateur.",
        "en": "Detect faults and hazards (heating, ventilation) so that a technician comes "
        "before you have to call us.",
        "ar": "اكتشاف الأعطال والمخاطر (التدفئة والتهوية) لإرسال فني قبل أن تضطر للاتصال بنا.",
    },
    PURPOSE_COMFORT: {
        "fr": "Établir des statistiques de confort et de consommation d'énergie de la résidence.",
        "fr-falc": "Savoir si les logements sont bien chauffés et combien d'énergie est utilisée.",
        "en": "Comfort and energy-use statistics for the residence.",
        "ar": "إحصاءات الراحة واستهلاك الطاقة في المجمع السكني.",
    },
}

KIND_LABELS: dict[str, dict[str, str]] = {
    "heating": {
        "fr": "Chaudière",
        "fr-falc": "La chaudière",
        "en": "Boiler",
        "ar": "المرجل",
    },
    "ventilation": {
        "fr": "Ventilation (VMC)",
        "fr-falc": "La VMC (ventilation)",
        "en": "Ventilation unit",
        "ar": "وحدة التهوية",
    },
}

WHO_SEES: dict[str, str] = {
    "fr": "Le service maintenance de votre bailleur et le technicien chargé de la réparation.",
    "fr-falc": "Les personnes de votre bailleur qui réparent les appareils.",
    "en": "Your landlord's maintenance service and the technician in charge of the repair.",
    "ar": "قسم الصيانة لدى المؤجر والفني المكلف بالإصلاح.",
}

RETENTION_TEXTS: dict[str, str] = {
    "fr": "Mesures détaillées : {raw} jours. Moyennes par heure : {aggregate} jours.",
    "fr-falc": "Les mesures sont gardées {raw} jours. Les moyennes sont gardées {aggregate} jours.",
    "en": "Detailed readings: {raw} days. Hourly averages: {aggregate} days.",
    "ar": "القراءات المفصلة: {raw} يومًا. المتوسطات بالساعة: {aggregate} يومًا.",
}


def in_language(texts: dict[str, str], language: str) -> str:
    """The text in `language`, falling back to French (the landlord's working language)."""
    return texts.get(language) or texts.get(language.split("-")[0]) or texts["fr"]
