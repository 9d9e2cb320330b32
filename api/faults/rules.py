"""The rules Palier ships, as data; docs/fault-rules.md gives each threshold's origin."""

from __future__ import annotations

from api.faults.engine import (
    AllOf,
    AnyOf,
    Cmp,
    CmpSignals,
    CounterRate,
    DailyMean,
    EdgeCount,
    Held,
    LocalTime,
    Quality,
    Rule,
    Season,
    Step,
    Unchanged,
)

MIN = 60.0
HOUR = 3600.0

# Plausible ranges and credible jumps per signal, used by rules that act on the value (the
# data-quality rules themselves see raw values, so that they can notice what is rejected here).
QUALITY: dict[str, Quality] = {
    "room_temp": Quality(low=0.0, high=45.0, max_step=5.0),
    "flow_temp": Quality(low=0.0, high=110.0),
    "return_temp": Quality(low=0.0, high=110.0),
    "ch_pressure": Quality(low=0.0, high=6.0, max_step=1.0),
    "rh": Quality(low=1.0, high=100.0, max_step=30.0),
    "co2": Quality(low=300.0, high=10_000.0, max_step=2_000.0),
    "extract_pressure": Quality(low=0.0, high=1_000.0),
    "fan_rpm": Quality(low=0.0, high=10_000.0),
    "battery": Quality(low=0.0, high=100.0),
}


def _q(*names: str) -> dict[str, Quality]:
    return {name: QUALITY[name] for name in names}


# Maker lockout codes (Saunier Duval / Vaillant "F" codes, as printed in their installation
# manuals), in plain words for the technician and the tenant.
FAULT_CODES: dict[str, dict[str, str]] = {
    "F22": {
        "fr": "Manque d'eau : pression du circuit de chauffage trop basse",
        "en": "Low water: heating circuit pressure too low",
    },
    "F28": {
        "fr": "Échec d'allumage au démarrage (pas de gaz ou allumage défaillant)",
        "en": "Ignition failed at start-up (no gas or faulty ignition)",
    },
    "F29": {
        "fr": "Perte de flamme en fonctionnement",
        "en": "Flame lost during operation",
    },
    "F20": {
        "fr": "Surchauffe : le limiteur de température a coupé la chaudière",
        "en": "Overheat: the safety thermostat shut the boiler down",
    },
    "F75": {
        "fr": "Pompe ou capteur de pression défaillant",
        "en": "Pump or pressure sensor failure",
    },
    "F62": {
        "fr": "Défaut de la vanne gaz",
        "en": "Gas valve fault",
    },
}
UNKNOWN_CODE = {"fr": "Défaut chaudière (code constructeur)", "en": "Boiler fault (maker code)"}


def fault_code_label(code: str | None, language: str = "fr") -> str:
    """The plain label of a maker's lockout code, in French or English."""
    labels = FAULT_CODES.get((code or "").strip().upper(), UNKNOWN_CODE)
    return labels.get(language, labels["en"])


HEAT_DEMANDED = Cmp("heat_demand", "==", True)
DROPOUT = AnyOf((Cmp("co2", "<", 300.0), Cmp("rh", "<=", 0.0)))
FAN_RUNNING_5_MIN = Held("fan_fault", False, 5 * MIN)

RULES: tuple[Rule, ...] = (
    Rule(
        id="boiler_lockout",
        version=1,
        title="Boiler fault or lockout",
        severity="major",
        kind="heating",
        category="boiler",
        condition=Cmp("fault_active", "==", True),
        signals=("fault_active", "fault_code"),
        stale_s=7 * 24 * HOUR,  # a flag holds until the unit says otherwise
        source="Manufacturer: a lockout stops heating and hot water until reset or repair.",
    ),
    Rule(
        id="flame_loss",
        version=1,
        title="Repeated flame loss",
        severity="major",
        kind="heating",
        category="boiler",
        # The flame goes out while heat is still demanded and the water is cold (below any
        # weather-compensated target, so not the normal end of a firing cycle).
        condition=EdgeCount(
            AllOf(
                (
                    Cmp("flame", "==", False),
                    HEAT_DEMANDED,
                    Cmp("flow_temp", "<", 35.0),
                )
            ),
            window_s=HOUR,
            op=">=",
            n=3,
        ),
        clear=EdgeCount(
            AllOf((Cmp("flame", "==", False), HEAT_DEMANDED, Cmp("flow_temp", "<", 35.0))),
            window_s=HOUR,
            op="==",
            n=0,
        ),
        signals=("flame", "heat_demand", "flow_temp"),
        quality=_q("flow_temp"),
        source="Makers lock out after a few failed ignitions or flame losses; 3 in 1 h and "
        "the cold-flow test (flow < 35 °C) are Palier conventions.",
    ),
    Rule(
        id="short_cycling",
        version=1,
        title="Burner short-cycling",
        severity="minor",
        kind="heating",
        category="boiler",
        condition=CounterRate("burner_starts", window_s=HOUR, op=">", n=6),
        persistence_s=2 * HOUR,
        off_delay_s=HOUR,
        signals=("burner_starts",),
        source="Heating practice and makers' anti-cycling settings: more than about 6 starts "
        "an hour wears the burner and wastes gas; the 2 h persistence is a Palier convention.",
    ),
    Rule(
        id="low_pressure",
        version=1,
        title="Low heating-circuit pressure",
        severity="major",
        kind="heating",
        category="boiler",
        condition=Cmp("ch_pressure", "<", 0.8),
        clear=Cmp("ch_pressure", ">=", 1.0),
        persistence_s=30 * MIN,
        off_delay_s=5 * MIN,
        steps=(Step(Cmp("ch_pressure", "<", 0.5), "critical"),),
        quality=_q("ch_pressure"),
        source="Manufacturer installation manuals (sealed circuits run at 1–2 bar cold; most "
        "boilers lock out below 0.5–0.6 bar).",
    ),
    Rule(
        id="high_pressure",
        version=1,
        title="High heating-circuit pressure",
        severity="major",
        kind="heating",
        category="boiler",
        condition=Cmp("ch_pressure", ">", 2.7),
        clear=Cmp("ch_pressure", "<=", 2.5),
        persistence_s=5 * MIN,
        off_delay_s=5 * MIN,
        quality=_q("ch_pressure"),
        source="Manufacturer manuals: the safety valve of a domestic sealed circuit opens at "
        "3 bar; 2.7 bar leaves a margin before it discharges.",
    ),
    Rule(
        id="no_heat",
        version=1,
        title="No heat: heat demanded, flow stays cold",
        severity="major",
        kind="heating",
        category="heating",
        condition=CmpSignals("flow_temp", "<=", "room_temp", 5.0),
        gates=(Held("heat_demand", True, 10 * MIN),),
        persistence_s=30 * MIN,
        off_delay_s=5 * MIN,
        quality=_q("flow_temp", "room_temp"),
        source="Palier convention from heating practice: a firing boiler's flow is 15 °C or "
        "more above the room within minutes; 5 °C over 30 min excludes the start-up.",
    ),
    Rule(
        id="cold_dwelling",
        version=1,
        title="Cold dwelling",
        severity="minor",
        kind="heating",
        category="heating",
        condition=Cmp("room_temp", "<", 18.0),
        clear=Cmp("room_temp", ">=", 18.5),
        gates=(Season(), LocalTime(7.0, 23.0), HEAT_DEMANDED),
        persistence_s=3 * HOUR,
        off_delay_s=30 * MIN,
        steps=(
            Step(Cmp("room_temp", "<", 16.0), "major"),
            Step(Cmp("room_temp", "<", 14.0), "critical"),
        ),
        quality=_q("room_temp"),
        source="WHO Housing and health guidelines 2018 (18 °C minimum indoors in cold "
        "seasons); Code de l'énergie R241-26 (19 °C average heating limit). Steps at 16 and "
        "14 °C: Palier convention.",
    ),
    Rule(
        id="overheating",
        version=1,
        title="Overheating",
        severity="minor",
        kind="heating",
        category="heating",
        condition=Cmp("room_temp", ">", 26.0),
        clear=Cmp("room_temp", "<=", 25.0),
        gates=(Season(),),
        persistence_s=6 * HOUR,
        off_delay_s=30 * MIN,
        quality=_q("room_temp"),
        source="Code de l'énergie R241-26 (19 °C average limit); 26 °C is the usual comfort "
        "limit (RE2020 summer indicator): in heating season it means a control fault.",
    ),
    Rule(
        id="fan_stopped",
        version=1,
        title="Ventilation fan stopped",
        severity="major",
        kind="ventilation",
        category="ventilation",
        condition=AnyOf((Cmp("fan_rpm", "==", 0.0), Cmp("fan_fault", "==", True))),
        clear=AllOf((Cmp("fan_rpm", ">", 0.0), Cmp("fan_fault", "==", False))),
        persistence_s=10 * MIN,
        off_delay_s=2 * MIN,
        quality=_q("fan_rpm"),
        params={"gas_interlock": {"persistence_s": 0.0, "severity": "critical"}},
        source="Arrêté du 24 mars 1982 (permanent ventilation of dwellings); VMC-gaz: arrêté "
        "du 25 avril 1985 (the safety device stops gas appliances when extract fails).",
    ),
    Rule(
        id="extract_pressure",
        version=1,
        title="Extract pressure out of range",
        severity="minor",
        kind="ventilation",
        category="ventilation",
        condition=AnyOf((Cmp("extract_pressure", "<", 50.0), Cmp("extract_pressure", ">", 200.0))),
        clear=AllOf((Cmp("extract_pressure", ">=", 60.0), Cmp("extract_pressure", "<=", 180.0))),
        gates=(FAN_RUNNING_5_MIN,),
        persistence_s=30 * MIN,
        off_delay_s=10 * MIN,
        quality=_q("extract_pressure"),
        source="Working range of hygro-adjustable extract units (makers' data and CSTB Avis "
        "Techniques, about 50–200 Pa at the unit); exact limits per model are overridable.",
    ),
    Rule(
        id="damp_risk",
        version=1,
        title="Damp risk",
        severity="minor",
        kind="ventilation",
        category="ventilation",
        condition=DailyMean("rh", ">", 70.0, days=3),
        clear=DailyMean("rh", "<=", 65.0, days=1),
        signals=("rh",),
        stale_s=3 * HOUR,
        quality=_q("rh"),
        source="IEA Annex 14 mould criterion (monthly mean surface RH 80 %); indoor RH above "
        "70 % is the usual proxy; three days running is a Palier convention.",
    ),
    Rule(
        id="co2_high",
        version=1,
        title="Poor indoor air (CO2)",
        severity="minor",
        kind="ventilation",
        category="ventilation",
        condition=Cmp("co2", ">", 1500.0),
        clear=Cmp("co2", "<=", 1300.0),
        persistence_s=HOUR,
        off_delay_s=15 * MIN,
        quality=_q("co2"),
        source="Règlement sanitaire départemental type art. 64 (1,000 ppm, 1,300 ppm where "
        "smoking is banned); 1,500 ppm for 1 h, above that, is a Palier convention.",
    ),
    Rule(
        id="filter_alarm",
        version=1,
        title="Filter to replace",
        severity="minor",
        kind="ventilation",
        category="ventilation",
        condition=Cmp("filter_alarm", "==", True),
        stale_s=7 * 24 * HOUR,
        source="Manufacturer: the unit sets the flag when the filter's pressure drop is too high.",
    ),
    Rule(
        id="sensor_stuck",
        version=1,
        title="Sensor stuck",
        severity="minor",
        kind="any",
        category="sensor",
        # Rounded to 0.1 °C, 0.1 %RH or 1 ppm, these signals always move within hours in a
        # lived-in dwelling; identical values for 6 h mean a frozen sensor or firmware.
        condition=AnyOf(
            (
                Unchanged("room_temp", 6 * HOUR),
                Unchanged("rh", 6 * HOUR),
                Unchanged("co2", 6 * HOUR),
            )
        ),
        off_delay_s=10 * MIN,
        stale_s=2 * HOUR,
        source="Palier convention (data-quality stage): identical values for 6 h of a signal "
        "that varies in a lived-in dwelling.",
    ),
    Rule(
        id="co2_implausible",
        version=1,
        title="CO2 reading implausible",
        severity="minor",
        kind="ventilation",
        category="sensor",
        condition=Cmp("co2", "<", 300.0),
        clear=Cmp("co2", ">=", 350.0),
        persistence_s=HOUR,
        off_delay_s=30 * MIN,
        stale_s=2 * HOUR,
        source="Outdoor air is about 420 ppm (NOAA global mean 2024): indoor CO2 cannot be "
        "lower; below 300 ppm is a dead or miscalibrated sensor (Sensirion SCD4x: ±50 ppm).",
    ),
    Rule(
        id="sensor_dropouts",
        version=1,
        title="Sensor drop-outs",
        severity="minor",
        kind="ventilation",
        category="sensor",
        # Single readings of impossible values (0 ppm, 0 %RH) between good ones: a failing sensor
        # or bus, too brief for the persistence of co2_implausible.
        condition=EdgeCount(DROPOUT, window_s=24 * HOUR, op=">=", n=3),
        clear=EdgeCount(DROPOUT, window_s=24 * HOUR, op="==", n=0),
        signals=("co2", "rh"),
        stale_s=2 * HOUR,
        source="Palier convention (data-quality stage): 3 drop-outs to impossible values in 24 h.",
    ),
    Rule(
        id="device_offline",
        version=1,
        title="Unit offline",
        severity="minor",
        kind="any",
        category="connectivity",
        condition=None,
        offline_after_s=3 * 60.0,  # 3 reporting intervals; set from the unit's interval
        source="Palier convention: silent for 3 reporting intervals (MQTT keep-alive practice).",
    ),
    Rule(
        id="battery_low",
        version=1,
        title="Battery low",
        severity="minor",
        kind="any",
        category="sensor",
        condition=Cmp("battery", "<", 15.0),
        clear=Cmp("battery", ">=", 20.0),
        persistence_s=HOUR,
        stale_s=6 * HOUR,
        quality=_q("battery"),
        source="Palier convention for battery-powered units (a few weeks left at 15 %).",
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def rules_for(kind: str) -> tuple[Rule, ...]:
    """The shipped rules that apply to a unit of this kind ("heating" or "ventilation")."""
    return tuple(rule for rule in RULES if rule.kind in ("any", kind))
