"""Device credentials: Mosquitto-compatible hashes and an ACL that a real Mosquitto enforces."""

import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import credentials
from devices.credentials import (
    acl_allows,
    hash_password,
    parse_acl,
    read_passwd,
    render_acl,
    render_passwd,
    verify_password,
)
from tests.devices.mqtt_helpers import Client, MosquittoInstance, unique

FLEET = "hlm-test"
BRIDGE = "palier-bridge"


def test_hash_has_mosquitto_format_and_verifies():
    hashed = hash_password("s3cret")
    _, algo, iterations, salt, digest = hashed.split("$")
    assert (algo, iterations, len(salt), len(digest)) == ("7", "101", 16, 88)
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret!", hashed)
    assert hash_password("s3cret") != hashed  # salted


def test_verifies_hashes_written_by_mosquitto_passwd(tmp_path):
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "pa:ss wörd"], check=True)
    subprocess.run(["mosquitto_passwd", "-H", "sha512", "-b", str(path), "bob", "x"], check=True)
    users = read_passwd(path.read_text())
    assert users["alice"].startswith("$7$101$")
    assert verify_password("pa:ss wörd", users["alice"])
    assert not verify_password("pa:ss word", users["alice"])
    assert users["bob"].startswith("$6$") and verify_password("x", users["bob"])


@pytest.mark.parametrize(
    "hashed", ["", "plain", "$7$x$y$z", "$7$0$AAAA$AAAA", "$7$101$!!$!!", "$9$a$b"]
)
def test_malformed_hashes_never_verify(hashed):
    assert not verify_password("anything", hashed)


@settings(max_examples=25, deadline=None)
@given(password=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_any_password_round_trips(password):
    assert verify_password(password, hash_password(password, iterations=2))


def test_passwd_file_round_trip_and_refuses_bad_usernames():
    text = render_passwd([("dev-1", "$7$101$a$b"), ("dev-2", "$7$101$c$d")])
    assert text == "dev-1:$7$101$a$b\ndev-2:$7$101$c$d\n"
    assert read_passwd(text + "\n# comment\n") == {"dev-1": "$7$101$a$b", "dev-2": "$7$101$c$d"}
    for bad in ["a:b", "a b", "", "a\nb"]:
        with pytest.raises(ValueError):
            render_passwd([(bad, "$7$1$a$b")])


def test_acl_grants_each_device_its_own_topics_only():
    acl = render_acl([("dev-1", FLEET), ("dev-2", FLEET)], bridge_username=BRIDGE)
    assert "user dev-1\ntopic write dt/hlm-test/dev-1/#\ntopic read cmd/hlm-test/dev-1/#" in acl
    parsed = parse_acl(acl)
    assert acl_allows(parsed, "dev-1", "dt/hlm-test/dev-1/telemetry", "write")
    assert acl_allows(acl, "dev-1", "cmd/hlm-test/dev-1/reboot", "read")
    assert acl_allows(acl, "dev-1", "cmd/hlm-test/dev-1/#", "read")
    assert not acl_allows(acl, "dev-1", "dt/hlm-test/dev-2/telemetry", "write")
    assert not acl_allows(acl, "dev-1", "dt/other-fleet/dev-1/telemetry", "write")
    assert not acl_allows(acl, "dev-1", "dt/hlm-test/dev-1/telemetry", "read")
    assert not acl_allows(acl, "dev-1", "cmd/hlm-test/dev-1/reboot", "write")
    assert not acl_allows(acl, "dev-1", "cmd/hlm-test/+/reboot", "read")
    assert not acl_allows(acl, "dev-1", "#", "read")
    assert not acl_allows(acl, "unknown", "dt/hlm-test/unknown/telemetry", "write")
    assert not acl_allows(acl, None, "dt/hlm-test/dev-1/telemetry", "write")
    assert acl_allows(acl, BRIDGE, "dt/+/+/+", "read")
    assert acl_allows(acl, BRIDGE, "$share/palier/dt/+/+/+", "read")
    assert acl_allows(acl, BRIDGE, "cmd/hlm-test/dev-1/reboot", "write")
    assert not acl_allows(acl, BRIDGE, "dt/hlm-test/dev-1/telemetry", "write")
    assert not acl_allows(acl, BRIDGE, "$SYS/broker/uptime", "read")


def test_acl_patterns_deny_and_readwrite():
    acl = "pattern write dt/f/%u/#\nuser a\ntopic readwrite x/#\ntopic deny x/secret\n"
    assert acl_allows(acl, "a", "dt/f/a/status", "write")
    assert acl_allows(acl, "b", "dt/f/b/status", "write")
    assert not acl_allows(acl, "b", "dt/f/a/status", "write")
    assert acl_allows(acl, "a", "x/y", "read") and acl_allows(acl, "a", "x/y", "write")
    assert not acl_allows(acl, "a", "x/secret", "read")
    with pytest.raises(ValueError):
        acl_allows(acl, "a", "x", "subscribe")


def test_write_atomically(tmp_path):
    target = tmp_path / "mqtt" / "passwd"
    credentials.write_atomically(target, "a:b\n")
    credentials.write_atomically(target, "c:d\n")
    assert target.read_text() == "c:d\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["passwd"]


# --- enforced by a real Mosquitto -------------------------------------------------------------


@pytest.fixture
def broker(tmp_path, request):
    devices = {unique("dev"): credentials.secrets.token_urlsafe(16) for _ in range(2)}
    bridge_password = credentials.secrets.token_urlsafe(16)
    passwd = render_passwd(
        [(name, hash_password(pw)) for name, pw in devices.items()]
        + [(BRIDGE, hash_password(bridge_password))]
    )
    acl = render_acl([(name, FLEET) for name in devices], bridge_username=BRIDGE)
    instance = MosquittoInstance(tmp_path, passwd=passwd, acl=acl)
    request.addfinalizer(instance.stop)
    instance.start()
    instance.devices = devices
    instance.bridge_password = bridge_password
    clients: list[Client] = []
    instance.clients = clients
    yield instance
    for client in clients:
        client.close()
    instance.stop()


def _client(broker, username, password, *, client_id=None, protocol=None) -> Client:
    kwargs = {} if protocol is None else {"protocol": protocol}
    client = Client(
        broker.port, client_id=client_id or username, username=username, password=password, **kwargs
    )
    broker.clients.append(client)
    return client


def test_mosquitto_accepts_our_hashes_and_refuses_wrong_passwords(broker):
    (dev, password), (other, _) = broker.devices.items()
    assert _client(broker, dev, password).connect()
    assert not _client(broker, other, password).connect()
    refused = _client(broker, dev, password + "x", client_id=unique("c"))
    assert not refused.connect()
    assert refused.connect_result.is_failure
    assert not Client(broker.port, client_id=unique("anon")).connect()


def test_mosquitto_enforces_the_acl(broker):
    import paho.mqtt.client as mqtt

    (dev, password), (other, other_password) = broker.devices.items()
    bridge = _client(broker, BRIDGE, broker.bridge_password, protocol=mqtt.MQTTv5)
    assert bridge.connect()
    granted = bridge.subscribe("$share/palier/dt/+/+/+")
    assert not granted[0].is_failure
    device = _client(broker, dev, password)
    assert device.connect()
    assert not device.subscribe(f"cmd/{FLEET}/{dev}/#")[0].is_failure
    intruder = _client(broker, other, other_password)
    assert intruder.connect()
    # Mosquitto 2.0 grants the SUBSCRIBE but checks `read` on every delivery.
    intruder.subscribe(f"cmd/{FLEET}/{dev}/#")
    intruder.subscribe(f"dt/{FLEET}/{dev}/#")

    device.publish(f"dt/{FLEET}/{dev}/telemetry", b"mine")
    intruder.publish(f"dt/{FLEET}/{dev}/telemetry", b"forged")
    intruder.publish(f"dt/other-fleet/{other}/telemetry", b"wrong fleet")
    intruder.publish(f"dt/{FLEET}/{other}/telemetry", b"own")
    bridge.publish(f"cmd/{FLEET}/{dev}/reboot", b"now")
    bridge.publish(f"cmd/{FLEET}/{other}/reboot", b"not for dev")
    received = bridge.wait_messages(2)
    time.sleep(0.5)
    assert sorted(p for _, p, _ in bridge.messages) == [b"mine", b"own"]
    assert device.wait_messages(1) == [(f"cmd/{FLEET}/{dev}/reboot", b"now", False)]
    time.sleep(0.3)
    assert len(device.messages) == 1 and len(received) == 2
    assert intruder.messages == []


def test_mosquitto_drops_a_revoked_device_after_reload(broker):
    (dev, password), (other, other_password) = broker.devices.items()
    connected = _client(broker, dev, password)
    assert connected.connect()
    connected.client.reconnect_delay_set(60, 120)
    broker.passwd_path.write_text(render_passwd([(other, hash_password(other_password))]))
    broker.reload()
    # Mosquitto 2 re-checks connected clients against the reloaded password file.
    assert connected.disconnected.wait(5)
    assert not _client(broker, dev, password, client_id=unique("again")).connect()
    assert _client(broker, other, other_password).connect()
