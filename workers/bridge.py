"""`palier bridge`: MQTT (devices) to the task queue (workers), acknowledging only what is safe.

One bridge holds one persistent MQTT session (fixed client id, clean start off, session expiry
MQTT_SESSION_EXPIRY_S) and subscribes with QoS 1 to `$share/palier/dt/+/+/+`, so that N bridges
split the load; on a broker without shared subscriptions (the embedded broker of `palier run`
speaks MQTT 3.1.1 only) it falls back to the plain `dt/+/+/+`.

Each message is checked with the contract (`devices.contract.decode`, never the database) and
becomes an ingest item, or a quarantine item with its reason. Items are batched per shard
queue `ingest.<crc32(device_id) % INGEST_SHARDS>` (one device, one queue, so one device's
readings stay in order), and a batch leaves when it holds INGEST_BATCH_SIZE messages or is
INGEST_BATCH_MS old. A message is acknowledged to the MQTT broker only once the batch holding
it has been accepted by the task broker, and acknowledgements go out in arrival order; until
then it stays in the MQTT session, so a crash of the bridge, of the task broker or of the link
between them loses nothing (the broker redelivers; the ingest task deduplicates).
"""

from __future__ import annotations

import argparse
import base64
import logging
import logging.config
import os
import re
import signal
import socket
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from api.telemetry.batch import INGEST_CONTENT_TYPE, encode_body, item_from_decoded
from devices import contract
from workers import metrics
from workers.bridge_mqtt import BulkClient, Message
from workers.celery_app import BATCH_CONTENT_TYPE, freeze_startup_objects

logger = logging.getLogger("palier.bridge")

INGEST_TASK = "telemetry.ingest_batch"
QUARANTINE_TASK = "telemetry.quarantine_batch"
QUARANTINE_QUEUE = "ingest.quarantine"
RAW_KEPT_BYTES = 2048
# CONNACK reason codes meaning "this broker does not speak the protocol level we asked for".
_UNSUPPORTED_PROTOCOL = {1, 132}
_CLOSED = -1  # the broker closed the connection before any CONNACK
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def shard_queue(device_id: str, shards: int) -> str:
    """The ingest queue of a device: all its messages go through the same one."""
    return f"ingest.{zlib.crc32(device_id.encode()) % shards}"


def ingest_queues(shards: int) -> list[str]:
    """Every queue the bridge writes to (what ingest workers consume)."""
    return [f"ingest.{shard}" for shard in range(shards)] + [QUARANTINE_QUEUE]


@dataclass(frozen=True)
class BridgeConfig:
    """Everything a bridge needs, read from settings and overridable from the command line."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    client_id: str = "palier-bridge-0"
    shared: str = "auto"  # auto | on | off
    protocol: str = "auto"  # auto | 5 | 3.1.1
    session_expiry_s: int = 2 * 86_400
    keepalive_s: int = 30
    receive_maximum: int = 20_000
    batch_size: int = 1000
    batch_ms: int = 200
    shards: int = 2
    fleets: tuple[str, ...] = ()  # empty: every fleet
    broker_url: str = "redis://127.0.0.1:6379/0"
    stop_grace_s: float = 10.0

    @classmethod
    def from_settings(cls, **overrides: Any) -> BridgeConfig:
        """Build the configuration from Django settings (no app loading, no database)."""
        from django.conf import settings

        url = urlsplit(settings.MQTT_URL)
        tls = url.scheme in {"mqtts", "ssl", "tls"}
        config = cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or (8883 if tls else 1883),
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            tls=tls,
            client_id=settings.MQTT_BRIDGE_CLIENT_ID or default_client_id(),
            shared=str(settings.MQTT_SHARED_SUBSCRIPTION).lower(),
            protocol=str(settings.MQTT_PROTOCOL).lower(),
            session_expiry_s=settings.MQTT_SESSION_EXPIRY_S,
            keepalive_s=settings.MQTT_KEEPALIVE_S,
            receive_maximum=settings.MQTT_RECEIVE_MAXIMUM,
            batch_size=settings.INGEST_BATCH_SIZE,
            batch_ms=settings.INGEST_BATCH_MS,
            shards=settings.INGEST_SHARDS,
            fleets=tuple(settings.MQTT_BRIDGE_FLEETS),
            broker_url=settings.CELERY_BROKER_URL,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def default_client_id(instance: int | None = None) -> str:
    """`palier-bridge-<host>-<instance>`: stable across restarts, so the session is resumed."""
    if instance is None:
        instance = int(os.environ.get("BRIDGE_INSTANCE", "0"))
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40]
    return f"palier-bridge-{host}-{instance}"


class CelerySender:
    """Queue a batch as a Celery task message and return only once the broker accepted it.

    The body is the JSON that Celery's own json serializer would produce, encoded with
    msgspec: ingest batches under `INGEST_CONTENT_TYPE` (items as arrays, which workers decode
    straight into `api.telemetry.batch.IngestItem`), quarantine batches under
    `workers.celery_app.BATCH_CONTENT_TYPE` (plain objects).
    """

    def __init__(self, broker_url: str) -> None:
        from workers.celery_app import app

        self._app = app
        self._broker_url = broker_url
        self._connection = None
        self._producer = None

    def _producer_for_write(self):
        if self._producer is None:
            self._connection = self._app.connection_for_write(self._broker_url)
            self._producer = self._connection.Producer(serializer="json")
        return self._producer

    def send(self, queue: str, task: str, items: list) -> None:
        """Publish one task message; raises if the broker did not confirm it."""
        task_id = str(uuid.uuid4())
        message = self._app.amqp.as_task_v2(
            task_id, task, args=(), kwargs={}, argsrepr=f"[<{len(items)} items>]", kwargsrepr="{}"
        )
        body = encode_body(((items,), {}, _EMBED))
        producer = self._producer_for_write()
        try:
            # The anonymous exchange routes on the queue name: the message lands in the list
            # the workers read, whether or not a worker ever declared that queue.
            producer.publish(
                body,
                exchange="",
                routing_key=queue,
                content_type=INGEST_CONTENT_TYPE if task == INGEST_TASK else BATCH_CONTENT_TYPE,
                content_encoding="utf-8",
                headers=message.headers,
                delivery_mode=2,
                retry=False,
                **message.properties,
            )
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection; the next send opens a new one."""
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception as error:  # noqa: BLE001 - closing a broken connection
                logger.debug("closing the task broker connection: %s", error)


@dataclass
class _Batch:
    queue: str
    task: str
    started: float
    items: list = field(default_factory=list)
    entries: list[list] = field(default_factory=list)
    oldest_ts: float = float("inf")


def _printable(text: str, limit: int) -> str:
    """Text safe for a PostgreSQL text column and a log line."""
    return text[:limit].replace("\x00", "\ufffd")


class Bridge:
    """One MQTT session feeding the ingest queues; `start()`, then `stop()` to drain and leave."""

    def __init__(self, config: BridgeConfig, *, sender: CelerySender | None = None) -> None:
        self.config = config
        self._sender = sender or CelerySender(config.broker_url)
        self._cond = threading.Condition()
        # [packet id, done] per QoS 1 message of the current connection, in arrival order.
        self._pending: deque[list] = deque()
        self._open: dict[str, _Batch] = {}
        self._ready: deque[_Batch] = deque()
        self._queues: dict[str, str] = {}
        self._stopping = False
        self._abandon = threading.Event()
        self._held = 0  # items in open or ready batches
        self._client: BulkClient | None = None
        self._answered = threading.Event()
        self._connack: int | None = None
        self._flusher = threading.Thread(target=self._flush_loop, name="bridge-flusher")
        self.shared: bool | None = None
        self.protocol: int | None = None
        self.topic: str | None = None
        self.received = 0
        self.subscribed = threading.Event()

    # --- connection -----------------------------------------------------------------------
    def start(self, *, timeout: float | None = None) -> None:
        """Connect (retrying until the broker answers) and start consuming."""
        self._flusher.start()
        protocols = {
            "auto": [mqtt.MQTTv5, mqtt.MQTTv311],
            "5": [mqtt.MQTTv5],
            "3.1.1": [mqtt.MQTTv311],
        }[self.config.protocol]
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.5
        while not self._stopping:
            for protocol in protocols:
                outcome = self._try_connect(protocol)
                if outcome == "connected":
                    return
                if outcome == "unsupported":
                    logger.info("broker refused MQTT %s, trying the next level", _name(protocol))
                    continue
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("MQTT broker unreachable")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _try_connect(self, protocol: int) -> str:
        config = self.config
        client = BulkClient(client_id=config.client_id, protocol=protocol, on_publishes=self._take)
        if config.username:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        self._connack = None
        self._answered.clear()
        self.protocol = protocol
        self._client = client
        try:
            if protocol == mqtt.MQTTv5:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = config.session_expiry_s
                props.ReceiveMaximum = min(config.receive_maximum, 65_535)
                client.connect(
                    config.host,
                    config.port,
                    keepalive=config.keepalive_s,
                    clean_start=False,
                    properties=props,
                )
            else:
                client.connect(config.host, config.port, keepalive=config.keepalive_s)
        except OSError as error:
            logger.warning("MQTT broker %s:%s unreachable: %s", config.host, config.port, error)
            return "unreachable"
        client.loop_start()
        # Some MQTT 3.1.1-only brokers refuse MQTT 5 with a CONNACK, others close the
        # connection or never answer: all three mean "try 3.1.1" when the level is auto.
        may_fall_back = protocol == mqtt.MQTTv5 and config.protocol == "auto"
        answered = self._answered.wait(5 if may_fall_back else 10)
        refused = self._connack in _UNSUPPORTED_PROTOCOL or self._connack == _CLOSED
        if refused or (may_fall_back and not answered):
            client.loop_stop()
            client.disconnect()
            return "unsupported"
        # Anything else (connected, refused credentials, slow broker): paho's loop keeps
        # reconnecting with backoff, and the callbacks report it.
        return "connected"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack = reason_code.value
        self._answered.set()
        if reason_code.is_failure:
            if reason_code.value not in _UNSUPPORTED_PROTOCOL:
                logger.error("MQTT broker refused the bridge: %s", reason_code)
            return
        if self.protocol == mqtt.MQTTv5:
            available = getattr(properties, "SharedSubscriptionAvailable", 1) != 0
        else:
            available = False
        wanted = self.config.shared
        self.shared = available if wanted == "auto" else wanted in {"on", "true", "1", "yes"}
        topics = contract.subscriptions(shared=self.shared, fleets=self.config.fleets)
        self.topic = topic = ", ".join(topics)
        with self._cond:
            # Unacknowledged messages of a previous connection come back with this one.
            self._pending.clear()
            metrics.INFLIGHT.set(0)
        if self.protocol == mqtt.MQTTv5:
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        else:
            client.subscribe([(t, 1) for t in topics])
        if not flags.session_present:
            logger.info("new MQTT session %s (nothing was waiting for it)", self.config.client_id)
        logger.info(
            "bridge %s connected to %s:%s (MQTT %s), subscribing to %s",
            self.config.client_id,
            self.config.host,
            self.config.port,
            _name(self.protocol),
            topic,
        )
        metrics.SHARED.set(1 if self.shared else 0)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(code.is_failure for code in reason_codes):
            logger.error("MQTT broker refused the subscription to %s: %s", self.topic, reason_codes)
            return
        # Connected and subscribed: from now on the session receives every message.
        metrics.CONNECTED.set(1)
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        was_accepted = self._connack == 0
        if not self._answered.is_set():
            self._connack = _CLOSED
            self._answered.set()
        with self._cond:
            self._pending.clear()
            metrics.INFLIGHT.set(0)
        metrics.CONNECTED.set(0)
        if was_accepted and not self._stopping:
            logger.warning("MQTT connection lost (%s); reconnecting", reason_code)

    # --- receiving (paho's network thread) ---------------------------------------------------
    def _queue_of(self, device_id: str) -> str:
        queue = self._queues.get(device_id)
        if queue is None:
            if len(self._queues) > 200_000:
                self._queues.clear()
            queue = self._queues[device_id] = shard_queue(device_id, self.config.shards)
        return queue

    def _take(self, messages: list[Message]) -> None:
        """Check and batch the messages of one socket read; never blocks on I/O."""
        if self._stopping:
            return  # left unacknowledged: redelivered to the next session
        self.received += len(messages)
        now = time.time()
        decode = contract.decode
        routed: list[tuple[str, str, object, list | None, float]] = []
        valid: Counter[str] = Counter()
        quarantined: Counter[str] = Counter()
        rejected_records: Counter[str] = Counter()
        for topic, raw, mid, qos, retained in messages:
            entry = [mid, False] if qos else None
            try:
                decoded = decode(topic, raw, now=now)
            except contract.ContractError as error:
                quarantined[error.reason] += 1
                item = self._quarantine_item(topic, raw, error.reason, error.detail, now)
                routed.append((QUARANTINE_QUEUE, QUARANTINE_TASK, item, entry, now))
                continue
            except Exception as error:
                logger.exception("contract check crashed on a message of %r", topic[:200])
                quarantined["decode_error"] += 1
                item = self._quarantine_item(topic, raw, "decode_error", repr(error), now)
                routed.append((QUARANTINE_QUEUE, QUARANTINE_TASK, item, entry, now))
                continue
            parsed = decoded.topic
            item = item_from_decoded(topic, decoded, now, retained)
            ts = item.ts if decoded.envelope is not None else now
            for _record, reason in decoded.rejected:
                rejected_records[reason] += 1
            valid[parsed.kind] += 1
            routed.append((self._queue_of(parsed.device_id), INGEST_TASK, item, entry, ts))
        size = self.config.batch_size
        # QoS 1 messages are bounded by the receive maximum; QoS 0 ones are not, so past this
        # many held items (the task broker is down) they are dropped, as QoS 0 allows.
        limit = 2 * self.config.receive_maximum
        dropped = 0
        with self._cond:
            if self._stopping:
                return
            pending = self._pending
            batches = self._open
            for queue, task, item, entry, ts in routed:
                if entry is None and self._held >= limit:
                    dropped += 1
                    continue
                self._held += 1
                batch = batches.get(queue)
                if batch is None:
                    batch = batches[queue] = _Batch(queue, task, now)
                batch.items.append(item)
                if entry is not None:
                    pending.append(entry)
                    batch.entries.append(entry)
                if ts < batch.oldest_ts:
                    batch.oldest_ts = ts
                if len(batch.items) >= size:
                    del batches[queue]
                    self._ready.append(batch)
                    self._cond.notify()
            metrics.INFLIGHT.set(len(pending))
        metrics.RECEIVED.inc(len(messages))
        if dropped:
            metrics.DROPPED.inc(dropped)
        for kind, count in valid.items():
            metrics.VALID.labels(kind).inc(count)
        for reason, count in quarantined.items():
            metrics.QUARANTINED.labels(reason).inc(count)
        for reason, count in rejected_records.items():
            metrics.RECORDS_REJECTED.labels(reason).inc(count)

    @staticmethod
    def _quarantine_item(topic: str, raw: bytes, reason: str, detail: str, now: float) -> dict:
        return {
            "topic": _printable(topic, 300),
            "reason": reason,
            "detail": _printable(detail, 500),
            "raw_b64": base64.b64encode(raw[:RAW_KEPT_BYTES]).decode("ascii"),
            "size": len(raw),
            "received_at": now,
        }

    # --- handing over (flusher thread) ----------------------------------------------------------
    def _next_batch(self) -> _Batch | None:
        """Wait for a full or old-enough batch; None once stopping and everything is flushed."""
        age = self.config.batch_ms / 1000
        with self._cond:
            while True:
                now = time.time()
                if self._stopping:
                    self._ready.extend(self._open.values())
                    self._open.clear()
                else:
                    for queue, batch in list(self._open.items()):
                        if now - batch.started >= age:
                            del self._open[queue]
                            self._ready.append(batch)
                if self._ready:
                    return self._ready.popleft()
                if self._stopping:
                    return None
                wake = min((b.started + age for b in self._open.values()), default=now + age)
                self._cond.wait(max(wake - now, 0.005))

    def _flush_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not self._send(batch):
                return
            self._acknowledge(batch)

    def _send(self, batch: _Batch) -> bool:
        """Queue the batch, retrying until the task broker takes it (False: gave up on stop)."""
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                self._sender.send(batch.queue, batch.task, batch.items)
            except Exception as error:  # noqa: BLE001 - any broker failure means "retry later"
                metrics.ENQUEUE_FAILURES.inc()
                if self._abandon.is_set():
                    return False
                logger.warning(
                    "task broker unavailable (%s); holding %d messages unacknowledged",
                    error,
                    len(batch.items),
                )
                if self._abandon.wait(delay):
                    return False
                delay = min(delay * 2, 5.0)
                continue
            elapsed = time.perf_counter() - started
            metrics.ENQUEUE_SECONDS.observe(elapsed)
            metrics.BATCH_SIZE.observe(len(batch.items))
            metrics.BATCHES.labels(batch.queue).inc()
            metrics.LAG_SECONDS.observe(max(time.time() - batch.oldest_ts, 0.0))
            return True

    def _acknowledge(self, batch: _Batch) -> None:
        """Mark the batch's messages safe and ack the safe prefix, in arrival order."""
        with self._cond:
            self._held -= len(batch.items)
            for entry in batch.entries:
                entry[1] = True
            pending = self._pending
            mids = []
            while pending and pending[0][1]:
                mids.append(pending.popleft()[0])
            client = self._client
            if mids and client is not None:
                # Under the lock: a reconnection cannot slip between the check and the ack.
                client.ack_many(mids)
            metrics.INFLIGHT.set(len(pending))

    # --- stopping ----------------------------------------------------------------------------
    def stop(self, *, leave: bool = False) -> None:
        """Flush the open batches and acknowledge them; keep the session for the next start,
        or with `leave` (scaling down) unsubscribe, drain what was routed here, end it."""
        client = self._client
        leave = leave and client is not None and self.protocol == mqtt.MQTTv5
        if leave and client.is_connected() and self.topic:
            self._drain_before_leaving(client)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._flusher.join(self.config.stop_grace_s)
        if self._flusher.is_alive():
            logger.warning("task broker still unavailable: leaving messages unacknowledged")
            self._abandon.set()
            self._flusher.join(5)
        if client is None:
            return
        deadline = time.monotonic() + 2
        while client.want_write() and time.monotonic() < deadline:
            time.sleep(0.01)
        client.loop_stop()
        # Sent from this thread now that the network loop is stopped.
        if leave:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
            client.disconnect(properties=props)
        else:
            client.disconnect()
        self._sender.close()
        logger.info("bridge %s stopped", self.config.client_id)

    def _drain_before_leaving(self, client: BulkClient) -> None:
        """Stop new messages coming to this session, then take those already queued for it."""
        client.unsubscribe(self.topic)
        deadline = time.monotonic() + self.config.stop_grace_s
        last, quiet_since = self.received, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if self.received != last:
                last, quiet_since = self.received, time.monotonic()
            elif time.monotonic() - quiet_since >= 0.5:
                break
        logger.info("bridge %s left the shared subscription", self.config.client_id)

    @property
    def inflight(self) -> int:
        """QoS 1 messages received and not yet acknowledged."""
        return len(self._pending)


def _name(protocol: int | None) -> str:
    return {mqtt.MQTTv5: "5", mqtt.MQTTv311: "3.1.1"}.get(protocol, "?")


def main(argv: list[str] | None = None) -> None:
    """Run one bridge until SIGTERM or SIGINT."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
    from django.conf import settings

    parser = argparse.ArgumentParser(
        prog="palier bridge",
        description="MQTT to task queue bridge. Run N of them with distinct --instance numbers "
        "(or MQTT_BRIDGE_CLIENT_ID values): each keeps its own persistent session.",
    )
    parser.add_argument("--client-id", help="fixed MQTT client id (default: settings)")
    parser.add_argument("--instance", type=int, help="instance number in the default client id")
    parser.add_argument("--shared", choices=["auto", "on", "off"], help="shared subscription")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port, 0 = off")
    parser.add_argument(
        "--leave",
        action="store_true",
        help="on SIGTERM, end this bridge's session instead of keeping it (scaling down)",
    )
    args = parser.parse_args(argv)

    logging.config.dictConfig(settings.LOGGING)
    client_id = args.client_id
    if client_id is None and args.instance is not None:
        client_id = default_client_id(args.instance)
    config = BridgeConfig.from_settings(client_id=client_id, shared=args.shared)
    port = settings.BRIDGE_METRICS_PORT if args.metrics_port is None else args.metrics_port
    metrics.serve(port)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bridge = Bridge(config)
    freeze_startup_objects()
    starter = threading.Thread(target=bridge.start, name="bridge-connect", daemon=True)
    starter.start()
    stop.wait()
    logger.info("stopping: flushing the open batches")
    bridge.stop(leave=args.leave)
