"""The simulator over real brokers: credentials, MQTT 5 or 3.1.1, retained status, last will,
reconnection without losing readings, and commands."""

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import contract
from devices.credentials import hash_password, render_acl, render_passwd, write_atomically
from devices.simulator import demo_specs
from tests.devices.mqtt_helpers import MosquittoInstance, free_port, unique
from workers.embedded_broker import EmbeddedBroker, credential_paths

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = "palier-bridge"
pytestmark = pytest.mark.slow


class Collector:
    """A bridge-like subscriber: MQTT 5 shared subscription (or plain), persistent session."""

    def __init__(self, port: int, password: str, *, protocol: int = mqtt.MQTTv5) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.protocol = protocol
        kwargs = {} if protocol == mqtt.MQTTv5 else {"clean_session": False}
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=unique("collector"),
            protocol=protocol,
            **kwargs,
        )
        self.client.username_pw_set(BRIDGE, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.subscribed = threading.Event()
        if protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
            self.client.connect("127.0.0.1", port, clean_start=False, properties=properties)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(5)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        shared = self.protocol == mqtt.MQTTv5
        client.subscribe(contract.SHARED_SUBSCRIPTION if shared else "dt/+/+/+", qos=1)
        self.subscribed.set()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, predicate, timeout: float = 15.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.snapshot()
            if predicate(messages):
                return messages
            time.sleep(0.1)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _fleet(tmp_path: Path, count: int, port: int) -> tuple[Path, list[dict], str, str, str]:
    """A fleet file with credentials, and the matching password file and ACL."""
    fleet = unique("fleet")
    prefix = unique("u")
    devices = [
        {
            "device_id": spec.device_id,
            "username": spec.device_id,
            "password": unique("pw"),
            "fleet": fleet,
            "topic_prefix": contract.topic_prefix(fleet, spec.device_id),
            "kind": spec.kind,
            "building": spec.building,
            "dwelling": spec.dwelling,
        }
        for spec in demo_specs(count, fleet=fleet, prefix=prefix)
    ]
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"broker": f"mqtt://127.0.0.1:{port}", "devices": devices}))
    bridge_password = unique("bridge")
    passwd = render_passwd(
        [(d["username"], hash_password(d["password"])) for d in devices]
        + [(BRIDGE, hash_password(bridge_password))]
    )
    acl = render_acl([(d["device_id"], fleet) for d in devices], bridge_username=BRIDGE)
    return path, devices, passwd, acl, bridge_password


def _simulate(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "simulate", *args],
        cwd=ROOT,
        env=full_env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _decoded(messages, kind: str):
    out = []
    for topic, payload, retained in messages:
        parsed = contract.parse_topic(topic)
        if parsed.kind == kind:
            out.append((contract.decode(topic, payload, now=time.time()), retained))
    return out


@pytest.fixture
def mosquitto(tmp_path):
    instances = []

    def start(count: int = 4, *, persistence: bool = False):
        port = free_port()
        path, devices, passwd, acl, bridge_password = _fleet(tmp_path, count, port)
        (tmp_path / "broker").mkdir()
        broker = MosquittoInstance(
            tmp_path / "broker", passwd=passwd, acl=acl, persistence=persistence
        )
        instances.append(broker)
        broker.start()
        return broker, path, devices, bridge_password

    yield start
    for broker in instances:
        broker.stop()


def test_mqtt5_run_publishes_valid_sequenced_messages_and_says_offline_at_the_end(
    mosquitto, tmp_path
):
    broker, fleet_file, devices, bridge_password = mosquitto(4)
    collector = Collector(broker.port, bridge_password)
    try:
        log = tmp_path / "sim.log"
        proc = _simulate(
            "--fleet-file", str(fleet_file), "--broker", f"mqtt://127.0.0.1:{broker.port}",
            "--speed", "300", "--duration", "1800", "--interval", "60",
            "--scenario", "boiler_lockout", "--scenario-after", "600",
            log=log,
        )  # fmt: skip
        assert proc.wait(timeout=60) == 0, log.read_text()
        messages = collector.wait_for(
            lambda ms: sum(p == b"offline" for t, p, _ in ms if t.endswith("/status")) == 4
        )
    finally:
        collector.close()
    assert "MQTT 5" in log.read_text()
    telemetry = [d.envelope for d, _ in _decoded(messages, "telemetry")]
    by_device: dict[str, list] = {}
    for envelope in telemetry:
        by_device.setdefault(envelope.dev, []).append(envelope)
    assert set(by_device) == {d["device_id"] for d in devices}
    for envelopes in by_device.values():
        keys = sorted({(e.boot, e.seq) for e in envelopes})
        assert len(keys) >= 25  # 30 simulated minutes at one reading a minute
        assert keys == sorted(keys) and len({k[0] for k in keys}) == 1
    metas = [d.meta for d, _ in _decoded(messages, "meta")]
    assert {m.kind for m in metas} == {"heating", "ventilation"}
    events = [d.envelope for d, _ in _decoded(messages, "event")]
    assert any(r.vs == "F28" for e in events for r in e.m)
    statuses = [(t.split("/")[2], p) for t, p, _ in messages if t.endswith("/status")]
    for device in by_device:
        assert [p for d, p in statuses if d == device] == [b"online", b"offline"]


def test_embedded_broker_run_falls_back_to_311_and_waits_for_the_demo_fleet_file(tmp_path):
    var_dir = tmp_path / "var"
    port = free_port()
    placeholder_path, devices, passwd, acl, bridge_password = _fleet(tmp_path, 2, port)
    passwd_file, acl_file = credential_paths(var_dir)
    write_atomically(passwd_file, passwd)
    write_atomically(acl_file, acl)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    embedded = EmbeddedBroker(port, passwd_file=passwd_file, acl_file=acl_file)
    asyncio.run_coroutine_threadsafe(embedded.start(), loop).result(10)
    collector = Collector(port, bridge_password, protocol=mqtt.MQTTv311)
    log = tmp_path / "sim.log"
    proc = _simulate(
        "--from-demo", "--speed", "120", "--duration", "600", "--interval", "60",
        log=log, env={"PALIER_VAR_DIR": str(var_dir), "MQTT_URL": ""},
    )  # fmt: skip
    try:
        time.sleep(1.5)
        assert proc.poll() is None  # waiting for the fleet file, not failing
        (var_dir / "simulator-fleet.json").write_text(placeholder_path.read_text())
        assert proc.wait(timeout=60) == 0, log.read_text()
        messages = collector.wait_for(
            lambda ms: sum(p == b"offline" for t, p, _ in ms if t.endswith("/status")) == 2
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        collector.close()
        asyncio.run_coroutine_threadsafe(embedded.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
    text = log.read_text()
    assert "waiting for devices" in text and "MQTT 3.1.1" in text
    telemetry = [d.envelope for d, _ in _decoded(messages, "telemetry")]
    assert {e.dev for e in telemetry} == {d["device_id"] for d in devices}
    readings = {(e.dev, e.ts + r.t) for e in telemetry for r in e.m if r.n in ("flame", "rh")}
    assert len(readings) >= 2 * 9  # ten simulated minutes at one reading a minute


def test_broker_restart_loses_no_reading(mosquitto, tmp_path):
    broker, fleet_file, devices, bridge_password = mosquitto(2, persistence=True)
    collector = Collector(broker.port, bridge_password)
    log = tmp_path / "sim.log"
    proc = _simulate(
        "--fleet-file", str(fleet_file), "--broker", f"mqtt://127.0.0.1:{broker.port}",
        "--speed", "100", "--duration", "1200", "--interval", "60", "--scenario", "none",
        log=log,
    )  # fmt: skip
    try:
        collector.wait_for(lambda ms: len(_decoded(ms, "telemetry")) >= 6)
        broker.restart(down_for=3.0)  # about 5 simulated minutes without a broker
        assert proc.wait(timeout=90) == 0, log.read_text()
        messages = collector.wait_for(
            lambda ms: sum(p == b"offline" for t, p, _ in ms if t.endswith("/status")) >= 2
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        collector.close()
    telemetry = [d.envelope for d, _ in _decoded(messages, "telemetry")]
    buffered = [e for e in telemetry if any(r.t < 0 for r in e.m)]
    assert buffered, "nothing was buffered while the broker was down"
    for device in devices:
        times = sorted(
            {
                e.ts + r.t
                for e in telemetry
                if e.dev == device["device_id"]
                for r in e.m
                if r.n in ("room_temp", "fan_rpm")
            }
        )
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert times and max(gaps) <= 90.0, f"{device['device_id']} lost readings"
        assert times[-1] - times[0] >= 1100


def test_a_killed_simulator_leaves_offline_by_last_will(mosquitto, tmp_path):
    broker, fleet_file, devices, bridge_password = mosquitto(2)
    collector = Collector(broker.port, bridge_password)
    log = tmp_path / "sim.log"
    proc = _simulate(
        "--fleet-file", str(fleet_file), "--broker", f"mqtt://127.0.0.1:{broker.port}",
        "--interval", "30", "--scenario", "none", "--keepalive", "5",
        log=log,
    )  # fmt: skip
    try:
        collector.wait_for(
            lambda ms: sum(p == b"online" for t, p, _ in ms if t.endswith("/status")) == 2
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        messages = collector.wait_for(
            lambda ms: sum(p == b"offline" for t, p, _ in ms if t.endswith("/status")) == 2,
            timeout=15,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        collector.close()
    assert {t for t, p, _ in messages if p == b"offline"} == {
        contract.status_topic(d["fleet"], d["device_id"]) for d in devices
    }


def test_reboot_command_starts_a_new_boot(mosquitto, tmp_path):
    broker, fleet_file, devices, bridge_password = mosquitto(2)
    collector = Collector(broker.port, bridge_password)
    log = tmp_path / "sim.log"
    proc = _simulate(
        "--fleet-file", str(fleet_file), "--broker", f"mqtt://127.0.0.1:{broker.port}",
        "--interval", "30", "--scenario", "none", "--boot", "41", "--speed", "10",
        "--duration", "900",
        log=log,
    )  # fmt: skip
    target = devices[0]
    try:
        collector.wait_for(lambda ms: len(_decoded(ms, "meta")) == 2)
        topic = contract.command_topic(target["fleet"], target["device_id"], "reboot")
        collector.client.publish(topic, b"{}", qos=1)
        messages = collector.wait_for(
            lambda ms: any(d.meta.boot == 42 for d, _ in _decoded(ms, "meta")), timeout=20
        )
        messages = collector.wait_for(
            lambda ms: any(d.envelope.boot == 42 for d, _ in _decoded(ms, "telemetry")),
            timeout=45,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        collector.close()
    after = [d.envelope for d, _ in _decoded(messages, "telemetry") if d.envelope.boot == 42]
    assert after[0].seq == 0 and after[0].dev == target["device_id"]
    assert "reboots (boot 42)" in log.read_text()
