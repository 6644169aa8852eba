"""`python -m bench [name ...]`: run the benchmarks and print every figure against its goal.

Names: start, pages, search, intent, memory, weight, executable (default: all).
"""
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench.common import Figure, load_note

BENCHES = ["start", "pages", "search", "intent", "memory", "weight", "executable"]


def print_table(figures, out=print):
    """A Markdown table: figure, measured, goal, ok/MISS, how."""
    rows = [["figure", "measured", "goal", "", "how"]] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for n, r in enumerate(rows):
        out("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if n == 0:
            out("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _executable():
    """The executable's figures come from bench/bench_executable.py (issue #3), when it exists."""
    if not (Path(__file__).parent / "bench_executable.py").is_file():
        return [Figure("executable (bench/bench_executable.py not present yet)", float("nan"), "", None)]
    module = importlib.import_module("bench.bench_executable")
    result = module.run()
    return [f if isinstance(f, Figure) else Figure(*f) for f in (result or [])]


def main(argv):
    names = argv or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    figures, failed = [], []
    for name in names:
        started = time.perf_counter()
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        try:
            found = _executable() if name == "executable" else importlib.import_module(f"bench.bench_{name}").run()
        except Exception:  # one broken benchmark should not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            continue
        figures += found
        print(f"[bench] {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print_table(figures)
    print(f"\n{load_note()} (2 cores); python -m bench {' '.join(names)}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed or any(f.ok is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
