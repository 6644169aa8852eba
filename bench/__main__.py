"""`python -m bench [name ...]`: run the benchmarks and print every figure against its goal.

Names: start, pages, search, intent, memory, weight, executable, lighthouse, staff (default: all).
"""
import importlib
import sys
import time
import traceback

from bench.common import load_note, print_table

BENCHES = ["start", "pages", "search", "intent", "memory", "weight", "executable", "lighthouse", "staff"]


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
            found = importlib.import_module(f"bench.bench_{name}").run()
        except Exception:  # noqa: BLE001 - one broken benchmark should not hide the others' figures
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
