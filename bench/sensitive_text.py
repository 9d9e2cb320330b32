"""The sensitive free-text warning on the sample notes: recall, precision, the misses and
false alarms, and how long a note takes to check.

Run: .venv/bin/python bench/sensitive_text.py [--show]
"""

import argparse
import csv
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")

import django  # noqa: E402

django.setup()

from api.core.sensitive_text import sensitive_text_findings, word_list  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "sensitive_notes.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    word_list()
    started = time.perf_counter()
    results = [(row, sensitive_text_findings(row["text"])) for row in rows]
    elapsed = time.perf_counter() - started
    sensitive = [(row, found) for row, found in results if row["label"] != "none"]
    flagged = [(row, found) for row, found in results if found]
    hits = [(row, found) for row, found in sensitive if found]
    right = [(row, found) for row, found in hits if row["label"] in {f.category for f in found}]
    labels = dict(Counter(row["label"] for row in rows))
    print(f"notes: {len(rows)} ({len(sensitive)} sensitive), {labels}")
    print(f"recall: {len(hits) / len(sensitive):.1%} ({len(hits)}/{len(sensitive)})")
    print(f"precision: {len(hits) / len(flagged):.1%} ({len(hits)}/{len(flagged)})")
    print(f"right category: {len(right)}/{len(hits)}")
    print(f"check time: {elapsed / len(rows) * 1e6:.0f} µs a note")
    if args.show:
        for row, found in results:
            if bool(found) != (row["label"] != "none"):
                what = [(f.category, f.excerpt) for f in found]
                print(f"  {'MISS' if not found else 'FALSE'} {row['label']}: {row['text']} {what}")


if __name__ == "__main__":
    main()
