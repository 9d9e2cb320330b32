"""Reading storage on PostgreSQL: write rate and bytes per message of the layouts considered.

Layouts, each written the way ingest writes (COPY into a staging table, then INSERT ...
ON CONFLICT DO NOTHING into a day-partitioned table, one transaction per 500-message batch):

  message-arrays   one row per message: (device, ts, boot, seq, names int2[], vals float8[])
                   — the layout Palier uses, text COPY as ingest writes it
  arrays-binary    the same, binary COPY (psycopg dumps each array in Python)
  message-jsonb    one row per message: (device, ts, boot, seq, body jsonb {name: value})
  reading-rows     one row per reading: (device, ts, boot, seq, idx, name int2, value float8)

For each: messages/s and rows/s written, messages/s for a replay (every message a duplicate),
bytes stored per message (heap + indexes + TOAST), and the time to read one unit's day of one
name. Then the real ingest service (decoding task bodies as a worker receives them, then
api.telemetry.ingest.ingest_batch: device locks, state,
events) on the chosen layout.

Run:  .venv/bin/python bench/ingest_store.py [--messages 100000] [--devices 2000]
      (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/palier_bench_store,
      is created if missing and emptied of its bench tables afterwards)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import msgspec
import psycopg
from harness import ensure_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devices.contract import (
    HEATING_VOCABULARY,
    VALUE_BOUNDS,
    VENTILATION_VOCABULARY,
    VOCABULARY,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/palier_bench_store"
BATCH = 500
HEATING = [*HEATING_VOCABULARY, "battery", "rssi"]
VENTILATION = [*VENTILATION_VOCABULARY, "battery", "rssi"]
CODES = {name: i for i, name in enumerate(sorted({*HEATING, *VENTILATION}), start=1)}


def make_messages(count: int, devices: int, day: datetime) -> list[dict]:
    """Messages as the bridge hands them over: 2/3 heating (13 readings), 1/3 VMC (8)."""
    rng = random.Random(7)
    seqs = [0] * devices
    messages = []
    start = day.timestamp() + 3600
    for i in range(count):
        device = i % devices
        seqs[device] += 1
        names = HEATING if device % 3 else VENTILATION
        records = []
        for name in names:
            unit, field = VOCABULARY[name]
            if field == "vs":
                records.append({"n": name, "vs": "E0"})
            elif field == "vb":
                records.append({"n": name, "vb": rng.random() < 0.3})
            else:
                low, high = VALUE_BOUNDS.get(name, (0.0, 100.0))
                value = round(rng.uniform(max(low, -100.0), min(high, 100.0)), 2)
                records.append({"n": name, "u": unit, "v": value})
        messages.append(
            {
                "device": device + 1,
                "boot": 1,
                "seq": seqs[device],
                "ts": start + i * (60.0 * devices / count),
                "m": records,
            }
        )
    return messages


def _value(record: dict) -> float | None:
    if "v" in record:
        return record["v"]
    if "vb" in record:
        return 1.0 if record["vb"] else 0.0
    return None


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _text_array(texts: list) -> str:
    items = ["NULL" if t is None else '"' + t.replace('"', '\\"') + '"' for t in texts]
    return _copy_escape("{" + ",".join(items) + "}")


class Layout:
    name = ""
    create = ""
    columns = ""
    # Text COPY: one line per row; binary COPY: tuples with these types.
    binary_types: list[str] | None = None
    # Staging columns and the SELECT that moves them (default: the table's own columns).
    stage_columns: str | None = None
    move_select = "*"

    def lines(self, message: dict) -> str:
        raise NotImplementedError

    def rows(self, message: dict):
        raise NotImplementedError

    def series_sql(self) -> str:
        raise NotImplementedError


class MessageArrays(Layout):
    """The layout Palier uses, written as ingest writes it (text COPY)."""

    name = "message-arrays"
    create = (
        "CREATE TABLE {t} (device_id int8 NOT NULL, ts timestamptz NOT NULL, boot int8 NOT NULL,"
        " seq int8 NOT NULL, names int2[] NOT NULL, vals float8[] NOT NULL, offsets float4[],"
        " texts text[], PRIMARY KEY (device_id, ts, boot, seq)) PARTITION BY RANGE (ts)"
    )
    columns = "device_id, ts_us, boot, seq, names, vals, offsets, texts"
    stage_columns = (
        "device_id int8, ts_us int8, boot int8, seq int8, names int2[], vals float8[], "
        "offsets float4[], texts text[]"
    )
    move_select = (
        "device_id, timestamptz 'epoch' + ts_us * interval '1 microsecond', boot, seq, names, "
        "vals, offsets, texts"
    )

    def lines(self, m):
        records = m["m"]
        texts = [r.get("vs") for r in records]
        vals = ",".join(["NULL" if (v := _value(r)) is None else repr(v) for r in records])
        names = ",".join([str(CODES[r["n"]]) for r in records])
        text_field = _text_array(texts) if any(texts) else "\\N"
        ts_us = round(m["ts"] * 1_000_000)
        return (
            f"{m['device']}\t{ts_us}\t{m['boot']}\t{m['seq']}\t{{{names}}}\t{{{vals}}}\t"
            f"\\N\t{text_field}\n"
        )

    def series_sql(self):
        return (
            "SELECT r.ts, x.v FROM {t} r, unnest(r.names, r.vals) AS x(n, v) "
            "WHERE r.device_id = %s AND x.n = %s ORDER BY r.ts"
        )


class MessageArraysBinary(MessageArrays):
    """The same table written with psycopg's binary COPY (arrays dumped by psycopg)."""

    name = "arrays-binary"
    columns = "device_id, ts, boot, seq, names, vals, offsets, texts"
    stage_columns = None
    move_select = "*"
    binary_types = [
        "int8",
        "timestamptz",
        "int8",
        "int8",
        "int2[]",
        "float8[]",
        "float4[]",
        "text[]",
    ]

    def rows(self, m):
        records = m["m"]
        texts = [r.get("vs") for r in records]
        yield (
            m["device"],
            datetime.fromtimestamp(m["ts"], tz=UTC),
            m["boot"],
            m["seq"],
            [CODES[r["n"]] for r in records],
            [_value(r) for r in records],
            None,
            texts if any(texts) else None,
        )


class MessageJsonb(Layout):
    name = "message-jsonb"
    create = (
        "CREATE TABLE {t} (device_id int8 NOT NULL, ts timestamptz NOT NULL, boot int8 NOT NULL,"
        " seq int8 NOT NULL, body jsonb NOT NULL, PRIMARY KEY (device_id, ts, boot, seq))"
        " PARTITION BY RANGE (ts)"
    )
    columns = "device_id, ts, boot, seq, body"

    def lines(self, m):
        body = {r["n"]: r.get("v", r.get("vb", r.get("vs"))) for r in m["m"]}
        ts = datetime.fromtimestamp(m["ts"], tz=UTC).isoformat()
        encoded = _copy_escape(json.dumps(body, separators=(",", ":")))
        return f"{m['device']}\t{ts}\t{m['boot']}\t{m['seq']}\t{encoded}\n"

    def series_sql(self):
        return "SELECT ts, (body ->> %s)::float8 FROM {t} WHERE device_id = %s ORDER BY ts"


class ReadingRows(Layout):
    name = "reading-rows"
    create = (
        "CREATE TABLE {t} (device_id int8 NOT NULL, ts timestamptz NOT NULL, boot int8 NOT NULL,"
        " seq int8 NOT NULL, idx int2 NOT NULL, name int2 NOT NULL, value float8, text text,"
        " PRIMARY KEY (device_id, ts, boot, seq, idx)) PARTITION BY RANGE (ts)"
    )
    columns = "device_id, ts, boot, seq, idx, name, value, text"

    def lines(self, m):
        ts = datetime.fromtimestamp(m["ts"], tz=UTC).isoformat()
        head = f"{m['device']}\t{ts}\t{m['boot']}\t{m['seq']}\t"
        out = []
        null = "\\N"
        for idx, r in enumerate(m["m"]):
            value = _value(r)
            text = r.get("vs")
            value_field = null if value is None else repr(value)
            text_field = null if text is None else _copy_escape(text)
            out.append(f"{head}{idx}\t{CODES[r['n']]}\t{value_field}\t{text_field}\n")
        return "".join(out)

    def series_sql(self):
        return "SELECT ts, value FROM {t} WHERE device_id = %s AND name = %s ORDER BY ts"


def write(conn, layout: Layout, table: str, messages: list[dict]) -> tuple[float, int, int]:
    """Store the messages in batches; return (seconds, rows sent, rows inserted)."""
    stage = f"{table}_stage"
    sent = inserted = 0
    started = time.perf_counter()
    for offset in range(0, len(messages), BATCH):
        batch = messages[offset : offset + BATCH]
        with conn.transaction(), conn.cursor() as cur:
            definition = layout.stage_columns or f"LIKE {table}"
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({definition}) ON COMMIT DELETE ROWS"
            )
            if layout.binary_types:
                sql = f"COPY {stage} ({layout.columns}) FROM STDIN (FORMAT BINARY)"
                with cur.copy(sql) as copy:
                    copy.set_types(layout.binary_types)
                    for message in batch:
                        for row in layout.rows(message):
                            copy.write_row(row)
            else:
                text = "".join([layout.lines(message) for message in batch])
                with cur.copy(f"COPY {stage} ({layout.columns}) FROM STDIN") as copy:
                    copy.write(text)
            cur.execute(
                f"INSERT INTO {table} SELECT {layout.move_select} FROM {stage} "  # noqa: S608
                "ON CONFLICT DO NOTHING"
            )
            inserted += cur.rowcount
            cur.execute(f"SELECT count(*) FROM {stage}")  # noqa: S608 - bench tables
            sent += cur.fetchone()[0]
    return time.perf_counter() - started, sent, inserted


def measure_layout(conn, layout: Layout, messages: list[dict], day: datetime) -> dict:
    table = f"bench_{layout.name.replace('-', '_')}"
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        cur.execute(layout.create.format(t=table))
        end = datetime.fromtimestamp(day.timestamp() + 2 * 86_400, tz=UTC)
        cur.execute(
            f"CREATE TABLE {table}_p PARTITION OF {table} "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{end.isoformat()}')"
        )
    seconds, sent, inserted = write(conn, layout, table, messages)
    replay = messages[-len(messages) // 5 :]
    replay_seconds, _, replay_inserted = write(conn, layout, table, replay)
    assert replay_inserted == 0, "a replay must store nothing"
    with conn.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {table}_p")
        cur.execute(f"SELECT pg_total_relation_size('{table}_p')")
        size = cur.fetchone()[0]
        sql = layout.series_sql().format(t=table)
        params = ["room_temp", 2] if layout.name == "message-jsonb" else [2, CODES["room_temp"]]
        started = time.perf_counter()
        for _ in range(20):
            cur.execute(sql, params)
            points = len(cur.fetchall())
        series_ms = (time.perf_counter() - started) / 20 * 1000
        cur.execute(f"DROP TABLE {table} CASCADE")
    return {
        "layout": layout.name,
        "msg_s": len(messages) / seconds,
        "rows_s": sent / seconds,
        "rows": inserted,
        "replay_msg_s": len(replay) / replay_seconds,
        "bytes_msg": size / len(messages),
        "series_ms": series_ms,
        "series_points": points,
    }


def measure_service(
    url: str,
    messages: list[dict],
    devices: int,
    *,
    profile: str | None = None,
    without_faults: bool = False,
) -> dict:
    """The ingest service itself (device locks, state, events) on the chosen layout.

    `devices` matters: a 500-message batch updates up to 500 device rows, and how often the
    same table pages are rewritten decides whether PostgreSQL can update them in place.
    """
    # A fresh database of its own: other apps' rows (cascades) never get in the way.
    parsed = urlparse(url)
    name = parsed.path.lstrip("/") + "_service"
    with psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(parsed._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from api.estate.models import (
        Agency,
        Building,
        Dwelling,
        Entrance,
        Equipment,
        Organisation,
        Residence,
    )
    from api.telemetry import hooks
    from api.telemetry.batch import decode_body, encode_body, item_from_decoded
    from api.telemetry.ingest import ingest_batch
    from api.telemetry.models import Device
    from devices import contract

    if without_faults:
        hooks.on_readings_stored = lambda device_ids, readings: None

    call_command("migrate", verbosity=0)
    org, _ = Organisation.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    agency, _ = Agency.objects.get_or_create(organisation=org, name="Bench")
    residence, _ = Residence.objects.get_or_create(
        organisation=org, agency=agency, reference="BENCH", defaults={"name": "Bench"}
    )
    building, _ = Building.objects.get_or_create(
        organisation=org, residence=residence, reference="B"
    )
    entrance, _ = Entrance.objects.get_or_create(organisation=org, building=building, reference="A")
    dwellings = Dwelling.objects.bulk_create(
        Dwelling(organisation=org, entrance=entrance, reference=f"BENCH-{n}")
        for n in range(1, devices + 1)
    )
    equipment = Equipment.objects.bulk_create(
        Equipment(organisation=org, kind="individual_boiler", dwelling=dwelling)
        for dwelling in dwellings
    )
    rows = [
        Device(
            device_id=f"hx-bench{n:06d}",
            organisation=org,
            kind="heating",
            equipment=equipment[n - 1],
            password_hash="$7$1$x$y",  # noqa: S106 - never used to connect
        )
        for n in range(1, devices + 1)
    ]
    by_number = {d.device_id: d for d in Device.objects.bulk_create(rows)}
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE telemetry_device")
    now = time.time()
    items = []
    for index, m in enumerate(messages):
        # As the bridge hands them over: checked by the contract, then an IngestItem.
        device_id = f"hx-bench{m['device']:06d}"
        ts = now - 3600 + index * 3600 / len(messages)
        topic = f"dt/bench/{device_id}/telemetry"
        payload = {"v": 1, "dev": device_id, "boot": 1, "seq": m["seq"], "ts": ts, "m": m["m"]}
        decoded = contract.decode(topic, msgspec.json.encode(payload), now=now)
        items.append(item_from_decoded(topic, decoded, ts + 0.05, False))
    assert len(by_number) == devices
    # Each unit's first message announces it online (an event): steady state comes after.
    warm, items = items[:devices], items[devices:]
    for offset in range(0, len(warm), BATCH):
        ingest_batch(warm[offset : offset + BATCH])
    # The task bodies as a worker receives them; decoding them is part of the measured work.
    bodies = [
        encode_body(((items[offset : offset + BATCH],), {}, {}))
        for offset in range(0, len(items), BATCH)
    ]
    count = len(items)
    replay = bodies[-len(bodies) // 5 :]
    # A worker holds only the batch at hand: the structs built here would make every full
    # collection of the collector walk them, which no worker pays. Workers freeze what they
    # start with (workers.celery_app); so does this process.
    del items, warm, messages
    gc.collect()
    gc.freeze()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        ingest_batch(decode_body(body)[0][0])
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    started = time.perf_counter()
    for body in replay:
        result = ingest_batch(decode_body(body)[0][0])
        assert result.stored == 0
    replay_seconds = time.perf_counter() - started
    connection.close()
    with psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "msg_s": count / seconds,
        "cpu_us": cpu / count * 1e6,
        "replay_msg_s": len(replay) * BATCH / replay_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--service-devices", type=int, default=10_000)
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--service-only", action="store_true", help="skip the layouts")
    parser.add_argument("--profile", help="cProfile the service run into this file")
    parser.add_argument(
        "--without-faults",
        action="store_true",
        help="leave fault evaluation (hooks.on_readings_stored) out: the write path alone",
    )
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    day = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    messages = make_messages(args.messages, args.devices, day)
    readings = sum(len(m["m"]) for m in messages)
    print(
        f"{args.messages} messages from {args.devices} units, {readings / args.messages:.1f} "
        f"readings per message, batches of {BATCH}, PostgreSQL at {urlparse(url).hostname}"
    )
    print(
        f"{'layout':<16}{'msg/s':>10}{'rows/s':>11}{'replay msg/s':>14}"
        f"{'bytes/msg':>11}{'series ms':>11}"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for layout in (
            ()
            if args.service_only
            else (MessageArrays(), MessageArraysBinary(), MessageJsonb(), ReadingRows())
        ):
            r = measure_layout(conn, layout, messages, day)
            print(
                f"{r['layout']:<16}{r['msg_s']:>10,.0f}{r['rows_s']:>11,.0f}"
                f"{r['replay_msg_s']:>14,.0f}{r['bytes_msg']:>11,.0f}{r['series_ms']:>11.1f}"
            )
    if not args.skip_service:
        fleet = make_messages(args.messages, args.service_devices, day)
        r = measure_service(
            url,
            fleet,
            args.service_devices,
            profile=args.profile,
            without_faults=args.without_faults,
        )
        print(
            f"ingest service ({args.service_devices} units; locks, device state, events): "
            f"{r['msg_s']:,.0f} msg/s ({r['cpu_us']:.0f} µs of the process's CPU per message), "
            f"replay {r['replay_msg_s']:,.0f} msg/s; load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
