"""The fleet simulator: heating and ventilation units that speak contract v1 over MQTT.

Two layers, so the model can be driven without a broker:

- `FleetModel`: a pure, seeded generator. `FleetModel(specs, start=..., interval=...)
  .step(sim_time)` advances the physics (devices/physics.py) to `sim_time` and returns the
  `(topic, payload)` messages the units would have published by then, timestamped in simulated
  (event) time. Scenarios (devices/scenarios.py) are scheduled on it at simulated times.
- `Runner`: one thread and one selector for the whole fleet; one paho-mqtt client per device,
  each logging in with its own credentials (username = client id = device id). MQTT 5 where the
  broker supports it, 3.1.1 otherwise; QoS 1; retained `status` (`online`, last will
  `offline`) and `meta`; reconnection with jittered exponential backoff; readings taken while
  offline are buffered and published after reconnection with negative `t` offsets.

`palier simulate --help` lists the options; docs/mqtt.md describes the contract.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import selectors
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from devices import contract
from devices.contract import Envelope, Meta, Record, make_record
from devices.physics import GRID_S, Climate, Dwelling, stable_seed
from devices.scenarios import SCENARIOS, heal

logger = logging.getLogger("palier.simulator")

DEFAULT_BROKER = "mqtt://127.0.0.1:1884"
FLEET_FILE_NAME = "simulator-fleet.json"
MODELS = {
    "heating": ("Saunier Duval ThemaPlus Condens F25", "2.3.1"),
    "ventilation": ("Aldes EasyHOME Hygro Premium", "1.8.0"),
}
# Envelopes of buffered readings are kept well under the 8 KiB limit.
FLUSH_TARGET_BYTES = 6_000
BUFFER_MAX_SAMPLES = 5_000
EVENT_NAMES = {
    "heating": ("fault_active", "fault_code"),
    "ventilation": ("fan_fault", "filter_alarm"),
}

Message = tuple[str, bytes]


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated unit: identity, credentials and where it is installed."""

    device_id: str
    fleet: str
    kind: str
    dwelling: str
    building: str
    username: str | None = None
    password: str | None = None

    @property
    def login(self) -> str:
        return self.username or self.device_id


@dataclass
class DeviceState:
    """The firmware side of one unit: boot, sequence, report clock and offline buffer."""

    spec: DeviceSpec
    boot: int
    rng: random.Random
    next_report: float
    rssi_base: float
    seq: int = 0
    flags: tuple = ()
    buffer: deque = field(default_factory=lambda: deque(maxlen=BUFFER_MAX_SAMPLES))

    def next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq


def demo_specs(
    count: int, *, fleet: str = "sim", prefix: str = "sim", per_building: int = 10
) -> list[DeviceSpec]:
    """`count` units without a fleet file: a boiler and a ventilation unit per dwelling."""
    specs = []
    for index in range(count):
        dwelling_index = index // 2
        kind = "heating" if index % 2 == 0 else "ventilation"
        short = "heat" if kind == "heating" else "vent"
        specs.append(
            DeviceSpec(
                device_id=f"{prefix}-{short}-{dwelling_index:04d}",
                fleet=fleet,
                kind=kind,
                dwelling=f"{prefix}-dw-{dwelling_index:04d}",
                building=f"{prefix}-bldg-{dwelling_index // per_building:03d}",
            )
        )
    return specs


def load_fleet_file(path: Path | str) -> tuple[str | None, list[DeviceSpec]]:
    """Read a fleet file ({"broker", "devices": [...]}) as written by `palier seed-demo`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    specs = [
        DeviceSpec(
            device_id=item["device_id"],
            fleet=item["fleet"],
            kind=item.get("kind", "heating"),
            dwelling=str(item.get("dwelling") or item["device_id"]),
            building=str(item.get("building") or item.get("dwelling") or "building"),
            username=item.get("username"),
            password=item.get("password"),
        )
        for item in data.get("devices", [])
    ]
    return data.get("broker"), specs


class FleetModel:
    """A deterministic fleet: same seed, start and schedule give the same messages."""

    def __init__(
        self,
        specs: Iterable[DeviceSpec],
        *,
        start: float,
        interval: float = 60.0,
        seed: int = 0,
        boot: int = 1,
    ) -> None:
        if interval < GRID_S:
            raise ValueError(f"interval must be at least {GRID_S:.0f} s")
        self.start = start
        self.interval = interval
        self.seed = seed
        self.climate = Climate(seed=seed)
        self.devices: dict[str, DeviceState] = {}
        self.dwellings: dict[str, Dwelling] = {}
        self._by_dwelling: dict[str, list[DeviceState]] = {}
        self._pending: dict[str, list[tuple[float, int, Callable[[Dwelling], None]]]] = {}
        self._order = 0
        for spec in specs:
            dwelling = self.dwellings.get(spec.dwelling)
            if dwelling is None:
                dwelling = Dwelling.create(
                    spec.dwelling, spec.building, seed=seed, climate=self.climate, t=start
                )
                self.dwellings[spec.dwelling] = dwelling
                self._by_dwelling[spec.dwelling] = []
                self._pending[spec.dwelling] = []
            rng = random.Random(stable_seed("device", seed, spec.device_id))
            # Units are not synchronised: each reports at its own phase of the interval.
            phase = GRID_S * rng.randrange(max(1, int(interval // GRID_S)))
            state = DeviceState(
                spec=spec,
                boot=boot,
                rng=rng,
                next_report=start + phase,
                rssi_base=rng.uniform(-85.0, -55.0),
            )
            self.devices[spec.device_id] = state
            self._by_dwelling[spec.dwelling].append(state)

    # --- structure --------------------------------------------------------------------------

    def devices_of(self, dwelling_ref: str) -> list[str]:
        return [state.spec.device_id for state in self._by_dwelling[dwelling_ref]]

    def dwellings_of_building(self, building: str) -> list[Dwelling]:
        return [d for d in self.dwellings.values() if d.building == building]

    def eligible(self, scenario_name: str) -> list[str]:
        """Devices a scenario can target (the right kind), sorted."""
        kind = SCENARIOS[scenario_name].kind
        return sorted(d for d, s in self.devices.items() if kind in ("any", s.spec.kind))

    # --- scenarios --------------------------------------------------------------------------

    def _schedule(self, dwelling_ref: str, at: float, action: Callable[[Dwelling], None]) -> None:
        self._order += 1
        self._pending[dwelling_ref].append((at, self._order, action))
        self._pending[dwelling_ref].sort(key=lambda item: (item[0], item[1]))

    def schedule(self, name: str, at: float, *, device_id: str | None = None) -> list[str]:
        """Start scenario `name` at simulated time `at`; returns the devices it affects."""
        scenario = SCENARIOS[name]
        candidates = self.eligible(name)
        if not candidates:
            raise ValueError(f"no {scenario.kind} unit in the fleet for {name}")
        target = device_id or candidates[0]
        if target not in candidates:
            raise ValueError(f"{target} cannot run {name} (needs a {scenario.kind} unit)")
        dwelling = self.dwellings[self.devices[target].spec.dwelling]
        targets = (
            self.dwellings_of_building(dwelling.building) if scenario.building_wide else [dwelling]
        )
        affected = []
        for each in targets:
            rng = random.Random(stable_seed("scenario", self.seed, name, each.ref, at))
            unit = target if each is dwelling else None
            kind_units = [
                s.spec.device_id
                for s in self._by_dwelling[each.ref]
                if scenario.kind in ("any", s.spec.kind)
            ]
            device = unit or (kind_units[0] if kind_units else None)

            def action(d: Dwelling, _rng=rng, _device=device) -> None:
                scenario.apply(self, d, _device, at, _rng)

            self._schedule(each.ref, at, action)
            affected += [unit] if unit else kind_units
        return affected

    def heal(self, device_ids: Iterable[str], at: float) -> None:
        """Repair the dwellings of these devices at simulated time `at`."""
        for ref in {self.devices[d].spec.dwelling for d in device_ids}:
            self._schedule(ref, at, heal)

    def reset_fault(self, device_id: str, at: float) -> None:
        """The `reset_fault` command: clear a lockout (it comes back if its cause remains)."""

        def action(d: Dwelling) -> None:
            d.faults.lockout_code = None
            if d.faults.gas_cut:
                d.faults.gas_cut_lockout_at = at + 60.0

        self._schedule(self.devices[device_id].spec.dwelling, at, action)

    def reboot(self, device_id: str) -> int:
        """A restart of the unit's firmware: a new boot id, the sequence starts again."""
        state = self.devices[device_id]
        state.boot += 1
        state.seq = 0
        return state.boot

    # --- messages ---------------------------------------------------------------------------

    def meta(self, device_id: str) -> Message:
        """The retained birth message of a device."""
        state = self.devices[device_id]
        model, firmware = MODELS.get(state.spec.kind, MODELS["heating"])
        meta = Meta(model=model, firmware=firmware, boot=state.boot, kind=state.spec.kind)
        topic = contract.meta_topic(state.spec.fleet, device_id)
        return topic, contract.encode_meta(meta)

    def step(
        self, sim_time: float, *, online: Callable[[str], bool] | None = None
    ) -> list[Message]:
        """Advance to `sim_time`; the messages published on the way, oldest first per device.

        `online(device_id)` says whether the unit is connected: readings of an offline unit are
        buffered and come out, with negative `t` offsets, once it is online again.
        """
        out: list[Message] = []
        for ref, dwelling in self.dwellings.items():
            states = self._by_dwelling[ref]
            pending = self._pending[ref]
            while dwelling.t + GRID_S <= sim_time:
                while pending and pending[0][0] <= dwelling.t:
                    pending.pop(0)[2](dwelling)
                dwelling.advance_to(dwelling.t + GRID_S)
                for state in states:
                    self._emit(state, dwelling, online, out)
            if online is not None:
                for state in states:
                    if state.buffer and online(state.spec.device_id):
                        self._flush(state, dwelling.t, out)
        return out

    def _emit(
        self,
        state: DeviceState,
        dwelling: Dwelling,
        online: Callable[[str], bool] | None,
        out: list[Message],
    ) -> None:
        t = dwelling.t
        device_id = state.spec.device_id
        if device_id in dwelling.faults.silent:
            while state.next_report <= t:
                state.next_report += self.interval
            return
        produced: list[tuple[str, float, list[Record]]] = []
        flags = self._flags(state, dwelling)
        if flags != state.flags:
            if state.flags:
                produced.append(("event", t, self._event_records(state, dwelling)))
            state.flags = flags
        if state.next_report <= t:
            while state.next_report <= t:
                state.next_report += self.interval
            produced.append(("telemetry", t, self._sample(state, dwelling)))
        if not produced:
            return
        if online is None or online(device_id):
            if state.buffer:
                self._flush(state, t, out)
            for kind, ts, records in produced:
                out.append(self._envelope(state, kind, ts, records))
        else:
            state.buffer.extend(produced)

    def _envelope(self, state: DeviceState, kind: str, ts: float, records: list[Record]) -> Message:
        spec = state.spec
        envelope = Envelope(
            v=contract.CONTRACT_VERSION,
            dev=spec.device_id,
            boot=state.boot,
            seq=state.next_seq(),
            ts=ts,
            m=records,
        )
        topic = (
            contract.event_topic(spec.fleet, spec.device_id)
            if kind == "event"
            else contract.telemetry_topic(spec.fleet, spec.device_id)
        )
        return topic, contract.encode(envelope)

    def _flush(self, state: DeviceState, now: float, out: list[Message]) -> None:
        """Publish buffered readings, grouped per topic, offsets relative to `now`."""
        horizon = now - contract.MAX_BUFFER_AGE_S + 60
        items = [item for item in state.buffer if item[1] >= horizon]
        state.buffer.clear()
        batch: list[Record] = []
        batch_kind = None
        size = 0
        for kind, ts, records in items:
            shifted = [
                Record(n=r.n, u=r.u, v=r.v, vs=r.vs, vb=r.vb, t=round(ts - now, 3)) for r in records
            ]
            weight = sum(len(r.n) + 40 for r in shifted)
            if batch and (kind != batch_kind or size + weight > FLUSH_TARGET_BYTES):
                out.append(self._envelope(state, batch_kind, now, batch))
                batch, size = [], 0
            batch_kind = kind
            batch.extend(shifted)
            size += weight
        if batch:
            out.append(self._envelope(state, batch_kind, now, batch))

    @staticmethod
    def _flags(state: DeviceState, dwelling: Dwelling) -> tuple:
        if state.spec.kind == "heating":
            code = dwelling.fault_code()
            return (code is not None, code)
        return (dwelling.faults.fan_stopped, dwelling.filter_alarm())

    def _event_records(self, state: DeviceState, dwelling: Dwelling) -> list[Record]:
        if state.spec.kind == "heating":
            code = dwelling.fault_code()
            records = [make_record("fault_active", code is not None)]
            if code is not None:
                records.append(make_record("fault_code", code))
            return records
        return [
            make_record("fan_fault", dwelling.faults.fan_stopped),
            make_record("filter_alarm", dwelling.filter_alarm()),
        ]

    def _sample(self, state: DeviceState, dwelling: Dwelling) -> list[Record]:
        uniform = state.rng.random

        def gauss(_mean: float, sigma: float) -> float:
            # Triangular noise of the same spread: cheaper than random.gauss, bounded.
            return (uniform() + uniform() - 1.0) * 2.45 * sigma

        health = [
            make_record("battery", float(round(dwelling.battery))),
            make_record("rssi", float(round(state.rssi_base + gauss(0, 3)))),
        ]
        if state.spec.kind == "heating":
            flow, ret = dwelling.flow_return()
            code = dwelling.fault_code()
            records = [
                make_record("room_temp", _clamp(round(dwelling.room_temp + gauss(0, 0.05), 1))),
                make_record("room_setpoint", dwelling.setpoint()),
                make_record("flow_temp", _clamp(round(flow + gauss(0, 0.2), 1))),
                make_record("return_temp", _clamp(round(ret + gauss(0, 0.2), 1))),
                make_record(
                    "outdoor_temp", round(self.climate.at(dwelling.t)[1] + gauss(0, 0.1), 1)
                ),
                make_record(
                    "ch_pressure", max(0.0, round(dwelling.pressure_bar() + gauss(0, 0.005), 2))
                ),
                make_record("flame", dwelling.flame),
                make_record("heat_demand", dwelling.heat_demand),
                make_record("burner_starts", float(dwelling.burner_starts)),
                make_record("fault_active", code is not None),
            ]
            if code is not None:
                records.append(make_record("fault_code", code))
            return records + health
        stopped = dwelling.faults.fan_stopped
        rpm = 0.0 if stopped else max(0.0, round(dwelling.fan_rpm + gauss(0, 15)))
        extract = (
            abs(round(gauss(0, 0.8), 1))
            if stopped
            else max(0.0, round(dwelling.extract_pressure_pa() + gauss(0, 1.5), 1))
        )
        rh = min(100.0, max(0.0, round(dwelling.relative_humidity() + gauss(0, 0.5), 1)))
        co2 = 0.0 if dwelling.faults.co2_stuck_zero else round(dwelling.co2_ppm + gauss(0, 10))
        return [
            make_record("fan_rpm", rpm),
            make_record("extract_pressure", extract),
            make_record("rh", rh),
            make_record("co2", max(0.0, float(co2))),
            make_record("filter_alarm", dwelling.filter_alarm()),
            make_record("fan_fault", stopped),
            *health,
        ]


def _clamp(value: float, low: float = -49.0, high: float = 99.0) -> float:
    return min(high, max(low, value))


# --- scenario plans ---------------------------------------------------------------------------


class ScenarioPlan:
    """When scenarios start and end during a run: one named scenario, or a rotation."""

    def __init__(
        self,
        fleet: FleetModel,
        *,
        name: str,
        start: float,
        after: float,
        every: float,
        duration: float,
        target: str | None,
        seed: int,
    ) -> None:
        self.fleet = fleet
        self.name = name
        self.next_at = start + after
        self.every = every
        self.duration = duration
        self.target = target
        self.rng = random.Random(stable_seed("plan", seed))
        self.active: list[str] = []
        self.log: list[tuple[float, str, list[str]]] = []

    def due(self, sim_time: float) -> None:
        """Schedule what falls due by `sim_time` on the fleet model."""
        if self.name == "none":
            return
        while self.next_at <= sim_time:
            at = self.next_at
            if self.name == "auto":
                name = self.rng.choice(sorted(SCENARIOS))
                candidates = self.fleet.eligible(name)
                if not candidates:
                    self.next_at += self.every
                    continue
                affected = self.fleet.schedule(name, at, device_id=self.rng.choice(candidates))
                self.fleet.heal(affected, at + self.duration)
                self.next_at += self.every
            else:
                affected = self.fleet.schedule(self.name, at, device_id=self.target)
                self.next_at = float("inf")
                name = self.name
            self.log.append((at, name, affected))
            logger.info(
                "scenario %s starts at %s on %s",
                name,
                datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"),
                ", ".join(affected),
            )


# --- the MQTT side ----------------------------------------------------------------------------


class SimClock:
    """Simulated time: `speed` times wall-clock time from `start`, never ahead of the wall clock."""

    def __init__(self, start: float, speed: float, wall: Callable[[], float] = time.time) -> None:
        self.start = start
        self.speed = speed
        self._wall = wall
        self._wall_start = wall()

    def restart(self) -> None:
        """Simulated time starts now (after the broker was found)."""
        self._wall_start = self._wall()

    def now(self) -> float:
        wall = self._wall()
        simulated = self.start + (wall - self._wall_start) * self.speed
        # Payload timestamps more than 5 minutes ahead are refused: never run into the future.
        return min(simulated, wall)


class DeviceLink:
    """One device's MQTT connection, driven by the runner's selector (no thread of its own)."""

    def __init__(self, runner: Runner, state: DeviceState, protocol: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.runner = runner
        self.state = state
        self.protocol = protocol
        spec = state.spec
        self.device_id = spec.device_id
        self.status_topic = contract.status_topic(spec.fleet, spec.device_id)
        self.command_filter = f"cmd/{spec.fleet}/{spec.device_id}/#"
        kwargs = {} if protocol == mqtt.MQTTv5 else {"clean_session": False}
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=spec.device_id,
            protocol=protocol,
            **kwargs,
        )
        self.client.username_pw_set(spec.login, spec.password)
        self.client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        if runner.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_socket_open = self._on_socket_open
        self.client.on_socket_close = self._on_socket_close
        self.client.on_socket_register_write = self._on_register_write
        self.client.on_socket_unregister_write = self._on_unregister_write
        self.online = False
        self.connecting = False
        self.started = False
        self.failures = 0
        self.next_attempt = 0.0
        self.unacked: set[int] = set()
        self.refusal_logged = False
        self.reboot_at: float | None = None

    # selector plumbing
    def _on_socket_open(self, client, userdata, sock) -> None:
        self.runner.selector.register(sock, selectors.EVENT_READ, self)

    def _on_socket_close(self, client, userdata, sock) -> None:
        try:
            self.runner.selector.unregister(sock)
        except (KeyError, ValueError):
            logger.debug("socket of %s was not registered", self.device_id)

    def _on_register_write(self, client, userdata, sock) -> None:
        try:
            self.runner.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)
        except (KeyError, ValueError):
            logger.debug("socket of %s is closed", self.device_id)

    def _on_unregister_write(self, client, userdata, sock) -> None:
        try:
            self.runner.selector.modify(sock, selectors.EVENT_READ, self)
        except (KeyError, ValueError):
            logger.debug("socket of %s is closed", self.device_id)

    # connection lifecycle
    def attempt(self, now: float) -> None:
        """Open (or reopen) the connection; a failure schedules the next try with backoff."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.connecting = True
        self.connect_started = now
        try:
            if not self.started:
                self.started = True
                if self.protocol == mqtt.MQTTv5:
                    properties = Properties(PacketTypes.CONNECT)
                    properties.SessionExpiryInterval = 3600
                    self.client.connect(
                        self.runner.host,
                        self.runner.port,
                        keepalive=self.runner.keepalive,
                        clean_start=False,
                        properties=properties,
                    )
                else:
                    self.client.connect(
                        self.runner.host, self.runner.port, keepalive=self.runner.keepalive
                    )
            else:
                self.client.reconnect()
        except (OSError, ValueError) as error:
            self.connecting = False
            logger.debug("%s could not connect: %s", self.device_id, error)
            self.backoff(now)

    def backoff(self, now: float) -> None:
        """Exponential backoff with jitter, so a fleet does not reconnect in lockstep."""
        delay = min(self.runner.max_backoff, 2.0**self.failures)
        self.failures = min(self.failures + 1, 16)
        self.next_attempt = now + delay * self.runner.jitter.uniform(0.5, 1.0)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connecting = False
        if reason_code.is_failure:
            if not self.refusal_logged:
                logger.warning("%s refused by the broker: %s", self.device_id, reason_code)
                self.refusal_logged = True
            self.backoff(time.monotonic())
            return
        self.online = True
        self.failures = 0
        self.refusal_logged = False
        self.publish(self.status_topic, b"online", retain=True)
        topic, payload = self.runner.fleet.meta(self.device_id)
        self.publish(topic, payload, retain=True)
        client.subscribe(self.command_filter, qos=1)
        self.runner.connected_once.add(self.device_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_online = self.online
        self.online = False
        self.connecting = False
        if self.runner.stopping:
            return
        if was_online:
            logger.info("%s disconnected (%s), will reconnect", self.device_id, reason_code)
        if self.next_attempt <= time.monotonic():
            self.backoff(time.monotonic())

    def _on_message(self, client, userdata, message) -> None:
        command = message.topic.rsplit("/", 1)[-1]
        self.runner.command(self, command, message.payload)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.unacked.discard(mid)
        self.runner.acked += 1

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        self.unacked.add(info.mid)
        self.runner.published += 1


class Runner:
    """Drives a FleetModel in (accelerated) real time and publishes through real connections."""

    def __init__(
        self,
        fleet: FleetModel,
        *,
        broker: str,
        clock: SimClock,
        plan: ScenarioPlan | None = None,
        duration: float | None = None,
        protocol: str = "auto",
        keepalive: int = 30,
        max_backoff: float = 60.0,
    ) -> None:
        url = urlsplit(broker if "://" in broker else f"mqtt://{broker}")
        self.tls = url.scheme in ("mqtts", "ssl")
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (8883 if self.tls else 1883)
        self.fleet = fleet
        self.clock = clock
        self.plan = plan
        self.end = None if duration is None else fleet.start + duration
        self.protocol_choice = protocol
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        self.jitter = random.Random()
        self.selector = selectors.DefaultSelector()
        self.links: dict[str, DeviceLink] = {}
        self.stopping = False
        self.published = 0
        self.acked = 0
        self.connected_once: set[str] = set()

    def stop(self, *_: object) -> None:
        self.stopping = True

    def _protocol(self) -> int:
        import paho.mqtt.client as mqtt

        if self.protocol_choice == "5":
            return mqtt.MQTTv5
        if self.protocol_choice == "3.1.1":
            return mqtt.MQTTv311
        first = next(iter(self.fleet.devices.values())).spec
        wait = 1.0
        while not self.stopping:
            found = probe_protocol(self.host, self.port, first, tls=self.tls)
            if found is not None:
                logger.info("broker %s:%s: MQTT %s", self.host, self.port, _protocol_name(found))
                return found
            logger.info("waiting for the broker at %s:%s", self.host, self.port)
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
        return mqtt.MQTTv311

    def online(self, device_id: str) -> bool:
        link = self.links.get(device_id)
        return link is not None and link.online

    def command(self, link: DeviceLink, command: str, payload: bytes) -> None:
        """Commands a unit understands: `reboot` and `reset_fault`; others are ignored."""
        if command == "reboot":
            # Acknowledge the command first: a unit rebooting before its PUBACK would receive the
            # same command again from its persistent session, and reboot forever.
            link.reboot_at = time.monotonic() + 0.5
        elif command == "reset_fault":
            self.fleet.reset_fault(link.device_id, self.clock.now())
            logger.info("%s: fault reset requested", link.device_id)
        else:
            logger.info("%s ignores unknown command %r", link.device_id, command)

    def _reboot(self, link: DeviceLink, now: float) -> None:
        link.reboot_at = None
        boot = self.fleet.reboot(link.device_id)
        logger.info("%s reboots (boot %s)", link.device_id, boot)
        link.client.disconnect()
        link.next_attempt = now + 2.0

    def run(self) -> int:
        """Publish until the duration is reached or a signal arrives; 0 when all was acked."""
        protocol = self._protocol()
        if self.stopping:
            return 0
        self.clock.restart()
        now = time.monotonic()
        spread = min(5.0, 0.05 * len(self.fleet.devices))
        for device_id, state in self.fleet.devices.items():
            link = DeviceLink(self, state, protocol)
            link.next_attempt = now + self.jitter.uniform(0, spread)
            self.links[device_id] = link
        last_misc = 0.0
        last_report = now
        tick = 0.25 if self.clock.speed <= 1 else 0.05
        while not self.stopping:
            now = time.monotonic()
            for link in self.links.values():
                if link.reboot_at is not None and link.reboot_at <= now:
                    self._reboot(link, now)
                if not link.online and not link.connecting and link.next_attempt <= now:
                    link.attempt(now)
            sim_now = self.clock.now()
            if self.end is not None and sim_now >= self.end:
                sim_now = self.end
            if self.plan is not None:
                self.plan.due(sim_now)
            for topic, payload in self.fleet.step(sim_now, online=self.online):
                self.links[contract.parse_topic(topic).device_id].publish(topic, payload)
            self._io(tick)
            if now - last_misc >= 1.0:
                last_misc = now
                for link in self.links.values():
                    if link.online or link.connecting:
                        link.client.loop_misc()
                    if link.connecting and now - link.connect_started > 2 * self.keepalive:
                        link.connecting = False
                        link.backoff(now)
            if now - last_report >= 60.0:
                last_report = now
                self._report(sim_now)
            if self.end is not None and sim_now >= self.end:
                break
        return self._shutdown()

    def _io(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            link: DeviceLink = key.data
            if mask & selectors.EVENT_READ:
                link.client.loop_read()
            if mask & selectors.EVENT_WRITE:
                link.client.loop_write()

    def _report(self, sim_now: float) -> None:
        online = sum(link.online for link in self.links.values())
        buffered = sum(len(state.buffer) for state in self.fleet.devices.values())
        logger.info(
            "sim time %s: %d/%d online, %d published, %d acked, %d readings buffered",
            datetime.fromtimestamp(sim_now, UTC).isoformat(timespec="seconds"),
            online,
            len(self.links),
            self.published,
            self.acked,
            buffered,
        )

    def _shutdown(self) -> int:
        """Say `offline` (a clean disconnect suppresses the will), wait for acks, disconnect."""
        self.stopping = True
        for link in self.links.values():
            if link.online:
                link.publish(link.status_topic, b"offline", retain=True)
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            pending = [link for link in self.links.values() if link.online and link.unacked]
            if not pending:
                break
            self._io(0.05)
            for link in pending:
                link.client.loop_misc()
        unacked = sum(len(link.unacked) for link in self.links.values())
        for link in self.links.values():
            if link.online:
                link.client.disconnect()
                link.client.loop_write()
        self._report(self.clock.now() if self.end is None else self.end)
        self.selector.close()
        return 0 if unacked == 0 else 1


def _protocol_name(protocol: int) -> str:
    import paho.mqtt.client as mqtt

    return "5" if protocol == mqtt.MQTTv5 else "3.1.1"


def probe_protocol(host: str, port: int, spec: DeviceSpec, *, tls: bool = False) -> int | None:
    """MQTT 5 if the broker speaks it, else 3.1.1; None when the broker cannot be reached.

    amqtt refuses MQTT 5 (or never answers it): both mean 3.1.1.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=spec.device_id,
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(spec.login, spec.password)
    if tls:
        client.tls_set()
    result: dict[str, object] = {}
    client.on_connect = lambda c, u, f, reason_code, p: result.setdefault("rc", reason_code)
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ValueError):
        return None
    deadline = time.monotonic() + 3.0
    while "rc" not in result and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    reason = result.get("rc")
    with contextlib.suppress(OSError):
        client.disconnect()
    if reason is None:
        return mqtt.MQTTv311
    if getattr(reason, "value", None) == 132:  # Unsupported protocol version
        return mqtt.MQTTv311
    return mqtt.MQTTv5


# --- command line -----------------------------------------------------------------------------


def _var_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / "var"
    return Path(os.environ.get("PALIER_VAR_DIR", str(default)))


def _parse_start(text: str | None) -> float | None:
    if text is None or text == "now":
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def build_parser() -> argparse.ArgumentParser:
    scenarios = ", ".join(sorted(SCENARIOS))
    parser = argparse.ArgumentParser(
        prog="palier simulate",
        description="Simulated heating and ventilation units publishing contract v1 over MQTT.",
        epilog=f"Scenarios: {scenarios}; 'auto' rotates them, 'none' runs fault-free.",
    )
    parser.add_argument("--devices", type=int, default=None, help="number of units (default 20)")
    parser.add_argument("--interval", type=float, default=60.0, help="reporting interval, s (≥ 30)")
    parser.add_argument("--scenario", default=None, help="a scenario name, auto or none")
    parser.add_argument("--target", default=None, help="device the scenario hits")
    parser.add_argument(
        "--scenario-after", type=float, default=None, help="simulated s before it starts"
    )
    parser.add_argument(
        "--scenario-every", type=float, default=1800.0, help="auto: simulated s between faults"
    )
    parser.add_argument(
        "--scenario-duration", type=float, default=1200.0, help="auto: simulated s before repair"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from-demo", action="store_true", help=f"read VAR_DIR/{FLEET_FILE_NAME}")
    source.add_argument("--fleet-file", type=Path, default=None, help="read this fleet file")
    parser.add_argument("--fleet", default="sim", help="fleet slug without a fleet file")
    parser.add_argument("--prefix", default="sim", help="device id prefix without a fleet file")
    parser.add_argument("--broker", default=None, help="mqtt://host:port (or mqtts://)")
    parser.add_argument("--protocol", choices=["auto", "5", "3.1.1"], default="auto")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated s per wall-clock s")
    parser.add_argument("--start", default=None, help="simulated start, ISO 8601 (UTC if naive)")
    parser.add_argument("--duration", type=float, default=None, help="simulated s to run")
    parser.add_argument("--keepalive", type=int, default=30, help="MQTT keepalive, s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boot", type=int, default=None, help="boot id (default: start time)")
    return parser


def _wait_for_fleet(
    path: Path, stopped: Callable[[], bool]
) -> tuple[str | None, list[DeviceSpec]] | None:
    """Wait until the fleet file exists and lists devices: `palier run` starts us first."""
    logged = False
    while not stopped():
        try:
            broker, specs = load_fleet_file(path)
        except (OSError, ValueError, KeyError, TypeError):
            specs, broker = [], None
        if specs:
            return broker, specs
        if not logged:
            logger.info("waiting for devices in %s (written by `palier seed-demo`)", path)
            logged = True
        time.sleep(2.0)
    return None


def main(argv: list[str] | None = None) -> None:
    """`palier simulate`: run a simulated fleet against a broker."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interval < GRID_S:
        parser.error(f"--interval must be at least {GRID_S:.0f} s")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.scenario not in (None, "auto", "none") and args.scenario not in SCENARIOS:
        raise SystemExit(f"unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}")
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True
        if runner is not None:
            runner.stop()

    runner: Runner | None = None
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    broker_from_file = None
    if args.from_demo:
        found = _wait_for_fleet(_var_dir() / FLEET_FILE_NAME, lambda: stop["now"])
        if found is None:
            return
        broker_from_file, specs = found
        if args.devices is not None:
            specs = specs[: args.devices]
    elif args.fleet_file is not None:
        broker_from_file, specs = load_fleet_file(args.fleet_file)
        if args.devices is not None:
            specs = specs[: args.devices]
    else:
        specs = demo_specs(args.devices or 20, fleet=args.fleet, prefix=args.prefix)
    if not specs:
        raise SystemExit("no devices to simulate")
    broker = args.broker or os.environ.get("MQTT_URL") or broker_from_file or DEFAULT_BROKER

    wall = time.time()
    start = _parse_start(args.start)
    if start is None:
        if args.speed > 1:
            # A replay ends about now, so its timestamps are never in the future.
            start = wall - (args.duration if args.duration is not None else 86_400.0)
        else:
            start = wall
    boot = args.boot if args.boot is not None else int(wall)
    fleet = FleetModel(specs, start=start, interval=args.interval, seed=args.seed, boot=boot)
    scenario = args.scenario or ("auto" if args.from_demo else "none")
    plan = ScenarioPlan(
        fleet,
        name=scenario,
        start=start,
        after=args.scenario_after if args.scenario_after is not None else 3 * args.interval,
        every=args.scenario_every,
        duration=args.scenario_duration,
        target=args.target,
        seed=args.seed,
    )
    runner = Runner(
        fleet,
        broker=broker,
        clock=SimClock(start, args.speed),
        plan=plan,
        duration=args.duration,
        protocol=args.protocol,
        keepalive=args.keepalive,
    )
    if stop["now"]:
        return
    logger.info(
        "simulating %d units against %s from %s at %gx, scenario %s",
        len(specs),
        broker,
        datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds"),
        args.speed,
        scenario,
    )
    raise SystemExit(runner.run())
