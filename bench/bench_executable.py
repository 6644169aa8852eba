"""The single executable (issue #3): size, launch -> splash, launch -> first HTTP 200 headless, launch -> `loaded`.

    python -m bench executable          (or: python -m bench.bench_executable [--runs N])

Measures dist/kiosk as built (build it first: .venv/bin/pyinstaller --noconfirm build.spec). Every clock starts
just before the process is spawned, so the one-file unpack counts. The splash needs an X screen: Xvfb is started
for it (scripts/setup.sh --dev installs it); the window runs on Qt's offscreen platform. The same window from
source (python -m kiosk) is measured too, so the unpack's share is visible. It also prints what dominates the size.
"""
import datetime
import http.client
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

from bench.common import LOCAL, PYTHON, ROOT, Figure, free_port, kiosk_env, median, scratch_dir

EXE = ROOT / "dist" / ("kiosk.exe" if sys.platform == "win32" else "kiosk")
CATALOG = ROOT / "sample_catalog" / "books.csv"
GOAL_MB, GOAL_SPLASH_S, GOAL_LOADED_S = 120, 0.5, 2.0
LOADED = re.compile(r"^(\S+ \S+),(\d{3}) INFO kiosk\.window: window loaded", re.M)


def env_for(tmp, **extra):
    """A configured kiosk on a scratch data folder, with no screen unless `extra` gives one."""
    env = kiosk_env(CATALOG, tmp / "data", TMPDIR=str(tmp), QTWEBENGINE_DISABLE_SANDBOX="1", **extra)
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        if name not in extra:
            env.pop(name, None)
    return env


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def first_200(tmp, timeout=120):
    """Seconds from spawning `kiosk --headless` to the first 200 for GET /."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([str(EXE), "--headless", "--port", str(port)], cwd=tmp, env=env_for(tmp),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                conn.request("GET", "/", headers=LOCAL)
                if conn.getresponse().status == 200:
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.005)
            finally:
                conn.close()
        raise RuntimeError("no 200 from the executable")
    finally:
        stop(proc)


def window_loaded(tmp, command, timeout=180):
    """Seconds from spawning `command` (the window, Qt offscreen) to its `loaded` log line (its own timestamp)."""
    log = tmp / "data" / "logs" / "kiosk.log"
    started_wall = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, env=env_for(tmp, QT_QPA_PLATFORM="offscreen"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = log.is_file() and LOADED.search(log.read_text())
            if found:
                stamp = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
                return stamp + int(found.group(2)) / 1000 - started_wall
            if proc.poll() is not None:
                raise RuntimeError(f"the window exited with {proc.returncode} before loading")
            time.sleep(0.05)
        raise RuntimeError("the window never loaded")
    finally:
        stop(proc)


def start_xvfb():
    """An X screen for the splash, or None when Xvfb is not installed."""
    if not shutil.which("Xvfb") or not shutil.which("xwininfo"):
        return None, None
    display = f":{os.getpid() % 400 + 100}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["xwininfo", "-root", "-display", display], capture_output=True).returncode == 0:
            return proc, display
        time.sleep(0.05)
    proc.kill()
    return None, None


def mapped_windows(display):
    """Names of the mapped top-level windows on the X screen."""
    out = subprocess.run(["xwininfo", "-root", "-children", "-display", display], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip().startswith("0x") and "(has no name)" not in line]


def splash_shown(tmp, display, timeout=60):
    """Seconds from spawning `kiosk --headless` to the splash window appearing on the X screen."""
    before = set(mapped_windows(display))
    start = time.perf_counter()
    proc = subprocess.Popen([str(EXE), "--headless", "--port", str(free_port())], cwd=tmp,
                            env=env_for(tmp, DISPLAY=display), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            if set(mapped_windows(display)) - before:
                return time.perf_counter() - start
            if proc.poll() is not None:
                break
        raise RuntimeError("no splash window appeared")
    finally:
        stop(proc)


def startup_cpu(tmp):
    """CPU seconds (user + system) for `kiosk --help`: the unpack plus Python's start, which load cannot inflate."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(EXE), "--help"], cwd=tmp, env=env_for(tmp), stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def largest_entries(count=8):
    """The biggest entries inside the executable, compressed as stored: what dominates its size."""
    from PyInstaller.archive.readers import CArchiveReader

    toc = CArchiveReader(str(EXE)).toc
    rows = sorted(((entry[1], entry[2], name) for name, entry in toc.items()), reverse=True)
    return rows[:count], sum(r[0] for r in rows), sum(r[1] for r in rows), len(rows)


def runs(fn, n):
    out = []
    for _ in range(n):
        tmp = scratch_dir("exe")
        try:
            out.append(fn(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def run(n=3):
    """The figures, as bench rows."""
    if not EXE.is_file():
        raise SystemExit(f"{EXE} is missing: build it first with .venv/bin/pyinstaller --noconfirm build.spec")
    size_mb = EXE.stat().st_size / 2**20
    top, stored, unpacked, entries = largest_entries()
    print(f"[bench] {EXE.name}: {entries} entries, {stored / 2**20:.0f} MiB stored, {unpacked / 2**20:.0f} MiB "
          "unpacked at every launch; largest (stored / unpacked MiB):", file=sys.stderr)
    for c, u, name in top:
        print(f"[bench]   {c / 2**20:6.1f} / {u / 2**20:6.1f}  {name}", file=sys.stderr)
    figures = [Figure("executable size", size_mb, "MiB", GOAL_MB, f"{EXE.name}, {EXE.stat().st_size / 1e6:.1f} MB; "
                      f"{unpacked / 2**20:.0f} MiB unpacked per launch")]

    xvfb, display = start_xvfb()
    if display:
        try:
            shown = runs(lambda tmp: splash_shown(tmp, display), n)
            figures.append(Figure("launch -> splash", median(shown), "s", GOAL_SPLASH_S,
                                  f"median of {n}, min {min(shown):.2f}; Xvfb, window appears (xwininfo)"))
        finally:
            xvfb.terminate()
    else:
        figures.append(Figure("launch -> splash (not measured: install xvfb)", float("nan"), "s"))

    cpu = runs(startup_cpu, n)
    figures.append(Figure("unpack + start CPU (kiosk --help)", median(cpu), "s", None,
                          f"median of {n}; user + system CPU, not slowed by other work on the machine"))
    ok = runs(first_200, n)
    figures.append(Figure("launch -> first HTTP 200 (headless)", median(ok), "s", None,
                          f"median of {n}, min {min(ok):.2f}; GET / on 127.0.0.1"))
    loaded = runs(lambda tmp: window_loaded(tmp, [str(EXE)]), n)
    figures.append(Figure("launch -> window loaded (executable)", median(loaded), "s", GOAL_LOADED_S,
                          f"median of {n}, min {min(loaded):.2f}; Qt offscreen, pywebview `loaded`"))
    source = runs(lambda tmp: window_loaded(tmp, [PYTHON, "-m", "kiosk"]), n)
    figures.append(Figure("launch -> window loaded (python -m kiosk)", median(source), "s", None,
                          f"median of {n}, min {min(source):.2f}; same window from source, no unpack"))
    return figures


if __name__ == "__main__":
    from bench.common import load_note, print_table

    count = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    print_table(run(count))
    print(f"\n{load_note()} (2 cores)")
