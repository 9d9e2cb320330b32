"""Reading storage: the hot write path, series reads, hourly aggregates and retention.

PostgreSQL: `telemetry_reading` is partitioned by UTC day on `ts`; a batch is COPYed (binary)
into a per-session staging table, then moved with INSERT ... ON CONFLICT DO NOTHING so that a
redelivered message stores nothing. Retention drops whole partitions. SQLite (embedded mode):
one plain table and the ORM.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import psycopg
from django.db import DatabaseError, connection, transaction

from devices.contract import MAX_BUFFER_AGE_S

from .models import Reading, ReadingHour
from .vocabulary import CODE_NAMES, NAME_CODES

logger = logging.getLogger(__name__)

READING_TABLE = "telemetry_reading"
STAGE_TABLE = "telemetry_reading_stage"
PARTITION_PREFIX = "telemetry_reading_p"
# Messages are partitioned by their own time; a reading may be up to this much older.
BUFFER_AGE = timedelta(seconds=MAX_BUFFER_AGE_S)

# (device pk, message time in unix microseconds, boot, sequence): a stored message's identity.
ReadingKey = tuple[int, int, int, int]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class MessageRow(NamedTuple):
    """One message to store: device pk, time (integer unix µs), boot, sequence, parallel arrays.

    A named tuple: ingest builds one per message, and a tuple is the cheapest to build.
    """

    device_id: int
    ts_us: int
    boot: int
    seq: int
    names: list[int]
    vals: list[float | None]
    offsets: list[float] | None
    texts: list[str | None] | None

    @property
    def ts(self) -> datetime:
        return utc_from_us(self.ts_us)

    @property
    def key(self) -> ReadingKey:
        return (self.device_id, self.ts_us, self.boot, self.seq)


def utc_from_us(microseconds: int) -> datetime:
    """An aware UTC datetime from integer unix microseconds (exact, unlike float seconds)."""
    return EPOCH + timedelta(microseconds=microseconds)


def us_from_utc(moment: datetime) -> int:
    """Integer unix microseconds of an aware datetime (exact)."""
    return (moment - EPOCH) // _MICROSECOND


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def pg_cursor() -> psycopg.Cursor:
    """A psycopg cursor on Django's connection (same transaction) with server-side binding:
    arrays travel as binary parameters and results can be binary. Hot paths only."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


_EPOCH_DAY = date(1970, 1, 1)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- Partitions ------------------------------------------------------------------------------

_known_days: set[date] = set()
_known_lock = threading.Lock()


def partition_name(day: date) -> str:
    return f"{PARTITION_PREFIX}{day:%Y%m%d}"


def existing_partition_days() -> set[date]:
    """The days that have a reading partition (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [READING_TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = set()
    for name in names:
        suffix = name.removeprefix(PARTITION_PREFIX)
        if len(suffix) == 8 and suffix.isdigit():
            days.add(date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:])))
    return days


def _create_partition(day: date) -> None:
    start, end = _day_start(day), _day_start(day + timedelta(days=1))
    # A savepoint, so that losing a creation race to another worker leaves the caller's
    # transaction usable.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {READING_TABLE} "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
    except DatabaseError:
        if day not in existing_partition_days():
            raise


def ensure_partitions(days: Iterable[date]) -> None:
    """Create the daily reading partitions that do not exist yet (PostgreSQL; no-op otherwise)."""
    if not is_postgresql():
        return
    wanted = set(days)
    with _known_lock:
        missing = wanted - _known_days
    if not missing:
        return
    existing = existing_partition_days()
    for day in sorted(missing - existing):
        _create_partition(day)
    with _known_lock:
        _known_days.clear()
        _known_days.update(existing | missing)


def forget_known_partitions() -> None:
    """Drop this process's cache of existing partitions (after a purge, in tests)."""
    with _known_lock:
        _known_days.clear()


# --- Writes ----------------------------------------------------------------------------------

# Staging takes the time as integer microseconds: exact, and cheap to write as text.
_STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (device_id int8, ts_us int8, "
    "boot int8, seq int8, names int2[], vals float8[], offsets float4[], texts text[]) "
    "ON COMMIT DELETE ROWS"
)
_COPY_SQL = (
    f"COPY {STAGE_TABLE} (device_id, ts_us, boot, seq, names, vals, offsets, texts) FROM STDIN"
)
# One statement empties the staging table and moves its rows: a second call in the same
# transaction never sees them again. The time comes back as integer microseconds (exact).
_MOVE_SQL = (
    f"WITH staged AS (DELETE FROM {STAGE_TABLE} RETURNING *) "  # noqa: S608 - fixed names
    "INSERT INTO telemetry_reading (device_id, ts, boot, seq, names, vals, offsets, texts) "
    "SELECT device_id, timestamptz 'epoch' + ts_us * interval '1 microsecond', boot, seq, "
    "names, vals, offsets, texts FROM staged "
    "ON CONFLICT DO NOTHING "
    "RETURNING device_id, (extract(epoch FROM ts) * 1000000)::int8, boot, seq"
)
# psycopg connections whose session already has the staging table.
_staged_sessions: weakref.WeakSet = weakref.WeakSet()


def prepare_session() -> None:
    """Create this session's staging table once, outside any transaction (PostgreSQL).

    Inside a transaction (tests) nothing is remembered: a rollback would drop the table.
    """
    if connection.in_atomic_block:
        return
    connection.ensure_connection()
    raw = connection.connection
    if raw in _staged_sessions:
        return
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_DDL)
    _staged_sessions.add(raw)


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _text_array(texts: list[str | None]) -> str:
    items = [
        "NULL" if t is None else '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for t in texts
    ]
    return _copy_escape("{" + ",".join(items) + "}")


def copy_line(row: MessageRow) -> str:
    """One staging row in COPY's text format.

    Text with the time as integer microseconds: cheaper than psycopg's binary COPY, which
    dumps every array and datetime in Python (bench/ingest_store.py measures both).
    """
    device_id, ts_us, boot, seq, names, vals, offsets, texts = row
    if None in vals:
        vals_text = ",".join(["NULL" if v is None else repr(v) for v in vals])
    else:
        vals_text = ",".join(map(repr, vals))
    offsets_text = _NULL if offsets is None else "{" + ",".join(map(repr, offsets)) + "}"
    texts_text = _NULL if texts is None else _text_array(texts)
    return (
        f"{device_id}\t{ts_us}\t{boot}\t{seq}\t{{{','.join(map(str, names))}}}\t"
        f"{{{vals_text}}}\t{offsets_text}\t{texts_text}\n"
    )


_NULL = "\\N"
_DAY_US = 86_400_000_000


def insert_messages(rows: Sequence[MessageRow]) -> set[ReadingKey]:
    """Store messages, skipping those already stored; return the keys actually inserted.

    Must run inside a transaction (the staging table empties itself at commit). On
    PostgreSQL a row whose day has no partition raises IntegrityError (sqlstate 23514): the
    caller's transaction is then lost, and the caller starts over (`ingest.ingest_batch`).
    """
    if not rows:
        return set()
    if is_postgresql():
        days = {row.ts_us // _DAY_US for row in rows}
        ensure_partitions({_EPOCH_DAY + timedelta(days=day) for day in days})
        return _copy_and_move(rows)
    return _insert_orm(rows)


def _copy_and_move(rows: Sequence[MessageRow]) -> set[ReadingKey]:
    with pg_cursor() as cursor:
        if connection.connection not in _staged_sessions:
            cursor.execute(_STAGE_DDL)
        with cursor.copy(_COPY_SQL) as copy:
            copy.write("".join([copy_line(row) for row in rows]))
        cursor.execute(_MOVE_SQL, binary=True)
        return set(cursor.fetchall())


def _insert_orm(rows: Sequence[MessageRow]) -> set[ReadingKey]:
    # SQLite runs one writer at a time (immediate transactions), so checking which keys exist
    # and then inserting the others cannot race.
    device_ids = {row.device_id for row in rows}
    start = utc_from_us(min(row.ts_us for row in rows))
    end = utc_from_us(max(row.ts_us for row in rows))
    existing = {
        (device_id, us_from_utc(ts), boot, seq)
        for device_id, ts, boot, seq in Reading.objects.filter(
            device_id__in=device_ids, ts__gte=start, ts__lte=end
        ).values_list("device_id", "ts", "boot", "seq")
    }
    fresh: dict[ReadingKey, MessageRow] = {}
    for row in rows:
        if row.key not in existing:
            fresh.setdefault(row.key, row)
    Reading.objects.bulk_create(
        [
            Reading(
                device_id=row.device_id,
                ts=row.ts,
                boot=row.boot,
                seq=row.seq,
                names=row.names,
                vals=row.vals,
                offsets=row.offsets,
                texts=row.texts,
            )
            for row in fresh.values()
        ],
        batch_size=200,
    )
    return set(fresh)


# --- Reads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a series: a time and the mean, min and max of `count` readings."""

    t: datetime
    value: float | None
    vmin: float | None
    vmax: float | None
    count: int
    text: str | None = None


def _offset(offsets: list | None, index: int) -> float:
    if not offsets or index >= len(offsets) or offsets[index] is None:
        return 0.0
    return float(offsets[index])


def raw_points(
    *, device_id: int, name: str, start: datetime, end: datetime, limit: int
) -> list[Point]:
    """Readings of one name in [start, end), oldest first, at most `limit`."""
    code = NAME_CODES[name]
    if is_postgresql():
        sql = (
            "SELECT t, v, s FROM ("
            "  SELECT r.ts + make_interval(secs => coalesce(x.o, 0)) AS t, x.v, x.s, x.n"
            "  FROM telemetry_reading r,"
            "       unnest(r.names, r.vals, r.offsets, r.texts) AS x(n, v, o, s)"
            "  WHERE r.device_id = %s AND r.ts >= %s AND r.ts < %s"
            ") q WHERE n = %s AND t >= %s AND t < %s ORDER BY t LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [device_id, start, end + BUFFER_AGE, code, start, end, limit])
            return [Point(t, v, v, v, 1, s) for t, v, s in cursor.fetchall()]
    points = []
    for reading in Reading.objects.filter(
        device_id=device_id, ts__gte=start, ts__lt=end + BUFFER_AGE
    ):
        for index, reading_code in enumerate(reading.names):
            if reading_code != code:
                continue
            t = reading.ts + timedelta(seconds=_offset(reading.offsets, index))
            if start <= t < end:
                value = reading.vals[index]
                text = reading.texts[index] if reading.texts else None
                points.append(Point(t, value, value, value, 1, text))
    points.sort(key=lambda p: p.t)
    return points[:limit]


def bucketed_raw_points(
    *, device_id: int, name: str, start: datetime, end: datetime, bucket_s: int
) -> list[Point]:
    """Readings of one name in [start, end) averaged in buckets of `bucket_s` seconds."""
    code = NAME_CODES[name]
    if is_postgresql():
        sql = (
            "SELECT to_timestamp(floor(extract(epoch FROM t) / %s) * %s) AS b,"
            "       avg(v), min(v), max(v), count(*) FROM ("
            "  SELECT r.ts + make_interval(secs => coalesce(x.o, 0)) AS t, x.v, x.n"
            "  FROM telemetry_reading r, unnest(r.names, r.vals, r.offsets) AS x(n, v, o)"
            "  WHERE r.device_id = %s AND r.ts >= %s AND r.ts < %s"
            ") q WHERE n = %s AND t >= %s AND t < %s AND v IS NOT NULL GROUP BY b ORDER BY b"
        )
        params = [bucket_s, bucket_s, device_id, start, end + BUFFER_AGE, code, start, end]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [Point(b, avg, lo, hi, n) for b, avg, lo, hi, n in cursor.fetchall()]
    points = raw_points(device_id=device_id, name=name, start=start, end=end, limit=10**9)
    return _rebucket(points, bucket_s)


def _rebucket(points: Iterable[Point], bucket_s: int) -> list[Point]:
    groups: dict[int, list[Point]] = defaultdict(list)
    for point in points:
        if point.value is not None:
            groups[math.floor(point.t.timestamp() / bucket_s)].append(point)
    merged = []
    for key in sorted(groups):
        members = groups[key]
        count = sum(p.count for p in members)
        total = sum(p.value * p.count for p in members)
        merged.append(
            Point(
                datetime.fromtimestamp(key * bucket_s, tz=UTC),
                total / count,
                min(p.vmin for p in members),
                max(p.vmax for p in members),
                count,
            )
        )
    return merged


def hourly_points(
    *, device_id: int, name: str, start: datetime, end: datetime, bucket_s: int = 3600
) -> list[Point]:
    """Hourly aggregates of one name in [start, end), merged into buckets of `bucket_s`."""
    rows = ReadingHour.objects.filter(
        device_id=device_id, name=NAME_CODES[name], hour__gte=start, hour__lt=end
    ).order_by("hour")
    points = [Point(r.hour, r.mean, r.vmin, r.vmax, r.count) for r in rows]
    if bucket_s <= 3600:
        return points
    return _rebucket(points, bucket_s)


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest reading of one name of one unit."""

    t: datetime
    value: float | None
    text: str | None


_LATEST_SQL = """
SELECT DISTINCT ON (d.id, x.n)
       d.id, x.n, r.ts + make_interval(secs => coalesce(x.o, 0)) AS t, x.v, x.s
FROM unnest(%s::int8[]) AS d(id)
CROSS JOIN LATERAL (
    SELECT * FROM telemetry_reading m
    WHERE m.device_id = d.id AND m.ts >= %s ORDER BY m.ts DESC LIMIT %s
) r
CROSS JOIN LATERAL unnest(r.names, r.vals, r.offsets, r.texts) AS x(n, v, o, s)
ORDER BY d.id, x.n, t DESC
"""


def latest_values(
    device_ids: Sequence[int], *, since: datetime, messages: int = 200
) -> dict[int, dict[str, Latest]]:
    """Per unit, the newest reading of each name among its last `messages` since `since`."""
    result: dict[int, dict[str, Latest]] = {device_id: {} for device_id in device_ids}
    if not device_ids:
        return result
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(_LATEST_SQL, [list(device_ids), since, messages])
            for device_id, code, t, value, text in cursor.fetchall():
                result[device_id][name_of(code)] = Latest(t, value, text)
        return result
    for device_id in device_ids:
        newest: dict[str, Latest] = {}
        recent = Reading.objects.filter(device_id=device_id, ts__gte=since).order_by("-ts")
        for reading in recent[:messages]:
            for index, code in enumerate(reading.names):
                t = reading.ts + timedelta(seconds=_offset(reading.offsets, index))
                name = name_of(code)
                if name not in newest or t > newest[name].t:
                    text = reading.texts[index] if reading.texts else None
                    newest[name] = Latest(t, reading.vals[index], text)
        result[device_id] = newest
    return result


# --- Aggregates ------------------------------------------------------------------------------

_RECOMPUTE_SQL = """
INSERT INTO telemetry_readinghour (device_id, name, hour, vmin, vmax, vsum, count)
SELECT q.device_id, q.n, date_trunc('hour', q.t), min(q.v), max(q.v), sum(q.v), count(*)
FROM (
    SELECT r.device_id, x.n, x.v, r.ts + make_interval(secs => coalesce(x.o, 0)) AS t, d.since
    FROM unnest(%s::int8[], %s::timestamptz[]) AS d(device_id, since)
    JOIN telemetry_reading r ON r.device_id = d.device_id AND r.ts >= d.since
    CROSS JOIN LATERAL unnest(r.names, r.vals, r.offsets) AS x(n, v, o)
) q
WHERE q.v IS NOT NULL AND q.t >= q.since
GROUP BY q.device_id, q.n, date_trunc('hour', q.t)
ON CONFLICT (device_id, name, hour) DO UPDATE SET
    vmin = EXCLUDED.vmin, vmax = EXCLUDED.vmax, vsum = EXCLUDED.vsum, count = EXCLUDED.count
"""


def recompute_hours(dirty: dict[int, datetime]) -> None:
    """Recompute every hourly aggregate from `since` onwards, per device {device pk: since}.

    Exact and idempotent: messages are stored by their own time and a reading is never newer
    than its message, so the messages from `since` on hold every reading from `since` on.
    """
    if not dirty:
        return
    if is_postgresql():
        ids = list(dirty)
        with connection.cursor() as cursor:
            cursor.execute(_RECOMPUTE_SQL, [ids, [dirty[i] for i in ids]])
        return
    for device_id, since in dirty.items():
        groups: dict[tuple[int, datetime], list[float]] = defaultdict(list)
        for reading in Reading.objects.filter(device_id=device_id, ts__gte=since):
            for index, code in enumerate(reading.names):
                value = reading.vals[index]
                t = reading.ts + timedelta(seconds=_offset(reading.offsets, index))
                if value is not None and t >= since:
                    groups[(code, t.replace(minute=0, second=0, microsecond=0))].append(value)
        ReadingHour.objects.filter(device_id=device_id, hour__gte=since).delete()
        ReadingHour.objects.bulk_create(
            ReadingHour(
                device_id=device_id,
                name=code,
                hour=hour,
                vmin=min(values),
                vmax=max(values),
                vsum=sum(values),
                count=len(values),
            )
            for (code, hour), values in groups.items()
        )


# --- Retention -------------------------------------------------------------------------------


def _delete_chunked(table: str, column: str, cutoff: datetime, chunk: int) -> int:
    """DELETE rows older than `cutoff` a chunk at a time, so that locks stay short."""
    key = "ctid" if is_postgresql() else "rowid"
    param = cutoff if is_postgresql() else connection.ops.adapt_datetimefield_value(cutoff)
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608 - names from this module
                f"(SELECT {key} FROM {table} WHERE {column} < %s LIMIT %s)",
                [param, chunk],
            )
            count = cursor.rowcount
        deleted += count
        if count < chunk:
            return deleted


def purge_readings(cutoff: datetime, *, chunk: int = 10_000) -> int:
    """Delete messages older than `cutoff`; return what went.

    PostgreSQL drops whole day partitions (instant, no vacuum) and returns how many; SQLite
    deletes rows in chunks and returns how many.
    """
    if not is_postgresql():
        return _delete_chunked(READING_TABLE, "ts", cutoff, chunk)
    dropped = 0
    for day in sorted(existing_partition_days()):
        if _day_start(day + timedelta(days=1)) <= cutoff:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
            dropped += 1
    forget_known_partitions()
    return dropped


def purge_hours(cutoff: datetime, *, chunk: int = 50_000) -> int:
    """Delete hourly aggregates older than `cutoff`, in chunks."""
    return _delete_chunked("telemetry_readinghour", "hour", cutoff, chunk)


def delete_device_readings(*, device_ids: Sequence[int], start: datetime, end: datetime) -> int:
    """Erase the stored messages and aggregates of some units in [start, end); return rows."""
    messages, _ = Reading.objects.filter(
        device_id__in=device_ids, ts__gte=start, ts__lt=end
    ).delete()
    hours, _ = ReadingHour.objects.filter(
        device_id__in=device_ids, hour__gte=start, hour__lt=end
    ).delete()
    return messages + hours


def name_of(code: int) -> str:
    return CODE_NAMES.get(code, str(code))
