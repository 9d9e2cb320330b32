"""Decode rate of the MQTT contract on one core: typical telemetry messages, and a hostile mix.

Run: .venv/bin/python bench/contract_decode.py
"""

import time

import msgspec

from devices.contract import ContractError, Envelope, decode, encode, make_record, telemetry_topic

N = 200_000


def heating_message(seq: int, now: float) -> bytes:
    records = [
        make_record("room_temp", 19.5 + (seq % 7) / 10),
        make_record("room_setpoint", 20.0),
        make_record("flow_temp", 55.2),
        make_record("return_temp", 41.8),
        make_record("outdoor_temp", 4.5),
        make_record("ch_pressure", 1.45),
        make_record("flame", seq % 2 == 0),
        make_record("heat_demand", True),
        make_record("burner_starts", 12_345 + seq),
        make_record("fault_active", False),
        make_record("battery", 87.0),
        make_record("rssi", -71.0),
    ]
    return encode(Envelope(v=1, dev=f"dev-{seq % 1000:04d}", boot=3, seq=seq, ts=now, m=records))


def main() -> None:
    now = time.time()
    messages = [
        (telemetry_topic("bench-fleet", f"dev-{i % 1000:04d}"), heating_message(i, now))
        for i in range(N)
    ]
    size = sum(len(raw) for _, raw in messages) / N
    # Reference measured in the same run: plain JSON parsing into dicts, no validation at all.
    started = time.perf_counter()
    for _, raw in messages:
        msgspec.json.decode(raw)
    plain = N / (time.perf_counter() - started)
    print(f"reference, msgspec.json.decode to dicts (no checks): {plain:,.0f} msg/s")
    started = time.perf_counter()
    for topic, raw in messages:
        decode(topic, raw, now=now)
    elapsed = time.perf_counter() - started
    print(f"valid heating messages (12 records, {size:.0f} bytes): {N / elapsed:,.0f} msg/s")

    hostile = [
        (messages[0][0], b'{"v":1,"dev":"dev-0000","boot":1,"seq":1,"ts":NaN,"m":[]}'),
        (messages[0][0], b"\xff\xfe not json"),
        (messages[0][0], b'{"v":1,"dev":"other","boot":1,"seq":1,"ts":1.0,"m":[]}'),
        (messages[0][0], b"[" * 5000),
    ]
    mixed = [hostile[i % 4] if i % 10 == 0 else messages[i] for i in range(N)]
    refused = 0
    started = time.perf_counter()
    for topic, raw in mixed:
        try:
            decode(topic, raw, now=now)
        except ContractError:
            refused += 1
    elapsed = time.perf_counter() - started
    print(f"mix with 10 % hostile ({refused} refused): {N / elapsed:,.0f} msg/s")


if __name__ == "__main__":
    main()
