"""The MQTT bridge against a real Mosquitto and a real Redis: batching, quarantine, acks."""

from __future__ import annotations

import base64
import struct
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings

from api.telemetry.routing import ingest_queue
from devices import contract
from tests.integration.services import (
    Mosquitto,
    Publisher,
    RedisServer,
    clear_queues,
    envelope,
    free_port,
    queued_tasks,
    unique,
    wait_for,
)
from workers import metrics
from workers.bridge import (
    INGEST_TASK,
    QUARANTINE_QUEUE,
    QUARANTINE_TASK,
    Bridge,
    BridgeConfig,
    ingest_queues,
    shard_queue,
)
from workers.bridge_mqtt import BulkClient

pytestmark = pytest.mark.services
QUEUES = ingest_queues(4)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield server
    server.stop()


@pytest.fixture
def broker_url():
    url = settings.CELERY_BROKER_URL
    clear_queues(url, QUEUES)
    yield url
    clear_queues(url, QUEUES)


@pytest.fixture
def bridges():
    started: list[Bridge] = []
    yield started
    # A stopped bridge keeps its session, and Mosquitto goes on routing a share of the
    # messages to it: bridges of later tests would miss them.
    for bridge in started:
        bridge.stop(leave=True)


def make_bridge(started, broker, broker_url, **options) -> Bridge:
    options.setdefault("client_id", unique("test-bridge"))
    options.setdefault("batch_ms", 100)
    options.setdefault("stop_grace_s", 2.0)
    bridge = Bridge(BridgeConfig(port=broker.port, broker_url=broker_url, **options))
    bridge.start(timeout=10)
    started.append(bridge)
    assert bridge.subscribed.wait(10)
    return bridge


def items_of(url: str, task: str | None = None) -> list[dict]:
    return [
        item
        for _q, name, items in queued_tasks(url, QUEUES)
        if task in (None, name)
        for item in items
    ]


def test_shard_queues_agree_with_the_workers_router():
    for device_id in ("hx-a", "vx-b", "hx-0123456789", "d"):
        assert shard_queue(device_id, settings.INGEST_SHARDS) == ingest_queue(device_id)


def test_valid_messages_are_batched_per_shard_and_hostile_ones_quarantined(
    broker, broker_url, bridges
):
    fleet, publisher = unique("fleet"), Publisher(broker.port)
    devices = [unique("hx") for _ in range(6)]
    status_topic = contract.status_topic(fleet, devices[0])
    # Retained before the bridge subscribes: it arrives flagged as retained.
    publisher.send([(status_topic, b"online")], retain=True)
    bridge = make_bridge(bridges, broker, broker_url)
    for device_id in devices:
        publisher.telemetry(fleet, device_id, range(1, 4))
    bad_record = contract.encode(
        contract.Envelope(
            v=1,
            dev=devices[0],
            boot=1,
            seq=99,
            ts=time.time(),
            m=[contract.make_record("room_temp", 20.0), contract.Record(n="shoe_size", v=42.0)],
        )
    )
    publisher.send(
        [
            (contract.telemetry_topic(fleet, devices[0]), bad_record),
            (contract.telemetry_topic(fleet, devices[1]), b"{not json"),
            (contract.telemetry_topic(fleet, devices[1]), envelope(devices[2], 1)),
            (contract.telemetry_topic(fleet, devices[1]), b"\x00" * 9000),
        ]
    )

    assert wait_for(lambda: len(items_of(broker_url)) == 6 * 3 + 1 + 3 + 1)
    tasks = queued_tasks(broker_url, QUEUES)
    for queue, task, items in tasks:
        assert task == (QUARANTINE_TASK if queue == QUARANTINE_QUEUE else INGEST_TASK)
        if queue != QUARANTINE_QUEUE:
            assert {ingest_queue(item["device_id"]) for item in items} == {queue}
    ingest = items_of(broker_url, INGEST_TASK)
    telemetry = [i for i in ingest if i["kind"] == "telemetry"]
    assert len(telemetry) == 19
    # One device's messages keep their order.
    assert [i["payload"]["seq"] for i in telemetry if i["device_id"] == devices[3]] == [1, 2, 3]
    partial = next(i for i in telemetry if i["payload"]["seq"] == 99)
    assert [r["n"] for r in partial["payload"]["m"]] == ["room_temp"]
    assert partial["rejected"] == [
        {"record": {"n": "shoe_size", "v": 42.0, "t": 0.0}, "reason": "unknown_name"}
    ]
    status = next(i for i in ingest if i["kind"] == "status")
    assert status["payload"] == {"status": "online"} and status["retained"] is True
    assert partial["fleet"] == fleet and partial["retained"] is False
    quarantined = items_of(broker_url, QUARANTINE_TASK)
    assert sorted(q["reason"] for q in quarantined) == ["not_json", "oversize", "wrong_device"]
    oversize = next(q for q in quarantined if q["reason"] == "oversize")
    assert oversize["size"] == 9000 and len(base64.b64decode(oversize["raw_b64"])) == 2048
    assert wait_for(lambda: bridge.inflight == 0)
    # Clear the retained status (an empty payload), so later bridges do not receive it.
    publisher.send([(status_topic, b"")], retain=True)
    publisher.close()
    assert wait_for(lambda: len(items_of(broker_url, QUARANTINE_TASK)) == 4)


def test_batches_close_by_size_then_by_age(broker, broker_url, bridges):
    make_bridge(bridges, broker, broker_url, batch_size=10, batch_ms=1500)
    publisher = Publisher(broker.port)
    started = time.monotonic()
    publisher.telemetry(unique("fleet"), unique("hx"), range(1, 26))
    publisher.close()
    assert wait_for(lambda: len(queued_tasks(broker_url, QUEUES)) == 3, timeout=10)
    assert time.monotonic() - started >= 1.4  # the last five waited for their batch to age
    tasks = queued_tasks(broker_url, QUEUES)
    assert [len(items) for _q, _t, items in tasks] == [10, 10, 5]
    assert [i["payload"]["seq"] for _q, _t, items in tasks for i in items] == list(range(1, 26))


def test_nothing_is_acknowledged_before_the_task_broker_has_the_batch(
    broker, broker_url, bridges, tmp_path
):
    """The task broker is down: messages stay unacknowledged, then flow once it is back."""
    down = RedisServer(tmp_path / "redis", aof=True)
    client_id = unique("test-bridge")
    bridge = make_bridge(bridges, broker, down.url, client_id=client_id)
    publisher = Publisher(broker.port)
    publisher.telemetry(unique("fleet"), unique("hx"), range(1, 21))
    assert wait_for(lambda: bridge.received == 20)
    time.sleep(0.5)
    assert bridge.inflight == 20
    down.start()
    try:
        assert wait_for(lambda: len(items_of(down.url)) == 20, timeout=15)
        assert wait_for(lambda: bridge.inflight == 0)
        bridge.stop()
        bridges.remove(bridge)
        # The broker got the acks: the same session resumed gets nothing again.
        again = make_bridge(bridges, broker, down.url, client_id=client_id)
        time.sleep(1.0)
        assert again.received == 0
        assert len(items_of(down.url)) == 20
    finally:
        publisher.close()
        down.stop()


def test_unacknowledged_messages_come_back_to_the_resumed_session(
    broker, broker_url, bridges, tmp_path
):
    client_id = unique("test-bridge")
    lost_redis = f"redis://127.0.0.1:{free_port()}/0"
    first = make_bridge(bridges, broker, lost_redis, client_id=client_id, stop_grace_s=0.3)
    publisher = Publisher(broker.port)
    publisher.telemetry(unique("fleet"), unique("hx"), range(1, 11))
    publisher.close()
    assert wait_for(lambda: first.received == 10)
    first.stop()  # gives up on the task broker: nothing was acknowledged
    bridges.remove(first)
    assert items_of(broker_url) == []
    second = make_bridge(bridges, broker, broker_url, client_id=client_id)
    assert wait_for(lambda: len(items_of(broker_url)) == 10)
    assert second.received == 10


def test_a_graceful_stop_flushes_and_acknowledges_the_open_batch(broker, broker_url, bridges):
    client_id = unique("test-bridge")
    bridge = make_bridge(bridges, broker, broker_url, client_id=client_id, batch_ms=60_000)
    publisher = Publisher(broker.port)
    publisher.telemetry(unique("fleet"), unique("hx"), range(1, 8))
    publisher.close()
    assert wait_for(lambda: bridge.received == 7)
    assert items_of(broker_url) == []
    bridge.stop()
    bridges.remove(bridge)
    assert len(items_of(broker_url)) == 7
    again = make_bridge(bridges, broker, broker_url, client_id=client_id)
    time.sleep(1.0)
    assert again.received == 0


def test_two_bridges_split_the_shared_subscription(broker, broker_url, bridges):
    one = make_bridge(bridges, broker, broker_url)
    two = make_bridge(bridges, broker, broker_url)
    assert one.shared and two.shared
    publisher = Publisher(broker.port)
    fleet = unique("fleet")
    for device_id in [unique("hx") for _ in range(20)]:
        publisher.telemetry(fleet, device_id, range(1, 6))
    publisher.close()
    assert wait_for(lambda: len(items_of(broker_url)) == 100)
    assert one.received + two.received == 100
    assert one.received > 0 and two.received > 0


def test_leaving_ends_the_session_so_nothing_waits_for_it(broker, broker_url, bridges):
    stays = make_bridge(bridges, broker, broker_url)
    leaves = make_bridge(bridges, broker, broker_url)
    leaves.stop(leave=True)
    bridges.remove(leaves)
    publisher = Publisher(broker.port)
    publisher.telemetry(unique("fleet"), unique("hx"), range(1, 41))
    publisher.close()
    assert wait_for(lambda: len(items_of(broker_url)) == 40)
    assert stays.received == 40


def test_plain_subscription_and_mqtt_3_on_the_embedded_broker(broker_url, bridges, tmp_path):
    """`palier run`: amqtt speaks MQTT 3.1.1 only and checks the bridge's credentials."""
    import subprocess
    import sys

    from devices import credentials
    from tests.integration.services import bridge_env, wait_port

    (tmp_path / "mqtt").mkdir()
    password = "bridge-test-password"
    device_id, device_password, fleet = unique("hx"), "device-test-password", "org-test"
    (tmp_path / "mqtt" / "passwd").write_text(
        credentials.render_passwd(
            [
                ("palier-bridge", credentials.hash_password(password, iterations=1)),
                (device_id, credentials.hash_password(device_password, iterations=1)),
            ]
        )
    )
    (tmp_path / "mqtt" / "acl").write_text(
        credentials.render_acl([(device_id, fleet)], bridge_username="palier-bridge")
    )
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    broker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "mqtt-broker", "--port", str(port)],
        cwd=root,
        env=bridge_env(PALIER_VAR_DIR=str(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=20)
        bridge = Bridge(
            BridgeConfig(
                port=port,
                username="palier-bridge",
                password=password,
                client_id=unique("test-bridge"),
                broker_url=broker_url,
                batch_ms=100,
            )
        )
        bridge.start(timeout=15)
        bridges.append(bridge)
        assert bridge.subscribed.wait(10)
        assert bridge.protocol == mqtt.MQTTv311 and bridge.shared is False
        assert bridge.topic == contract.PLAIN_SUBSCRIPTION
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id)
        device.username_pw_set(device_id, device_password)
        device.connect("127.0.0.1", port)
        device.loop_start()
        device.publish(
            contract.telemetry_topic(fleet, device_id), envelope(device_id, 1), qos=1
        ).wait_for_publish(10)
        device.disconnect()
        device.loop_stop()
        assert wait_for(lambda: len(items_of(broker_url, INGEST_TASK)) == 1, timeout=10)
    finally:
        broker.terminate()
        broker.wait(10)


def _publish_packet(topic: str, payload: bytes, mid: int, *, v5: bool, props: bytes = b"") -> bytes:
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name + struct.pack("!H", mid)
    if v5:
        body += bytes([len(props)]) + props
    body += payload
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return b"\x32" + bytes(encoded) + body


@pytest.mark.parametrize("v5", [True, False])
def test_the_bulk_reader_splits_packets_across_reads(v5):
    received = []
    client = BulkClient(
        client_id="split-test",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        on_publishes=received.extend,
    )
    # A content-type property (0x03) on the first; a payload over 127 bytes on the second.
    stream = _publish_packet("dt/f/d/telemetry", b"one", 1, v5=v5, props=b"\x03\x00\x01j")
    stream += _publish_packet("dt/f/d/telemetry", b"x" * 300, 2, v5=v5)
    stream += _publish_packet("dt/f/d/status", b"online", 65535, v5=v5)
    buffer, consumed_total = b"", 0
    for start in range(0, len(stream), 7):  # 7-byte reads: every header gets cut somewhere
        buffer += stream[start : start + 7]
        rc, consumed = client._split(buffer, client._sock)
        assert rc == 0
        buffer = buffer[consumed:]
        consumed_total += consumed
    assert consumed_total == len(stream) and buffer == b""
    assert received == [
        ("dt/f/d/telemetry", b"one", 1, 1, False),
        ("dt/f/d/telemetry", b"x" * 300, 2, 1, False),
        ("dt/f/d/status", b"online", 65535, 1, False),
    ]


def test_metrics_are_served_for_prometheus(broker, broker_url, bridges):
    port = free_port()
    assert metrics.serve(port, addr="127.0.0.1")
    assert not metrics.serve(port, addr="127.0.0.1")  # taken: logged, not fatal
    make_bridge(bridges, broker, broker_url)
    publisher = Publisher(broker.port)
    publisher.send([(contract.telemetry_topic("f", "hx-m"), b"[]")])
    publisher.close()
    assert wait_for(lambda: len(items_of(broker_url)) == 1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'palier_bridge_messages_quarantined_total{reason="schema"}' in text
    for name in ("messages_received_total", "batch_size_bucket", "enqueue_seconds", "lag_seconds"):
        assert f"palier_bridge_{name}" in text
    assert "palier_bridge_inflight_messages" in text


def test_qos0_messages_are_dropped_once_the_bridge_is_full(broker, bridges):
    """Nothing bounds QoS 0 in flight: with Redis down the bridge holds at most 2 x receive max."""
    lost_redis = f"redis://127.0.0.1:{free_port()}/0"
    bridge = make_bridge(bridges, broker, lost_redis, receive_maximum=5, stop_grace_s=0.3)
    before = metrics.DROPPED._value.get()
    publisher = Publisher(broker.port)
    topic = contract.telemetry_topic(unique("fleet"), "hx-q0")
    for seq in range(1, 31):
        publisher.client.publish(topic, envelope("hx-q0", seq), qos=0)
    publisher.close()
    assert wait_for(lambda: bridge.received == 30)
    assert metrics.DROPPED._value.get() - before == 20
