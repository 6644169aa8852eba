"""What the benchmarks share: percentiles, a figure row, the kiosk's environment, and an app on a catalog."""
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Test keys that look real to the kiosk; start-up never calls Stripe, so the address is never used.
FAKE_SK = "sk_test_benchbenchbenchbench0000"
FAKE_PK = "pk_test_benchbenchbenchbench0000"
UNUSED_API = "http://127.0.0.1:9"


@dataclass
class Figure:
    """One line of the results table: what was measured, the value, the goal, and whether it is met."""

    name: str
    value: float
    unit: str
    goal: float = None
    detail: str = ""

    @property
    def ok(self):
        return None if self.goal is None else self.value <= self.goal

    def row(self):
        goal = "" if self.goal is None else f"≤ {_fmt(self.goal)} {self.unit}"
        status = {True: "ok", False: "MISS", None: ""}[self.ok]
        return [self.name, f"{_fmt(self.value)} {self.unit}", goal, status, self.detail]


def _fmt(value):
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(samples, p):
    """The p-th percentile (0-100) by nearest rank, the way latency goals are usually read."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def median(samples):
    return statistics.median(samples)


def timed(fn, repeat, warmup=3, cpu=None):
    """Run fn `warmup` times untimed, then `repeat` times; returns the durations in ms.

    With a list as `cpu`, also appends this thread's CPU time per run: on a busy machine wall time
    includes waiting for a core, CPU time does not (work done on other threads is not in it).
    """
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        out.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.thread_time() - start_cpu) * 1000)
    return out


def load_note():
    """The machine's load average, printed with the figures: other work on the two cores skews them."""
    try:
        with open("/proc/loadavg") as f:
            return "load average " + " ".join(f.read().split()[:3])
    except OSError:
        return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kiosk_env(catalog, data_dir, **extra):
    """The environment a configured kiosk runs with: a catalog, a data folder and (unused) test keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "STRIPE_"))}
    env.update(KIOSK_CATALOG=str(catalog), KIOSK_DATA_DIR=str(data_dir),
               KIOSK_ENV_FILE=str(Path(data_dir).parent / "no.env"), STRIPE_SECRET_KEY=FAKE_SK,
               STRIPE_PUBLISHABLE_KEY=FAKE_PK, STRIPE_API_BASE=UNUSED_API, PYTHONDONTWRITEBYTECODE="")
    env.update(extra)
    return env


def make_app(catalog, tmp, stripe=None, **env_extra):
    """The kiosk app through create_app, configured the way `python -m kiosk` configures it."""
    from kiosk import create_app
    from kiosk.core.config import load_settings

    env = kiosk_env(catalog, Path(tmp) / "data", **env_extra)
    if stripe is not None:
        env.update(STRIPE_SECRET_KEY=stripe.sk, STRIPE_PUBLISHABLE_KEY=stripe.pk, STRIPE_API_BASE=stripe.url)
    settings = load_settings(environ=env, env_file=Path(tmp) / "no.env")
    # create_app starts nothing in the background, so no reconciliation sweep lands inside a timed request;
    # the subprocess benchmarks (start, memory) run it as shipped.
    return create_app(settings)


def scratch_dir(name):
    """A fresh temporary folder for one benchmark."""
    return Path(tempfile.mkdtemp(prefix=f"kiosk-bench-{name}-"))


LOCAL = {"Host": "127.0.0.1"}  # the kiosk answers only its own address (security.check_request)


def print_table(figures, out=print):
    """A Markdown table: figure, measured, goal, ok/MISS, how."""
    rows = [["figure", "measured", "goal", "", "how"]] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for n, r in enumerate(rows):
        out("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if n == 0:
            out("|" + "|".join("-" * (w + 2) for w in widths) + "|")
