"""What the benchmark scripts share: their own database, a free port, a bridge's metrics."""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlparse

import psycopg


def ensure_database(url: str) -> None:
    """Create the bench database named by `url` if it does not exist yet."""
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on the loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """A bridge's Prometheus metrics: unlabelled samples and label-summed totals."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        name = key.split("{", 1)[0]
        values[name] = values.get(name, 0.0) + float(value)
    return values
