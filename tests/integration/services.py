"""Private copies of the real services for the ingest tests: Mosquitto, Redis, a TCP proxy.

Each runs from its own binary on a free loopback port, so a test may kill or restart it without
disturbing the machine's shared instances (or anybody else's tests).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import redis
from paho.mqtt.enums import CallbackAPIVersion

from api.telemetry.batch import INGEST_CONTENT_TYPE, decode_body, envelope_of
from devices.contract import Envelope, encode, make_record, telemetry_topic


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Mosquitto:
    """A Mosquitto of our own: anonymous, deep queues, optional persistence in `directory`."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.conf = directory / "mosquitto.conf"
        lines = [
            # Started as root, Mosquitto would switch to its own user and lose its files.
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "max_queued_messages 0",
            f"log_dest file {directory / 'mosquitto.log'}",
        ]
        if persistent:
            lines += [
                "persistence true",
                f"persistence_location {directory}/",
                "autosave_interval 1",
            ]
        else:
            lines.append("persistence false")
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file before leaving."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)


class RedisServer:
    """A redis-server of our own, with an append-only file when asked (as in production)."""

    def __init__(self, directory: Path, *, aof: bool = True, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.aof = aof
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--dir", str(self.directory)]
        if self.aof:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)


class TcpProxy:
    """A loopback TCP proxy that can be cut (every connection dropped, new ones refused)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and stop listening: the database is unreachable."""
        if self._server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.start()


def envelope(device_id: str, seq: int, *, boot: int = 1, ts: float | None = None) -> bytes:
    records = [make_record("room_temp", 19.5 + seq % 10 / 10), make_record("flame", seq % 2 == 0)]
    return encode(Envelope(v=1, dev=device_id, boot=boot, seq=seq, ts=ts or time.time(), m=records))


class Publisher:
    """A paho QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique("pub"), protocol=mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
        infos = [self.client.publish(t, p, qos=1, retain=retain) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)

    def telemetry(self, fleet: str, device_id: str, seqs, *, boot: int = 1) -> None:
        topic = telemetry_topic(fleet, device_id)
        self.send([(topic, envelope(device_id, seq, boot=boot)) for seq in seqs])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def queued_tasks(url: str, queues: list[str]) -> list[tuple[str, str, list[dict]]]:
    """(queue, task name, items) of every task message waiting in the Redis lists.

    Ingest items come as dicts of their fields, with `payload`: the device's message rebuilt
    from the item's columns (so tests read what the bridge made of it).
    """
    client = redis.Redis.from_url(url)
    tasks = []
    for queue in queues:
        for raw in reversed(client.lrange(queue, 0, -1)):  # LPUSH: oldest last
            message = json.loads(raw)
            data = base64.b64decode(message["body"])
            if message["content-type"] == INGEST_CONTENT_TYPE:
                items = [
                    {**msgspec.structs.asdict(item), "payload": envelope_of(item)}
                    for item in decode_body(data)[0][0]
                ]
            else:
                items = json.loads(data)[0][0]
            tasks.append((queue, message["headers"]["task"], items))
    return tasks


def clear_queues(url: str, queues: list[str]) -> None:
    redis.Redis.from_url(url).delete(*queues)


def bridge_env(**values: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(values)
    return env
