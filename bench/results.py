"""bench/results.json: every figure a bench run measured, beside its baseline from the same run,
and the table the README shows (rendered from it, never typed: tests/test_docs.py compares the
two). Each bench script records its rows; `make bench` starts a new file and renders the table
last, so the table is one run's output.

    .venv/bin/python bench/results.py new        # start bench/results.json afresh
    .venv/bin/python bench/results.py render     # rewrite the table in README.md
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
REFERENCE = ROOT / "README.md"
START, END = "<!-- bench:start (bench/results.py render) -->", "<!-- bench:end -->"


def load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": {}}


def record(case: str, checker, baseline, baseline_name: str, target: str = "", unit: str = "s") -> None:
    """One row: checker's figure and its baseline's, in `unit` (seconds unless said); each a number
    or the list of its runs (then the median, and for checker the range when runs differ by more
    than 10 %). Written at once: a bench stopped half-way keeps what it measured."""
    checker_runs = checker if isinstance(checker, list) else [checker]
    checker, baseline = statistics.median(checker_runs), statistics.median(baseline if isinstance(baseline, list) else [baseline])
    low, high = min(checker_runs), max(checker_runs)
    results = load()
    results["machine"] = f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    results["rows"][case] = {"checker": round(checker, 3), "baseline": round(baseline, 3),
                             "baseline_name": baseline_name, "ratio": round(checker / baseline, 2) if baseline else None,
                             "target": target, "unit": unit,
                             "spread": f"{low:.2f}-{high:.2f}" if low and high / low > 1.1 else ""}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def render(results: dict) -> str:
    """The markdown table of `results`, one row a case, in the order they were measured."""
    lines = [START, f"Measured by `make bench` on {results.get('machine', 'this machine')}:", "",
             "| case | checker | baseline | ratio | target |", "|---|---|---|---|---|"]
    for case, row in results["rows"].items():
        unit = row.get("unit", "s")
        spread = f" ({row['spread']} {unit})" if row.get("spread") else ""
        lines.append(f"| {case} | {row['checker']:.2f} {unit}{spread} | {row['baseline_name']} {row['baseline']:.2f} {unit} | "
                     f"{row['ratio']:.2f} | {row['target'] or ''} |")
    lines.append(END)
    return "\n".join(lines)


def table_in(text: str) -> str:
    """The rendered table as a document holds it (between the markers), or ""."""
    if START not in text or END not in text:
        return ""
    return text[text.index(START):text.index(END) + len(END)]


def write_table() -> None:
    text = REFERENCE.read_text()
    table = render(load())
    old = table_in(text)
    REFERENCE.write_text(text.replace(old, table) if old else text.replace("## Performance\n", f"## Performance\n\n{table}\n", 1))


if __name__ == "__main__":
    if sys.argv[1:] == ["render"]:
        write_table()
    elif sys.argv[1:] == ["new"]:
        RESULTS.write_text(json.dumps({"rows": {}}, indent=2) + "\n")
    else:
        sys.exit(__doc__)
