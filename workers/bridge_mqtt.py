"""The bridge's MQTT client: paho-mqtt 2 with a receive path that decodes PUBLISH packets in bulk.

Stock paho reads a QoS 1 message with three or four `recv` calls, builds a `Properties` object
and an `MQTTMessage` for it, and writes each PUBACK with its own `send`: on this hardware that
caps one subscriber near 6,000 messages/s under MQTT 5. Here one `recv` of up to 256 KiB is
split into packets in a tight loop; PUBLISH packets (the hot path) are decoded inline and handed
over as one list, and the PUBACKs of a whole batch leave in one write. Every other packet
(CONNACK, SUBACK, PINGRESP, DISCONNECT...) still goes through paho's own handlers, and paho keeps
the connection, keepalive, reconnection and session logic.

The fast path uses a few paho internals; `BulkClient.fast_path` is False, and the stock (slower
but equivalent) paths are used, if a future paho lacks any of them.
"""

from __future__ import annotations

import logging
import ssl
import struct
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

logger = logging.getLogger("palier.bridge")

PUBLISH = 0x30
PUBACK = 0x40
RECV_BYTES = 256 * 1024

# (topic, payload, packet id, qos, retained) for each PUBLISH received, in arrival order.
Message = tuple[str, bytes, int, int, bool]
PublishHandler = Callable[[list[Message]], None]

_INTERNALS = (
    "_sock",
    "_in_packet",
    "_packet_handle",
    "_loop_rc_handle",
    "_packet_queue",
    "_msgtime_mutex",
    "_last_bytes_received",
    "_call_socket_register_write",
    "_protocol",
)


def _fresh_in_packet() -> dict:
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


class BulkClient(mqtt.Client):
    """A manual-ack paho client that delivers PUBLISH packets in lists and acks them in bulk."""

    def __init__(self, *, client_id: str, protocol: int, on_publishes: PublishHandler) -> None:
        clean = None if protocol == mqtt.MQTTv5 else False
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=clean,
            manual_ack=True,
        )
        self._on_publishes = on_publishes
        self._rbuf = b""
        self._rbuf_sock: object = None
        self.fast_path = all(hasattr(self, name) for name in _INTERNALS)
        if not self.fast_path:
            logger.warning("paho internals changed: using the stock (slower) receive path")
            self.on_message = self._stock_on_message

    def _stock_on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage):
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "\ufffd"
        self._deliver([(topic, msg.payload, msg.mid, msg.qos, bool(msg.retain))])

    def _deliver(self, messages: list[Message]) -> None:
        try:
            self._on_publishes(messages)
        except Exception:
            # Unacknowledged, these messages come back with the next session resumption.
            logger.exception("the bridge failed to take %d messages", len(messages))

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages, in this order, with one write."""
        if not mids:
            return
        if not self.fast_path:
            for mid in mids:
                self.ack(mid, 1)
            return
        # PUBACK with success and no properties is 4 bytes in MQTT 3.1.1 and 5:
        # 0x40, remaining length 2, packet id (MQTT 5, 3.4.2.1).
        blob = struct.pack(f">{len(mids)}I", *[0x40020000 | mid for mid in mids])
        self._packet_queue(PUBACK, blob, 0, 0)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read what the socket has (up to 256 KiB) and handle every complete packet in it."""
        if not self.fast_path:
            return super().loop_read(max_packets)
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if sock is not self._rbuf_sock:
            self._rbuf, self._rbuf_sock = b"", sock
        try:
            chunk = sock.recv(RECV_BYTES)
        except (BlockingIOError, ssl.SSLWantReadError):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except ssl.SSLWantWriteError:
            self._call_socket_register_write()
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not chunk:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        buf = self._rbuf + chunk if self._rbuf else chunk
        try:
            rc, consumed = self._split(buf, sock)
        except (IndexError, MalformedPacket):
            rc, consumed = MQTTErrorCode.MQTT_ERR_PROTOCOL, len(buf)
        if rc:
            self._rbuf = b""
            return self._loop_rc_handle(rc)
        self._rbuf = buf[consumed:]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _split(self, buf: bytes, sock: object) -> tuple[MQTTErrorCode, int]:
        """Handle the complete packets at the start of `buf`; return how many bytes they took."""
        end = len(buf)
        pos = 0
        v5 = self._protocol == mqtt.MQTTv5
        messages: list[Message] = []
        append = messages.append
        while pos + 2 <= end:
            header = buf[pos]
            length = 0
            shift = 0
            i = pos + 1
            complete = False
            while i < end:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                i += 1
                if byte < 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL, pos
            if not complete or i + length > end:
                break  # incomplete: wait for more bytes
            stop = i + length
            if header & 0xF0 == PUBLISH:
                qos = (header >> 1) & 0x03
                if qos == 3:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL, pos
                p = i + 2 + ((buf[i] << 8) | buf[i + 1])
                topic = buf[i + 2 : p].decode("utf-8", "replace")
                mid = 0
                if qos:
                    mid = (buf[p] << 8) | buf[p + 1]
                    p += 2
                if v5:
                    # Skip the properties (a device may send a content type or user properties).
                    plen = 0
                    shift = 0
                    while True:
                        byte = buf[p]
                        p += 1
                        plen |= (byte & 0x7F) << shift
                        if byte < 0x80:
                            break
                        shift += 7
                    p += plen
                if p > stop:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL, pos
                append((topic, buf[p:stop], mid, qos, bool(header & 0x01)))
            else:
                if messages:
                    self._deliver(messages)
                    messages = []
                    append = messages.append
                rc = self._handle_other(header, buf[i:stop], length)
                if rc or self._sock is not sock:
                    return rc, stop
            pos = stop
        if messages:
            self._deliver(messages)
        return MQTTErrorCode.MQTT_ERR_SUCCESS, pos

    def _handle_other(self, header: int, body: bytes, length: int) -> MQTTErrorCode:
        """Any packet but PUBLISH: paho's own handler, as if paho had read it."""
        packet = _fresh_in_packet()
        packet.update(
            command=header,
            have_remaining=1,
            remaining_length=length,
            packet=bytearray(body),
        )
        self._in_packet = packet
        try:
            return self._packet_handle()
        except MalformedPacket:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = _fresh_in_packet()
