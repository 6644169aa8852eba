"""The single executable (issues #3, #17): size, launch -> splash, -> first HTTP 200 headless, -> window `loaded`.

    python -m bench executable          (or: python -m bench.bench_executable [--runs N])

Measures dist/kiosk as built (build it first: .venv/bin/pyinstaller --noconfirm build.spec). Every clock starts
just before the process is spawned. On Linux dist/kiosk unpacks itself once per build into the user's cache folder
(packaging/kstub.c), so each figure is taken twice: "first launch" with an empty cache folder (the unpack counts),
"second launch" with the cache folder a first launch left. The splash needs an X screen: Xvfb is started for it
(scripts/setup.sh --dev installs it); the window runs on Qt's offscreen platform. The same window from source
(python -m kiosk) is measured too. It also prints what dominates the size.
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


CACHE = {"first": None, "second": None}  # XDG_CACHE_HOME per launch kind; None: a new empty one per run
KIND = "first"  # which kind runs() is measuring


def env_for(tmp, **extra):
    """A configured kiosk on a scratch data folder, with no screen unless `extra` gives one.

    The cache folder is `tmp`'s own (empty: a first launch) unless CACHE[KIND] names a warm one."""
    cache = CACHE.get(KIND) or str(tmp / "cache")
    env = kiosk_env(CATALOG, tmp / "data", TMPDIR=str(tmp), QTWEBENGINE_DISABLE_SANDBOX="1", XDG_CACHE_HOME=cache,
                    **extra)
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
    """The biggest files the executable unpacks (from the one-folder build beside it): what dominates its size."""
    folder = ROOT / "dist" / "kiosk-onefolder"
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    rows = sorted(((p.stat().st_size, str(p.relative_to(folder))) for p in files), reverse=True)
    return rows[:count], sum(r[0] for r in rows), len(rows)


def payload():
    """(stub bytes, payload bytes, build hash) from dist/kiosk's trailer (packaging/pack.py)."""
    sys.path.insert(0, str(ROOT / "packaging"))
    import pack

    offset, size, sha = pack.read_trailer(EXE)
    return offset, size, sha


def runs(fn, n, kind="first"):
    """`fn(tmp)` n times, each in a new scratch folder; kind "first": an empty cache folder each time,
    "second": the warm cache folder one launch filled before."""
    global KIND
    KIND = kind
    out = []
    for _ in range(n):
        tmp = scratch_dir("exe")
        try:
            out.append(fn(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def both(name, fn, n, goal, detail):
    """The figure for a first launch (empty cache) and for a second launch (warm cache)."""
    first = runs(fn, n, "first")
    second = runs(fn, n, "second")
    spread = "runs " + "/".join(f"{v:.2f}" for v in first) + " | " + "/".join(f"{v:.2f}" for v in second)
    return [Figure(f"{name}, first launch", median(first), "s", goal, f"median of {n}; {detail}"),
            Figure(f"{name}, second launch", median(second), "s", goal, f"median of {n}; {spread} s")]


def run(n=3):
    """The figures, as bench rows."""
    if not EXE.is_file():
        raise SystemExit(f"{EXE} is missing: build it first with .venv/bin/pyinstaller --noconfirm build.spec")
    size = EXE.stat().st_size
    stub, packed, sha = payload()
    top, unpacked, entries = largest_entries()
    print(f"[bench] {EXE.name}: stub {stub} bytes + zstd payload {packed / 2**20:.1f} MiB of {entries} files, "
          f"{unpacked / 2**20:.0f} MiB unpacked once per build ({sha[:16]}); largest (MiB unpacked):", file=sys.stderr)
    for u, name in top:
        print(f"[bench]   {u / 2**20:6.1f}  {name}", file=sys.stderr)
    figures = [Figure("executable size (MiB, 2^20 bytes)", size / 2**20, "MiB", GOAL_MB,
                      f"{size} bytes; {unpacked / 2**20:.0f} MiB unpacked at the first launch"),
               Figure("executable size (MB, 10^6 bytes)", size / 1e6, "MB", GOAL_MB, "the issue's goal is in MB")]

    warm = scratch_dir("exe-cache")
    CACHE["second"] = str(warm / "cache")
    try:
        # Fill the warm cache folder once: what every launch after the first finds.
        subprocess.run([str(EXE), "--help"], cwd=warm, env=dict(env_for(warm), XDG_CACHE_HOME=CACHE["second"]),
                       stdout=subprocess.DEVNULL, check=True)
        xvfb, display = start_xvfb()
        if display:
            try:
                figures += both("launch -> splash", lambda tmp: splash_shown(tmp, display), n, GOAL_SPLASH_S,
                                "Xvfb, a named window appears (xwininfo)")
            finally:
                xvfb.terminate()
        else:
            figures.append(Figure("launch -> splash (not measured: install xvfb)", float("nan"), "s"))

        cpu = runs(startup_cpu, n, "second")
        figures.append(Figure("start CPU (kiosk --help), second launch", median(cpu), "s", None,
                              f"median of {n}; user + system CPU, not slowed by other work on the machine"))
        figures += both("launch -> first HTTP 200 (headless)", first_200, n, GOAL_LOADED_S, "GET / on 127.0.0.1")
        figures += both("launch -> window loaded (executable)", lambda tmp: window_loaded(tmp, [str(EXE)]), n,
                        GOAL_LOADED_S, "Qt offscreen, pywebview `loaded`")
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    source = runs(lambda tmp: window_loaded(tmp, [PYTHON, "-m", "kiosk"]), n)
    figures.append(Figure("launch -> window loaded (python -m kiosk)", median(source), "s", None,
                          f"median of {n}, min {min(source):.2f}; same window from source, no unpack"))
    return figures


if __name__ == "__main__":
    from bench.common import load_note, print_table

    count = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    print_table(run(count))
    print(f"\n{load_note()} (2 cores)")
