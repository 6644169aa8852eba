"""The single executable (issues #3, #17, #29): size, launch -> splash, -> first HTTP 200 headless, -> window
`loaded`, and the memory of the whole window.

    python -m bench executable          (or: python -m bench.bench_executable [--runs N] [--against PATH])

Measures dist/kiosk as built (build it first: .venv/bin/pyinstaller --noconfirm build.spec). Every clock starts
just before the process is spawned. On Linux dist/kiosk unpacks itself once per build into the user's cache folder
(packaging/kstub.c), so each launch figure is taken twice: "first launch" with an empty cache folder (the unpack
counts), "later launch" with the cache folder a first launch left. The window and the splash run on a virtual
screen (Xvfb; scripts/setup.sh --dev installs it). The same window from source (python -m kiosk) is measured too.

Side by side in the same run: KIOSK_BENCH_AGAINST=PATH (or --against PATH) measures another build the same way,
for instance the Qt WebEngine build the kiosk shipped before issue #29, kept as a file. Its rows carry no goal.
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
from pathlib import Path

from bench.common import LOCAL, PYTHON, ROOT, Figure, free_port, kiosk_env, median, scratch_dir
from tests.window import procfs

EXE = ROOT / "dist" / ("kiosk.exe" if sys.platform == "win32" else "kiosk")
CATALOG = ROOT / "sample_catalog" / "books.csv"
# Issue #29's goals for the Linux executable (MB = 10^6 bytes).
GOAL_MB, GOAL_SPLASH_S, GOAL_FIRST_S, GOAL_LATER_S, GOAL_PSS_MB = 35, 0.5, 2.0, 1.0, 400
LOADED = re.compile(r"^(\S+ \S+),(\d{3}) INFO kiosk\.window: window loaded", re.M)
SETTLE_S = 2.0  # after `loaded`, before the window's memory is read: the page's scripts and images are in


class Build:
    """One executable under measurement, and the cache folders its launches use."""

    def __init__(self, path, goals):
        self.path = Path(path)
        self.goals = goals
        self.warm = None  # XDG_CACHE_HOME a first launch filled: what every later launch finds

    def goal(self, value):
        return value if self.goals else None

    def env(self, tmp, kind, display=None, **extra):
        """A configured kiosk on a scratch data folder; an empty cache folder for a first launch, the warm one for
        a later launch. The Qt build needs its sandbox off as root (it is ignored by the WebKitGTK build)."""
        cache = str(tmp / "cache") if kind == "first" else self.warm
        env = kiosk_env(CATALOG, tmp / "data", TMPDIR=str(tmp), QTWEBENGINE_DISABLE_SANDBOX="1", XDG_CACHE_HOME=cache,
                        **extra)
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "LD_LIBRARY_PATH"):
            env.pop(name, None)
        if display:
            env["DISPLAY"] = display
        return env

    def unpacked(self):
        """(bytes, files) of the folder a first launch unpacked, and what it holds: WebKitGTK or Qt WebEngine."""
        root = Path(self.warm) / "book-counter-kiosk"
        files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
        engine = "Qt WebEngine" if any(p.name.startswith("libQt6WebEngineCore") for p in files) else "WebKitGTK"
        return sum(p.stat().st_size for p in files), len(files), engine


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def first_200(build, kind, tmp, display, timeout=120):
    """Seconds from spawning `kiosk --headless` to the first 200 for GET /."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([str(build.path), "--headless", "--port", str(port)], cwd=tmp, env=build.env(tmp, kind),
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


def window_loaded(command, env, tmp, memory=None, timeout=180):
    """Seconds from spawning `command` (the window) to its `loaded` log line (its own timestamp). With a list as
    `memory`, the whole window's PSS SETTLE_S after that is appended to it."""
    log = tmp / "data" / "logs" / "kiosk.log"
    started_wall = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = log.is_file() and LOADED.search(log.read_text())
            if found:
                stamp = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
                if memory is not None:
                    time.sleep(SETTLE_S)
                    memory.append(procfs.pss(proc.pid))
                return stamp + int(found.group(2)) / 1000 - started_wall
            if proc.poll() is not None:
                raise RuntimeError(f"the window exited with {proc.returncode} before loading")
            time.sleep(0.05)
        raise RuntimeError("the window never loaded")
    finally:
        stop(proc)


def start_xvfb():
    """An X screen for the window and the splash, or (None, None) when Xvfb is not installed."""
    if not shutil.which("Xvfb") or not shutil.which("xwininfo"):
        return None, None
    from tests.window.xscreen import start_xvfb as start
    return start()


def mapped_windows(display):
    """Names of the mapped top-level windows on the X screen."""
    out = subprocess.run(["xwininfo", "-root", "-children", "-display", display], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip().startswith("0x") and "(has no name)" not in line]


def splash_shown(build, kind, tmp, display, timeout=60):
    """Seconds from spawning `kiosk --headless` to the splash window appearing on the X screen."""
    before = set(mapped_windows(display))
    start = time.perf_counter()
    proc = subprocess.Popen([str(build.path), "--headless", "--port", str(free_port())], cwd=tmp,
                            env=build.env(tmp, kind, display), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            if set(mapped_windows(display)) - before:
                return time.perf_counter() - start
            if proc.poll() is not None:
                break
        raise RuntimeError("no splash window appeared")
    finally:
        stop(proc)


def startup_cpu(build, kind, tmp, display):
    """CPU seconds (user + system) for `kiosk --help`: the unpack plus Python's start, which load cannot inflate."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(build.path), "--help"], cwd=tmp, env=build.env(tmp, kind), stdout=subprocess.DEVNULL,
                   check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def runs(fn, n, *args):
    """`fn(*args, tmp)` n times, each in a new scratch folder."""
    out = []
    for _ in range(n):
        tmp = scratch_dir("exe")
        try:
            out.append(fn(*args[:2], tmp, *args[2:]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def spread(values, unit="s"):
    return "runs " + "/".join(f"{v:.2f}" for v in values) + f" {unit}"


def measure(build, n, display, label):
    """Every figure of one build, its names suffixed with `label`."""
    if not build.path.is_file():
        raise SystemExit(f"{build.path} is missing: build it first with .venv/bin/pyinstaller --noconfirm build.spec")
    size = build.path.stat().st_size
    warm = scratch_dir("exe-cache")
    build.warm = str(warm / "cache")
    try:
        # Fill the warm cache folder once: what every launch after the first finds.
        subprocess.run([str(build.path), "--help"], cwd=warm, env=build.env(warm, "later"), stdout=subprocess.DEVNULL,
                       check=True)
        unpacked, files, engine = build.unpacked()
        tag = f"{label} ({engine})"
        print(f"[bench] {build.path}: {size} bytes, {files} files and {unpacked / 2**20:.0f} MiB unpacked, {engine}",
              file=sys.stderr)
        figures = [Figure(f"executable size, MB (10^6 bytes) {tag}", size / 1e6, "MB", build.goal(GOAL_MB),
                          f"{size} bytes = {size / 2**20:.1f} MiB"),
                   Figure(f"unpacked at the first launch {tag}", unpacked / 2**20, "MiB", None,
                          f"{files} files in the cache folder")]
        if display:
            first = runs(splash_shown, n, build, "first", display)
            later = runs(splash_shown, n, build, "later", display)
            figures += [Figure(f"launch -> splash, first launch {tag}", median(first), "s", build.goal(GOAL_SPLASH_S),
                               f"median of {n}; {spread(first)}; a named X window appears (xwininfo)"),
                        Figure(f"launch -> splash, later launch {tag}", median(later), "s", build.goal(GOAL_SPLASH_S),
                               f"median of {n}; {spread(later)}")]
        cpu = runs(startup_cpu, n, build, "later", display)
        figures.append(Figure(f"start CPU (kiosk --help), later launch {tag}", median(cpu), "s", None,
                              f"median of {n}; user + system CPU, not slowed by other work on the machine"))
        for kind in ("first", "later"):
            times = runs(first_200, n, build, kind, display)
            figures.append(Figure(f"launch -> first HTTP 200 (headless), {kind} launch {tag}", median(times), "s",
                                  build.goal(GOAL_FIRST_S if kind == "first" else GOAL_LATER_S),
                                  f"median of {n}; {spread(times)}; GET / on 127.0.0.1"))
        if display:
            memory = []
            for kind in ("first", "later"):
                times = runs(lambda b, k, tmp: window_loaded([str(b.path)], b.env(tmp, k, display), tmp,
                                                            memory if k == "later" else None), n, build, kind)
                figures.append(Figure(f"launch -> window `loaded`, {kind} launch {tag}", median(times), "s",
                                      build.goal(GOAL_FIRST_S if kind == "first" else GOAL_LATER_S),
                                      f"median of {n}; {spread(times)}; Xvfb, the kiosk log's `loaded` line"))
            pss = [m / 1e6 for m in memory]
            figures.append(Figure(f"memory of the whole window (PSS) {tag}", median(pss), "MB", build.goal(GOAL_PSS_MB),
                                  f"median of {n}; {spread(pss, 'MB')}; the kiosk and all its helper processes, "
                                  f"{SETTLE_S:.0f} s after `loaded` on the shop"))
        return figures
    finally:
        shutil.rmtree(warm, ignore_errors=True)


def run(n=3, against=None):
    """The figures, as bench rows: dist/kiosk, the build `against` (or $KIOSK_BENCH_AGAINST) beside it."""
    against = against or os.environ.get("KIOSK_BENCH_AGAINST")
    xvfb, display = start_xvfb()
    try:
        figures = measure(Build(EXE, goals=True), n, display, "[dist/kiosk]")
        if against:
            figures += measure(Build(against, goals=False), n, display, f"[{Path(against).name}]")
        if display:
            source = runs(lambda tmp: window_loaded([PYTHON, "-m", "kiosk"], kiosk_env(
                CATALOG, tmp / "data", TMPDIR=str(tmp), DISPLAY=display), tmp), n)
            figures.append(Figure("launch -> window `loaded` (python -m kiosk, from source)", median(source), "s",
                                  None, f"median of {n}, min {min(source):.2f}; same window, no unpack"))
        else:
            figures.append(Figure("window and splash (not measured: install xvfb and x11-utils)", float("nan"), "s"))
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
    return figures


if __name__ == "__main__":
    from bench.common import load_note, print_table

    count = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    other = sys.argv[sys.argv.index("--against") + 1] if "--against" in sys.argv else None
    print_table(run(count, other))
    print(f"\n{load_note()} (2 cores)")
