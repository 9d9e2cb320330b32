"""Helpers for tests that talk to real brokers with real paho clients."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class MosquittoInstance:
    """A private Mosquitto on a free port, configured with a password file and an ACL."""

    def __init__(
        self, directory: Path, *, passwd: str, acl: str, persistence: bool = False
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.passwd_path = directory / "passwd"
        self.acl_path = directory / "acl"
        self.passwd_path.write_text(passwd)
        self.acl_path.write_text(acl)
        os.chmod(self.passwd_path, 0o600)
        os.chmod(self.acl_path, 0o600)
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(
            "\n".join(
                [
                    "user root",
                    "per_listener_settings false",
                    "allow_anonymous false",
                    f"password_file {self.passwd_path}",
                    f"acl_file {self.acl_path}",
                    f"listener {self.port} 127.0.0.1",
                    f"persistence {'true' if persistence else 'false'}",
                    f"persistence_location {directory}/",
                    f"log_dest file {directory / 'mosquitto.log'}",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> MosquittoInstance:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(1)  # SIGHUP: Mosquitto re-reads its password and ACL files
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop (saving its persistence file, if any), stay down a while, start on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()


class Client:
    """A paho client that records what it sees, for assertions."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        protocol: int = mqtt.MQTTv311,
    ) -> None:
        self.port = port
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: list[tuple[str, bytes, bool]] = []
        self.connect_result: ReasonCode | int | None = None
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self.subscribed: dict[int, list] = {}
        self.published: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connect_result = reason_code
        if not reason_code.is_failure:
            self.connected.set()
        else:
            self.disconnected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.disconnected.set()

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed[mid] = reason_codes

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.published.add(mid)

    def connect(self, timeout: float = 5.0) -> bool:
        """Connect and wait for the CONNACK; True when accepted."""
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.disconnected.is_set():
                return False
            time.sleep(0.02)
        return False

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> list:
        _, mid = self.client.subscribe(topic, qos)
        deadline = time.monotonic() + timeout
        while mid not in self.subscribed and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.subscribed.get(mid, [])

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        return self.client.publish(topic, payload, qos=qos, retain=retain).mid

    def wait_messages(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    break
            time.sleep(0.02)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
