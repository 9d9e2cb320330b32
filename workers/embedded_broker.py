"""The embedded MQTT broker (amqtt) used by `palier run`, so no Mosquitto is needed.

It listens on its own port (1884 by default) so it never collides with a real Mosquitto, and it
enforces the same credentials as production: the Mosquitto password file and ACL that Palier
writes under VAR_DIR/mqtt/, re-read when they change. No anonymous access. A device whose line
leaves the password file (revoked) or whose password changes is disconnected at once.

amqtt speaks MQTT 3.1.1 only: no shared subscriptions, so bridges subscribe without `$share`.
An MQTT 5 CONNECT gets an immediate refusal (CONNACK 0x84, unsupported protocol version) rather
than amqtt's silence, so a client that tries 5 first falls back to 3.1.1 at once.
It is meant for development on loopback, not for exposure to real devices.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import MQTTError
from amqtt.mqtt.connect import ConnectVariableHeader
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from devices.credentials import Acl, acl_allows, parse_acl, read_passwd, verify_password

logger = logging.getLogger("palier.mqtt_broker")

RELOAD_CHECK_S = 0.5
_SESSION_HASH = "palier_password_hash"
_ACTIONS = {Action.PUBLISH: "write", Action.SUBSCRIBE: "read", Action.RECEIVE: "read"}


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


class CredentialStore:
    """The password file and ACL as last read from disk, reloaded when either file changes."""

    def __init__(self, passwd_path: Path, acl_path: Path) -> None:
        self.passwd_path = passwd_path
        self.acl_path = acl_path
        self.users: dict[str, str] = {}
        self.acl: Acl = parse_acl("")
        self.device_users: frozenset[str] = frozenset()
        self._signatures: tuple | None = None
        self.generation = 0
        self._checked_at = 0.0
        self._decisions: dict[tuple[str, str, str], bool] = {}
        self._lock = threading.Lock()
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the files if they changed since last time; True when something was reloaded."""
        now = time.monotonic()
        if not force and now - self._checked_at < RELOAD_CHECK_S:
            return False
        self._checked_at = now
        signatures = (_signature(self.passwd_path), _signature(self.acl_path))
        if signatures == self._signatures and not force:
            return False
        with self._lock:
            self.users = read_passwd(_read(self.passwd_path))
            self.acl = parse_acl(_read(self.acl_path))
            self.device_users = frozenset(
                username
                for username, rules in self.acl.users.items()
                if any(f"/{username}/" in topic for _, topic in rules)
            )
            self._decisions = {}
            changed = signatures != self._signatures
            self._signatures = signatures
            self.generation += 1
        if changed and signatures[0] is None:
            logger.warning(
                "no password file at %s yet: every login is refused until "
                "`palier seed-demo` or `palier mqtt-credentials` writes it",
                self.passwd_path,
            )
        elif changed:
            logger.info("credentials loaded: %d user(s) from %s", len(self.users), self.passwd_path)
        return changed

    def authenticate(
        self, username: str | None, password: str | None, client_id: str | None
    ) -> str | None:
        """The password hash that admitted this login, or None when it is refused."""
        self.refresh()
        if not username:
            return None
        hashed = self.users.get(username)
        if hashed is None or not verify_password(password or "", hashed):
            return None
        # A device logs in with its own id as client id, so no device can take over another's
        # session by reusing its client id.
        if username in self.device_users and client_id != username:
            return None
        return hashed

    def current_hash(
        self, username: str | None, password: str | None, hashed: str | None
    ) -> str | None:
        """The hash that still admits a connected login, or None once it is revoked or changed.

        A rewritten file re-salts unchanged passwords, so a new hash is checked against the
        password the client logged in with, as Mosquitto does on reload.
        """
        if username is None:
            return None
        current = self.users.get(username)
        if current is None:
            return None
        if current == hashed or verify_password(password or "", current):
            return current
        return None

    def allows(self, username: str | None, topic: str, action: str) -> bool:
        """ACL decision, cached until the files change."""
        self.refresh()
        if username is None:
            return False
        key = (username, topic, action)
        decision = self._decisions.get(key)
        if decision is None:
            decision = acl_allows(self.acl, username, topic, action)
            if len(self._decisions) > 100_000:
                self._decisions = {}
            self._decisions[key] = decision
        return decision


_stores: dict[tuple[str, str], CredentialStore] = {}
_stores_lock = threading.Lock()


def store_for(passwd_file: str | Path, acl_file: str | Path) -> CredentialStore:
    """The one store per pair of files, shared by the plugins and the revocation watcher."""
    key = (os.path.abspath(passwd_file), os.path.abspath(acl_file))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = CredentialStore(Path(key[0]), Path(key[1]))
        return store


class PalierAuthPlugin(BaseAuthPlugin):
    """Logins checked against the Mosquitto password file; the last will must be allowed too."""

    @dataclass
    class Config:
        """Where the credential files are."""

        passwd_file: str = ""
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.store = store_for(self.config.passwd_file, self.config.acl_file)

    async def authenticate(self, *, session: Session) -> bool:
        hashed = self.store.authenticate(session.username, session.password, session.client_id)
        if hashed is None:
            logger.warning(
                "refused login for %r (client id %r)", session.username, session.client_id
            )
            return False
        # amqtt publishes the last will without any topic check: check it here instead.
        if session.will_flag and not self.store.allows(
            session.username, session.will_topic or "", "write"
        ):
            logger.warning("refused login for %r: last will on a forbidden topic", session.username)
            return False
        session.attributes[_SESSION_HASH] = hashed
        return True


class PalierTopicPlugin(BaseTopicPlugin):
    """Publish, subscribe and delivery checked against the Mosquitto ACL file."""

    @dataclass
    class Config:
        """Where the credential files are."""

        passwd_file: str = ""
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.store = store_for(self.config.passwd_file, self.config.acl_file)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        if session is None or not topic or action not in _ACTIONS:
            return False
        return self.store.allows(session.username, topic, _ACTIONS[action])


class _SnapshotDict(dict):
    """A dict iterated over a copy of itself.

    amqtt 0.12 iterates its subscription table across awaits; a client subscribing meanwhile
    made it fail with "dictionary changed size during iteration" and drop the message.
    """

    def __iter__(self):
        return iter(list(super().keys()))

    def items(self):
        return [(key, list(value)) for key, value in super().items()]


class _NewerProtocol(MQTTError):
    """A CONNECT at a protocol level above 3.1.1 (MQTT 5), which amqtt cannot parse."""


# CONNACK, MQTT 5 layout: no session, reason 0x84 "unsupported protocol version", no properties.
_REFUSE_NEWER = bytes((0x20, 0x03, 0x00, 0x84, 0x00))


def _refuse_newer_protocols() -> None:
    """Answer an MQTT 5 CONNECT with a refusal, then close.

    amqtt reads an MQTT 5 CONNECT as 3.1.1: the properties are taken for a string length and
    it waits for bytes that never come, so the client hears nothing until its own timeout.
    Idempotent.
    """
    if getattr(BrokerProtocolHandler, "_palier_refuses_newer", False):
        return
    read_header = ConnectVariableHeader.from_stream.__func__
    init_from_connect = BrokerProtocolHandler.init_from_connect.__func__

    async def header_from_stream(cls, reader, fixed_header):
        header = await read_header(cls, reader, fixed_header)
        if header.proto_level > 4:
            raise _NewerProtocol(f"MQTT protocol level {header.proto_level} is not supported")
        return header

    async def init_refusing_newer(cls, reader, writer, *args, **kwargs):
        try:
            return await init_from_connect(cls, reader, writer, *args, **kwargs)
        except _NewerProtocol:
            with contextlib.suppress(OSError):
                writer.write(_REFUSE_NEWER)
                await writer.drain()
            raise

    ConnectVariableHeader.from_stream = classmethod(header_from_stream)
    BrokerProtocolHandler.init_from_connect = classmethod(init_refusing_newer)
    BrokerProtocolHandler._palier_refuses_newer = True


class PalierBroker(Broker):
    """amqtt's broker with a subscription table that tolerates changes during a broadcast."""

    def __init__(self, config: dict) -> None:
        _refuse_newer_protocols()
        super().__init__(config)
        self._subscriptions = _SnapshotDict()


def _quiet_disconnects(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # A client that vanishes mid-handshake surfaces as an unhandled OSError in amqtt's
    # connection callback: routine for a broker, not an error of ours.
    if isinstance(context.get("exception"), OSError):
        logger.debug("client connection dropped: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def credential_paths(var_dir: Path) -> tuple[Path, Path]:
    """Where Palier writes the broker's password file and ACL."""
    return var_dir / "mqtt" / "passwd", var_dir / "mqtt" / "acl"


def broker_config(port: int, *, passwd_file: Path, acl_file: Path, host: str = "127.0.0.1") -> dict:
    """amqtt configuration: one TCP listener, Palier's credentials and ACL, nothing anonymous."""
    files = {"passwd_file": str(passwd_file), "acl_file": str(acl_file)}
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            f"{__name__}.PalierAuthPlugin": files,
            f"{__name__}.PalierTopicPlugin": files,
        },
    }


async def disconnect_revoked(broker: Broker, store: CredentialStore) -> list[str]:
    """Drop every connected client whose login is no longer in the password file."""
    dropped = []
    for client_id, (session, handler) in list(broker.sessions.items()):
        if session.transitions.state != "connected":
            continue
        hashed = store.current_hash(
            session.username, session.password, session.attributes.get(_SESSION_HASH)
        )
        if hashed is not None:
            session.attributes[_SESSION_HASH] = hashed
            continue
        # A revoked device gets no last word: its will is discarded with the connection.
        session.will_flag = False
        await handler.handle_connection_closed()
        dropped.append(client_id)
    for client_id in dropped:
        logger.info("disconnected %s: credentials revoked", client_id)
    return dropped


class EmbeddedBroker:
    """A running amqtt broker plus the task that applies credential changes to live sessions."""

    def __init__(self, port: int, *, passwd_file: Path, acl_file: Path) -> None:
        self.port = port
        self.store = store_for(passwd_file, acl_file)
        self.config = broker_config(port, passwd_file=passwd_file, acl_file=acl_file)
        self.broker: PalierBroker | None = None
        self._watcher: asyncio.Task | None = None
        self._applied_generation = self.store.generation

    async def start(self) -> None:
        # amqtt binds the broker to the event loop running when it is created.
        asyncio.get_running_loop().set_exception_handler(_quiet_disconnects)
        self.broker = PalierBroker(self.config)
        await self.broker.start()
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_CHECK_S)
            try:
                # A login may have reloaded the files first: compare generations, not refresh().
                self.store.refresh()
                if self.store.generation != self._applied_generation:
                    self._applied_generation = self.store.generation
                    await disconnect_revoked(self.broker, self.store)
            except (OSError, ValueError):
                logger.exception("could not apply the credential files")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await self.broker.shutdown()


async def serve(port: int, *, passwd_file: Path, acl_file: Path) -> None:
    """Run the broker until SIGTERM or SIGINT."""
    passwd_file.parent.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedBroker(port, passwd_file=passwd_file, acl_file=acl_file)
    await embedded.start()
    logger.info(
        "embedded MQTT broker listening on 127.0.0.1:%s (credentials from %s)",
        port,
        passwd_file.parent,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await embedded.stop()


def main(argv: list[str] | None = None) -> None:
    import django

    django.setup()
    from django.conf import settings

    parser = argparse.ArgumentParser(prog="palier mqtt-broker")
    parser.add_argument("--port", type=int, default=settings.EMBEDDED_MQTT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    passwd_file, acl_file = credential_paths(Path(settings.VAR_DIR))
    asyncio.run(serve(args.port, passwd_file=passwd_file, acl_file=acl_file))
