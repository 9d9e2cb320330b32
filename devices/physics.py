"""Physical models of a dwelling, its boiler and its ventilation unit, for the fleet simulator.

Everything here is pure and deterministic: state advances on a fixed time grid from a seed, so
the same seed and the same start time give the same readings however the caller slices time.
Units are SI unless named otherwise (W, J/K, m³, g/m³, ppm, bar, Pa, rpm).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

GRID_S = 30.0
DAY_S = 86_400.0
YEAR_S = 365.25 * DAY_S
TIMEZONE = ZoneInfo("Europe/Paris")
OUTDOOR_CO2_PPM = 420.0
WATER_HEAT_CAPACITY = 4186.0  # J/(kg·K)


def stable_seed(*parts: object) -> int:
    """A seed that depends only on its parts (Python's hash() is salted per process)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


@lru_cache(maxsize=4096)
def _utc_offset_s(hour_index: int) -> float:
    moment = datetime.fromtimestamp(hour_index * 3600, TIMEZONE)
    offset = moment.utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def local_seconds(t: float) -> float:
    """Seconds since 1970-01-01 in local (Paris) wall-clock time."""
    return t + _utc_offset_s(int(t // 3600))


def local_hour(t: float) -> float:
    """Hour of the local day, 0 ≤ h < 24."""
    return (local_seconds(t) % DAY_S) / 3600.0


def local_day(t: float) -> int:
    """Local day number (changes at local midnight)."""
    return int(local_seconds(t) // DAY_S)


def saturation_vapour_density(temp_c: float) -> float:
    """Water vapour density at saturation, g/m³ (fit valid from -20 to 50 °C)."""
    return 5.018 + 0.32321 * temp_c + 8.1847e-3 * temp_c**2 + 3.1243e-4 * temp_c**3


@dataclass
class Climate:
    """Outdoor weather of a site: seasons, day and night, and slow weather systems."""

    seed: int
    annual_mean: float = 12.0
    annual_amplitude: float = 8.0
    daily_amplitude: float = 3.5
    _phases: tuple[float, float, float] = field(init=False)
    _cache: dict[float, tuple[float, float, float, float]] = field(
        init=False, default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        rng = random.Random(stable_seed("climate", self.seed))
        self._phases = (rng.uniform(0, 6.3), rng.uniform(0, 6.3), rng.uniform(0, 6.3))

    def outdoor_temp(self, t: float) -> float:
        """Air temperature, °C: coldest mid-January, coldest hour at 05:00."""
        day_of_year = (t % YEAR_S) / DAY_S
        seasonal = self.annual_mean - self.annual_amplitude * math.cos(
            2 * math.pi * (day_of_year - 15) / 365.25
        )
        hour = local_hour(t)
        # Coldest at 05:00, warmest at 15:00: rises over 10 hours, falls over 14.
        if 5 <= hour < 15:
            daily = -self.daily_amplitude * math.cos(math.pi * (hour - 5) / 10)
        else:
            daily = self.daily_amplitude * math.cos(math.pi * ((hour - 15) % 24) / 14)
        p1, p2, p3 = self._phases
        days = t / DAY_S
        weather = (
            2.5 * math.sin(2 * math.pi * days / 4.3 + p1)
            + 1.5 * math.sin(2 * math.pi * days / 7.9 + p2)
            + 0.8 * math.sin(2 * math.pi * days / 2.1 + p3)
        )
        return seasonal + daily + weather

    def at(self, t: float) -> tuple[float, float, float, float]:
        """(local hour, outdoor °C, outdoor vapour g/m³, solar gain per unit of window), cached.

        Every dwelling of a site visits the same grid times, so each is computed once.
        """
        cached = self._cache.get(t)
        if cached is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            outdoor = self.outdoor_temp(t)
            vapour = self.outdoor_rh(t) / 100 * saturation_vapour_density(outdoor)
            cached = (local_hour(t), outdoor, vapour, self.solar_gain(t, 1.0))
            self._cache[t] = cached
        return cached

    def outdoor_rh(self, t: float) -> float:
        """Relative humidity outside, %: damper at night and in winter."""
        day_of_year = (t % YEAR_S) / DAY_S
        seasonal = 78 + 8 * math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
        hour = local_hour(t)
        return min(98.0, seasonal + 8 * math.cos(2 * math.pi * (hour - 5) / 24))

    def solar_gain(self, t: float, area_factor: float) -> float:
        """Sun through the windows, W: a daytime bump, larger in summer."""
        hour = local_hour(t)
        if not 8 <= hour <= 18:
            return 0.0
        day_of_year = (t % YEAR_S) / DAY_S
        season = 0.6 - 0.4 * math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
        return area_factor * 500.0 * season * math.sin(math.pi * (hour - 8) / 10)


@dataclass
class DaySchedule:
    """Who is at home on one day, and when the showers and cooking happen (local hours)."""

    leave: float
    back: float
    stays_home: bool
    shower: float
    dinner: float


@dataclass
class Occupancy:
    """A household: how many people, and their daily routine (at home evenings and nights)."""

    seed: int
    people: int
    home_in_daytime: float
    _days: dict[int, DaySchedule] = field(default_factory=dict, init=False)

    def schedule(self, day: int) -> DaySchedule:
        cached = self._days.get(day)
        if cached is None:
            rng = random.Random(stable_seed("occupancy", self.seed, day))
            weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
            cached = DaySchedule(
                leave=rng.uniform(7.0, 9.0) if not weekend else rng.uniform(10.0, 14.0),
                back=rng.uniform(16.5, 19.5) if not weekend else rng.uniform(15.0, 19.0),
                stays_home=rng.random() < (self.home_in_daytime + (0.4 if weekend else 0.0)),
                shower=rng.uniform(6.3, 8.0) if not weekend else rng.uniform(8.0, 10.5),
                dinner=rng.uniform(18.8, 20.2),
            )
            if len(self._days) > 16:
                self._days.clear()
            self._days[day] = cached
        return cached

    def at_home(self, t: float, hour: float | None = None) -> int:
        """People at home at time t."""
        hour = local_hour(t) if hour is None else hour
        day = self.schedule(local_day(t))
        if day.stays_home or not day.leave <= hour < day.back:
            return self.people
        return 0

    def moisture_events(self, t: float, people: int, hour: float | None = None) -> float:
        """Extra moisture from showers and cooking, g/h."""
        if people == 0:
            return 0.0
        hour = local_hour(t) if hour is None else hour
        day = self.schedule(local_day(t))
        extra = 0.0
        if day.shower <= hour < day.shower + 0.25 * people:
            extra += 700.0
        if day.dinner <= hour < day.dinner + 0.75:
            extra += 450.0
        return extra


@dataclass
class Faults:
    """What is broken in a dwelling's equipment right now (set and cleared by scenarios)."""

    lockout_code: str | None = None
    gas_cut: bool = False
    gas_cut_lockout_at: float | None = None
    pump_failed: bool = False
    leak_bar_per_hour: float = 0.0
    radiator_factor: float = 1.0
    heat_loss_factor: float = 1.0
    fan_stopped: bool = False
    clog_per_hour: float = 0.0
    extract_factor: float = 1.0
    extra_moisture_g_h: float = 0.0
    co2_stuck_zero: bool = False
    silent: set[str] = field(default_factory=set)

    def clear(self) -> None:
        """Everything repaired."""
        self.__init__()


@dataclass
class Dwelling:
    """One dwelling's thermal and air state, with its boiler and its ventilation unit."""

    ref: str
    building: str
    seed: int
    climate: Climate
    t: float
    # Building fabric and heating system.
    heat_loss_w_k: float = 150.0
    heat_capacity_j_k: float = 8.0e6
    radiator_w_k13: float = 37.0
    boiler_min_w: float = 4_000.0
    boiler_max_w: float = 24_000.0
    water_capacity_j_k: float = 2.5e5
    pump_kg_s: float = 0.15
    setpoint_day: float = 20.0
    setpoint_night: float = 17.0
    cold_fill_bar: float = 1.3
    # Ventilation.
    volume_m3: float = 150.0
    base_rpm: float = 2_000.0
    clog: float = 0.05
    # State.
    room_temp: float = 19.5
    water_temp: float = 30.0
    sensor_temp: float = 30.0
    flame: bool = False
    heat_demand: bool = False
    burner_starts: int = 0
    vapour_g_m3: float = 7.0
    co2_ppm: float = 600.0
    fan_rpm: float = 2_000.0
    battery: float = 90.0
    faults: Faults = field(default_factory=Faults)
    occupancy: Occupancy | None = None
    solar_factor: float = 1.0
    _radiator_w: float = 0.0

    @classmethod
    def create(cls, ref: str, building: str, *, seed: int, climate: Climate, t: float) -> Dwelling:
        """A dwelling with plausible, seeded variety (size, insulation, habits)."""
        rng = random.Random(stable_seed("dwelling", seed, ref))
        people = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
        size = rng.uniform(0.75, 1.35)
        dwelling = cls(
            ref=ref,
            building=building,
            seed=stable_seed(seed, ref),
            climate=climate,
            t=t,
            heat_loss_w_k=130.0 * size * rng.uniform(0.85, 1.2),
            heat_capacity_j_k=8.0e6 * size,
            radiator_w_k13=37.0 * size,
            setpoint_day=rng.choice([19.0, 19.5, 20.0, 20.0, 20.5, 21.0]),
            setpoint_night=rng.choice([17.0, 17.0, 17.5, 18.0]),
            cold_fill_bar=rng.uniform(1.15, 1.4),
            volume_m3=110.0 * size,
            base_rpm=rng.uniform(1_900.0, 2_150.0),
            clog=rng.uniform(0.0, 0.12),
            battery=rng.uniform(60.0, 100.0),
            solar_factor=rng.uniform(0.5, 1.5),
            occupancy=Occupancy(
                seed=stable_seed("household", seed, ref),
                people=people,
                home_in_daytime=rng.choice([0.05, 0.1, 0.2, 0.7]),
            ),
        )
        outdoor = climate.outdoor_temp(t)
        dwelling.room_temp = max(dwelling.setpoint_night, min(22.0, 18.0 + 0.15 * outdoor))
        dwelling.water_temp = dwelling.room_temp + 5.0
        dwelling.sensor_temp = dwelling.room_temp + 1.5
        dwelling.vapour_g_m3 = 0.45 * saturation_vapour_density(dwelling.room_temp)
        return dwelling

    # --- derived readings -----------------------------------------------------------------

    def setpoint(self, t: float | None = None) -> float:
        return self._setpoint_at(local_hour(self.t if t is None else t))

    def _setpoint_at(self, hour: float) -> float:
        return self.setpoint_day if 6.0 <= hour < 23.0 else self.setpoint_night

    def people(self) -> int:
        assert self.occupancy is not None
        return self.occupancy.at_home(self.t)

    def circulating(self) -> bool:
        return self.heat_demand and not self.faults.pump_failed

    def flow_return(self) -> tuple[float, float]:
        """Flow and return temperatures at the boiler's sensors, °C."""
        if not self.circulating():
            return self.sensor_temp, self.sensor_temp - 0.3
        delta = self._radiator_w / (self.pump_kg_s * WATER_HEAT_CAPACITY)
        return self.water_temp + delta / 2, self.water_temp - delta / 2

    def pressure_bar(self) -> float:
        """Heating-circuit pressure: the cold fill plus thermal expansion and a daily wobble."""
        wobble = 0.03 * math.sin(2 * math.pi * local_hour(self.t) / 24)
        return max(0.0, self.cold_fill_bar + 0.006 * (self.water_temp - 20.0) + wobble)

    def relative_humidity(self) -> float:
        return min(99.0, 100.0 * self.vapour_g_m3 / saturation_vapour_density(self.room_temp))

    def extract_pressure_pa(self) -> float:
        """Static pressure in the extract duct: rises with fan speed and with a clogged filter."""
        return 100.0 * (self.fan_rpm / 2_000.0) ** 2 * (1.0 + self.clog)

    def fault_code(self) -> str | None:
        return self.faults.lockout_code

    def filter_alarm(self) -> bool:
        return self.clog >= 0.8

    # --- time ------------------------------------------------------------------------------

    def advance_to(self, t: float) -> None:
        """Advance the state on the fixed grid up to the last grid point ≤ t."""
        while self.t + GRID_S <= t:
            self._step(GRID_S)
            self.t += GRID_S

    def _step(self, dt: float) -> None:
        faults = self.faults
        t = self.t
        hour, outdoor, outdoor_vapour, sun = self.climate.at(t)
        assert self.occupancy is not None
        people = self.occupancy.at_home(t, hour)
        setpoint = self._setpoint_at(hour)

        # Room thermostat with hysteresis.
        if self.room_temp < setpoint - 0.3:
            self.heat_demand = True
        elif self.room_temp > setpoint + 0.3:
            self.heat_demand = False

        # Boiler: weather-compensated flow target, on/off band around it.
        if faults.leak_bar_per_hour:
            pressure = self.pressure_bar()
            self.cold_fill_bar = max(0.0, self.cold_fill_bar - faults.leak_bar_per_hour * dt / 3600)
            if pressure < 0.5 and faults.lockout_code is None:
                faults.lockout_code = "F22"  # low water pressure: the boiler protects itself
        target = min(75.0, max(35.0, setpoint + 15.0 + 1.6 * (setpoint - outdoor)))
        if faults.gas_cut and faults.lockout_code is None:
            # The boiler locks out at its next ignition attempt: for heating, or for hot water.
            wants_to_fire = self.heat_demand and self.water_temp < target - 4.0
            hot_water_draw = (
                faults.gas_cut_lockout_at is not None and t >= faults.gas_cut_lockout_at
            )
            if wants_to_fire or hot_water_draw:
                faults.lockout_code = "F28"  # no ignition: no gas reaches the burner
        can_fire = (
            self.heat_demand
            and not faults.pump_failed
            and faults.lockout_code is None
            and not faults.gas_cut
        )
        if self.flame and (not can_fire or self.water_temp > target + 4.0):
            self.flame = False
        elif not self.flame and can_fire and self.water_temp < target - 4.0:
            self.flame = True
            self.burner_starts += 1

        # Radiators: full output when the pump runs, a little natural convection otherwise.
        excess = max(0.0, self.water_temp - self.room_temp)
        radiator = self.radiator_w_k13 * faults.radiator_factor * excess**1.3
        if not self.circulating():
            radiator *= 0.25
        self._radiator_w = radiator
        boiler = min(self.boiler_max_w, max(self.boiler_min_w, 1.3 * radiator)) if self.flame else 0
        self.water_temp += (boiler - radiator) / self.water_capacity_j_k * dt
        # Without circulation the few litres around the boiler's sensors cool to the cupboard.
        if self.circulating():
            self.sensor_temp = self.water_temp
        else:
            self.sensor_temp += (self.room_temp + 1.5 - self.sensor_temp) * min(1.0, dt / 900.0)

        gains = 80.0 * people + 150.0 + sun * self.solar_factor
        losses = self.heat_loss_w_k * faults.heat_loss_factor * (self.room_temp - outdoor)
        self.room_temp += (radiator + gains - losses) / self.heat_capacity_j_k * dt

        # Ventilation: humidity-controlled extract fan, filter slowly clogging.
        self.clog += (0.0005 / 24 + faults.clog_per_hour) * dt / 3600
        rh = self.relative_humidity()
        boost = 1.2 if rh > 65 or self.co2_ppm > 1_200 else 1.0
        target_rpm = 0.0 if faults.fan_stopped else self.base_rpm * boost
        self.fan_rpm += (target_rpm - self.fan_rpm) * min(1.0, dt / 60.0)
        airflow = 90.0 * (self.fan_rpm / 2_000.0) * max(0.2, 1.0 - 0.45 * min(self.clog, 1.6))
        airflow = airflow * faults.extract_factor + 12.0  # plus infiltration, m³/h
        exchange = airflow / self.volume_m3 * dt / 3600  # fraction of the air renewed

        co2_gen_m3_h = people * (0.013 if hour < 6.5 else 0.018)
        self.co2_ppm += co2_gen_m3_h * 1e6 / self.volume_m3 * dt / 3600
        self.co2_ppm += (OUTDOOR_CO2_PPM - self.co2_ppm) * min(1.0, exchange)

        moisture = people * 55.0 + self.occupancy.moisture_events(t, people, hour)
        moisture += faults.extra_moisture_g_h
        self.vapour_g_m3 += moisture / self.volume_m3 * dt / 3600
        self.vapour_g_m3 += (outdoor_vapour - self.vapour_g_m3) * min(1.0, exchange)
        # Beyond saturation the water condenses on the coldest walls.
        self.vapour_g_m3 = min(self.vapour_g_m3, 0.97 * saturation_vapour_density(self.room_temp))

        self.battery = max(0.0, self.battery - 0.01 * dt / DAY_S)
