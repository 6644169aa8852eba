"""Headless start: from spawning `python -m kiosk --headless` to the first 200 on the home page.

The clock starts before the process is spawned, so interpreter start, imports, catalog load, ledger
set-up and the first page render all count. "Fresh" is a new, empty data folder (the ledger and the
stock table are created); "warm" is a data folder the kiosk has already used with the same catalog.
"""
import http.client
import os
import shutil
import subprocess
import sys
import time

from bench.common import LOCAL, PYTHON, ROOT, Figure, free_port, kiosk_env, median, scratch_dir
from bench.make_catalog import catalog_path

GOAL_S = 0.4


def first_200(catalog, data_dir, timeout=30, cpu=None):
    """Seconds from spawn to the first 200 for GET /; appends the process's CPU seconds to `cpu`."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-m", "kiosk", "--headless", "--port", str(port)], cwd=ROOT,
                            env=kiosk_env(catalog, data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - start < timeout:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                conn.request("GET", "/", headers=LOCAL)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    return time.perf_counter() - start
                raise RuntimeError(f"home page answered {response.status}")
            except ConnectionRefusedError:
                if proc.poll() is not None:
                    raise RuntimeError(f"the kiosk exited: {proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.002)
            finally:
                conn.close()
        raise RuntimeError("no answer from the kiosk")
    finally:
        proc.terminate()
        # wait4 gives the CPU the kiosk used (user + system): on a busy machine the wall clock also
        # counts waiting for a core. It stopped right after the first page, so little else is in it.
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        if cpu is not None:
            cpu.append(usage.ru_utime + usage.ru_stime)


def run(runs=7, size=10_000):
    """Median start times with a fresh and with a warm data folder."""
    catalog = catalog_path(size)
    tmp = scratch_dir("start")
    try:
        first_200(catalog, tmp / "prime")  # the first spawn also fills the OS file cache; not counted
        fresh_cpu, warm_cpu = [], []
        fresh = [first_200(catalog, tmp / f"fresh-{i}" / "data", cpu=fresh_cpu) for i in range(runs)]
        warm_dir = tmp / "warm" / "data"
        first_200(catalog, warm_dir)
        warm = [first_200(catalog, warm_dir, cpu=warm_cpu) for _ in range(runs)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    detail = f"{size // 1000}k titles, median of {runs}"
    return [Figure("headless start → first 200, fresh data folder", median(fresh), "s", GOAL_S,
                   f"{detail}; min {min(fresh):.3f}; CPU median {median(fresh_cpu):.3f} s"),
            Figure("headless start → first 200, warm data folder", median(warm), "s", GOAL_S,
                   f"{detail}; min {min(warm):.3f}; CPU median {median(warm_cpu):.3f} s")]


if __name__ == "__main__":
    from bench.common import print_table
    print_table(run(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 7))
