"""Fault scenarios for the fleet simulator: each a named, documented change to the physics.

A scenario function changes one dwelling's physics (`device_id` is the unit it targets there);
`FleetModel.schedule` applies it at a simulated time and returns the devices it affects, so that
a benchmark knows the ground truth. `heal` repairs everything a scenario broke.
The `expect` of each scenario names, in plain words, the fault rule that should catch it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devices.physics import Dwelling
    from devices.simulator import FleetModel


@dataclass(frozen=True)
class Scenario:
    """A named fault: which kind of unit it hits, what happens, what should detect it."""

    name: str
    kind: str
    expect: str
    apply: Callable[[FleetModel, Dwelling, str | None, float, random.Random], None]
    building_wide: bool = False

    @property
    def description(self) -> str:
        return (self.apply.__doc__ or "").strip()


SCENARIOS: dict[str, Scenario] = {}


def scenario(kind: str, expect: str, *, building_wide: bool = False):
    """Register a scenario function under its own name."""

    def register(function: Callable) -> Callable:
        SCENARIOS[function.__name__] = Scenario(
            function.__name__, kind, expect, function, building_wide
        )
        return function

    return register


@scenario("heating", "boiler fault flag / lockout code (at once, major)")
def boiler_lockout(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """The boiler locks out with fault code F28 (ignition failure): no flame, the room cools."""
    dwelling.faults.lockout_code = "F28"


@scenario("heating", "low heating-circuit pressure (< 0.8 bar for 30 min, then critical)")
def slow_pressure_leak(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """A weeping valve: the circuit loses 0.15 bar an hour until the boiler locks out (F22)."""
    dwelling.faults.leak_bar_per_hour = 0.15


@scenario("heating", "no heat: heat demanded, flow not above room + 5 °C for 30 min")
def pump_failure(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """The circulator seizes: heat is demanded, the boiler cannot fire, the flow stays cold."""
    dwelling.faults.pump_failed = True


@scenario("heating", "cold dwelling (< 18 °C for 3 h by day while heat is demanded)")
def cold_dwelling(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """Radiator valves stuck nearly shut, a draughty window: the boiler runs, the room is cold."""
    dwelling.faults.radiator_factor = 0.12
    dwelling.faults.heat_loss_factor = 1.6


@scenario("ventilation", "ventilation fan stopped (fan_rpm 0 or fan_fault for 10 min)")
def fan_stopped(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """The extract fan's motor fails: 0 rpm, fan_fault set, no extract pressure."""
    dwelling.faults.fan_stopped = True


@scenario("ventilation", "filter alarm, then extract pressure above 200 Pa for 30 min")
def clogged_filter(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """Grease and dust block the filter within hours: pressure climbs, the filter alarm sets."""
    dwelling.clog = max(dwelling.clog, 0.6)
    dwelling.faults.clog_per_hour = 0.12


@scenario("ventilation", "damp risk (daily mean RH > 70 % three days running)")
def damp_dwelling(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """Extract vents taped over, laundry dried indoors, a cooler flat: humidity stays high."""
    dwelling.faults.extract_factor = 0.15
    dwelling.faults.extra_moisture_g_h = 250.0
    dwelling.faults.heat_loss_factor = 1.3


@scenario("ventilation", "CO2 implausible (< 300 ppm for 1 h)")
def co2_stuck_zero(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """The CO2 sensor dies and reports 0 ppm from now on."""
    dwelling.faults.co2_stuck_zero = True


@scenario("any", "device offline (silent for 3 reporting intervals)")
def device_silent(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """The unit's firmware hangs: still connected, it publishes nothing more (no last will)."""
    if device_id is not None:
        dwelling.faults.silent.add(device_id)


@scenario(
    "heating",
    "one building incident (≥ 30 % of its dwellings lock out within 30 min), no single alerts",
    building_wide=True,
)
def building_heat_loss(
    fleet: FleetModel, dwelling: Dwelling, device_id: str | None, at: float, rng: random.Random
) -> None:
    """The building's gas supply is cut: every boiler locks out (F28) at its next ignition."""
    for neighbour in fleet.dwellings_of_building(dwelling.building):
        neighbour.faults.gas_cut = True
        # A hot-water draw makes a boiler try to fire within minutes even without heat demand.
        neighbour.faults.gas_cut_lockout_at = at + rng.uniform(60.0, 20 * 60.0)


def heal(dwelling: Dwelling) -> None:
    """A technician's visit: every fault repaired, circuit refilled, filter replaced."""
    dwelling.faults.clear()
    dwelling.cold_fill_bar = max(dwelling.cold_fill_bar, 1.3)
    if dwelling.clog >= 0.5:
        dwelling.clog = 0.02
