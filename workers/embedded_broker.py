"""The embedded MQTT broker (amqtt) used by `palier run`, so no Mosquitto is needed.

It listens on its own port (1884 by default) so it never collides with a real Mosquitto.
"""

import argparse
import asyncio
import contextlib
import logging
import signal

from amqtt.broker import Broker
from django.conf import settings

logger = logging.getLogger("palier.mqtt_broker")


def broker_config(port: int) -> dict:
    """amqtt configuration: one TCP listener on loopback."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def serve(port: int) -> None:
    """Run the broker until SIGTERM or SIGINT."""
    broker = Broker(broker_config(port))
    await broker.start()
    logger.info("embedded MQTT broker listening on 127.0.0.1:%s", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await broker.shutdown()


def main(argv: list[str] | None = None) -> None:
    import django

    django.setup()
    parser = argparse.ArgumentParser(prog="palier mqtt-broker")
    parser.add_argument("--port", type=int, default=settings.EMBEDDED_MQTT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    asyncio.run(serve(args.port))
