"""The embedded broker of `make run` enforces Palier's credentials and ACL, like Mosquitto."""

import asyncio
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from devices.credentials import hash_password, render_acl, render_passwd, write_atomically
from tests.devices.mqtt_helpers import Client, free_port, unique
from workers.embedded_broker import EmbeddedBroker, credential_paths

FLEET = "hlm-embedded"
BRIDGE = "palier-bridge"


class BrokerThread:
    """The embedded broker on a free port, in a thread with its own event loop."""

    def __init__(self, var_dir, *, resalt: bool = False):
        self.port = free_port()
        self.passwd_file, self.acl_file = credential_paths(var_dir)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.embedded = None
        self._hashes: dict[tuple[str, str], str] = {}
        self.resalt = resalt

    def _hash(self, username: str, password: str) -> str:
        # Same password, same hash: rewriting the file must not look like a password change.
        key = (username, password)
        if self.resalt or key not in self._hashes:
            self._hashes[key] = hash_password(password)
        return self._hashes[key]

    def write(self, devices: dict[str, str], bridge_password: str) -> None:
        entries = [(name, self._hash(name, pw)) for name, pw in devices.items()]
        entries.append((BRIDGE, self._hash(BRIDGE, bridge_password)))
        write_atomically(self.passwd_file, render_passwd(entries))
        write_atomically(
            self.acl_file, render_acl([(d, FLEET) for d in devices], bridge_username=BRIDGE)
        )

    def start(self) -> "BrokerThread":
        self.thread.start()
        self.embedded = EmbeddedBroker(
            self.port, passwd_file=self.passwd_file, acl_file=self.acl_file
        )
        # Once start() returns the listener is bound; no probe connection needed.
        asyncio.run_coroutine_threadsafe(self.embedded.start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.embedded.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def broker(tmp_path):
    instance = BrokerThread(tmp_path / "var")
    instance.devices = {unique("dev"): unique("pw") for _ in range(2)}
    instance.bridge_password = unique("bridge")
    instance.write(instance.devices, instance.bridge_password)
    instance.clients = []
    instance.start()
    yield instance
    for client in instance.clients:
        client.close()
    instance.stop()


def _client(broker, username, password, *, client_id=None, will=None) -> Client:
    client = Client(
        broker.port, client_id=client_id or username, username=username, password=password
    )
    if will is not None:
        client.client.will_set(will, b"offline", qos=1, retain=True)
    broker.clients.append(client)
    return client


def test_logins_need_the_right_password_and_no_anonymous_access(broker):
    (dev, password), (other, _) = broker.devices.items()
    assert _client(broker, dev, password).connect()
    assert not _client(broker, other, password).connect()
    assert not _client(broker, "nobody", password, client_id=unique("x")).connect()
    anonymous = Client(broker.port, client_id=unique("anon"))
    broker.clients.append(anonymous)
    assert not anonymous.connect()


def test_a_device_must_use_its_own_id_as_client_id(broker):
    (dev, password), (other, _) = broker.devices.items()
    assert not _client(broker, dev, password, client_id=other).connect()
    bridge = _client(broker, BRIDGE, broker.bridge_password, client_id=unique("bridge"))
    assert bridge.connect()


def test_mqtt5_is_refused_at_once_so_clients_fall_back_to_311(broker):
    # amqtt speaks 3.1.1 only: an MQTT 5 CONNECT gets "unsupported protocol version" (0x84),
    # not silence, so a client trying 5 first moves on to 3.1.1 without waiting.
    dev, password = next(iter(broker.devices.items()))
    client = Client(
        broker.port, client_id=dev, username=dev, password=password, protocol=mqtt.MQTTv5
    )
    broker.clients.append(client)
    assert not client.connect(timeout=5)
    assert client.connect_result is not None and client.connect_result.value == 0x84


def test_topics_are_enforced_like_the_mosquitto_acl(broker):
    (dev, password), (other, other_password) = broker.devices.items()
    bridge = _client(broker, BRIDGE, broker.bridge_password, client_id=unique("bridge"))
    assert bridge.connect()
    assert bridge.subscribe("dt/+/+/+")[0] == 1
    device = _client(broker, dev, password)
    assert device.connect()
    assert device.subscribe(f"cmd/{FLEET}/{dev}/#")[0] == 1
    intruder = _client(broker, other, other_password)
    assert intruder.connect()
    assert intruder.subscribe(f"cmd/{FLEET}/{dev}/#")[0] == 0x80
    assert intruder.subscribe("#")[0] == 0x80

    device.publish(f"dt/{FLEET}/{dev}/telemetry", b"mine")
    intruder.publish(f"dt/{FLEET}/{dev}/telemetry", b"forged")
    intruder.publish(f"dt/other-fleet/{other}/telemetry", b"wrong fleet")
    intruder.publish(f"cmd/{FLEET}/{dev}/reboot", b"forged command")
    intruder.publish(f"dt/{FLEET}/{other}/telemetry", b"own")
    bridge.publish(f"cmd/{FLEET}/{dev}/reboot", b"now")
    bridge.wait_messages(2)
    device.wait_messages(1)
    time.sleep(0.5)
    assert sorted(payload for _, payload, _ in bridge.messages) == [b"mine", b"own"]
    assert device.messages == [(f"cmd/{FLEET}/{dev}/reboot", b"now", False)]
    assert intruder.messages == []


def test_retained_status_and_last_will_reach_the_bridge(broker):
    dev, password = next(iter(broker.devices.items()))
    status = f"dt/{FLEET}/{dev}/status"
    device = _client(broker, dev, password, will=status)
    assert device.connect()
    device.publish(status, b"online", retain=True)
    time.sleep(0.3)
    bridge = _client(broker, BRIDGE, broker.bridge_password, client_id=unique("bridge"))
    assert bridge.connect()
    bridge.subscribe("dt/+/+/+")
    assert bridge.wait_messages(1)[0] == (status, b"online", True)
    # An abrupt loss of the connection publishes the will.
    device.client._sock.close()
    messages = bridge.wait_messages(2)
    assert messages[1][:2] == (status, b"offline")


def test_a_last_will_on_another_device_topic_is_refused(broker):
    (dev, password), (other, _) = broker.devices.items()
    assert not _client(broker, dev, password, will=f"dt/{FLEET}/{other}/status").connect()


def test_revoking_a_device_disconnects_it_and_keeps_it_out(broker):
    (dev, password), (other, other_password) = broker.devices.items()
    device = _client(broker, dev, password, will=f"dt/{FLEET}/{dev}/status")
    assert device.connect()
    device.client.reconnect_delay_set(30, 60)
    kept = _client(broker, other, other_password)
    assert kept.connect()
    bridge = _client(broker, BRIDGE, broker.bridge_password, client_id=unique("bridge"))
    assert bridge.connect()
    bridge.subscribe("dt/+/+/+")

    remaining = {other: other_password}
    broker.write(remaining, broker.bridge_password)
    assert device.disconnected.wait(5)
    assert kept.connected.is_set()
    assert not _client(broker, dev, password, client_id=dev).connect()
    time.sleep(0.5)
    # The revoked device had no last word.
    assert bridge.messages == []


def test_rewriting_the_files_with_new_salts_keeps_everyone_connected(broker):
    dev, password = next(iter(broker.devices.items()))
    device = _client(broker, dev, password)
    bridge = _client(broker, BRIDGE, broker.bridge_password, client_id=unique("bridge"))
    assert device.connect() and bridge.connect()
    broker.resalt = True
    broker.write(broker.devices, broker.bridge_password)
    time.sleep(1.5)
    assert device.connected.is_set() and bridge.connected.is_set()
    assert not device.disconnected.is_set() and not bridge.disconnected.is_set()


def test_a_changed_password_disconnects_the_old_login(broker):
    dev, password = next(iter(broker.devices.items()))
    device = _client(broker, dev, password)
    assert device.connect()
    device.client.reconnect_delay_set(30, 60)
    broker.devices[dev] = "new-password"
    broker.write(broker.devices, broker.bridge_password)
    assert device.disconnected.wait(5)
    assert _client(broker, dev, "new-password").connect()


def test_a_device_added_later_can_log_in_without_restart(broker):
    newcomer = unique("dev")
    broker.devices[newcomer] = "pw-newcomer"
    broker.write(broker.devices, broker.bridge_password)
    time.sleep(0.6)
    assert _client(broker, newcomer, "pw-newcomer").connect()
