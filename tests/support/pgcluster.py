"""A throw-away PostgreSQL cluster for tests: initdb into a temp folder, postgres on a free loopback port."""
import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

# Durability against an OS crash traded for speed: the cluster is deleted after the run. synchronous_commit stays
# on: off would lose just-committed rows when tests kill the server, and with fsync off it costs little.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1", "fsync": "off", "full_page_writes": "off",
    "wal_level": "minimal", "max_wal_senders": "0",  # minimal WAL (less to write) requires no WAL senders
    "max_connections": "200", "shared_buffers": "32MB", "jit": "off",  # JIT only slows short test queries
    # A fast shutdown waits for backends still reading a startup packet, such as one a client left half-open
    # while the server was paused: bound that wait (the default is 60 s).
    "authentication_timeout": "5s",
}
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
SETUP_HINT = "install Debian's server with `apt-get install postgresql` (scripts/setup.sh --dev does it)"


def find_bin_dir():
    """The newest PostgreSQL server bin folder (initdb, postgres, pg_isready, psql)."""
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(os.path.join(d, "postgres"), os.X_OK)]
    if not dirs and shutil.which("initdb"):  # other systems put them on PATH
        dirs = [os.path.dirname(shutil.which("initdb"))]
    if not dirs:
        raise RuntimeError(f"PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: {SETUP_HINT}")
    return max(dirs, key=lambda d: [int(n) for n in re.findall(r"\d+", d)])  # numeric, or "9.6" beats "15"


def _proc_stat(pid):
    """(state, parent pid) of a process from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


class PgCluster:
    """One throw-away cluster: `with PgCluster() as pg:`, or start() and stop()."""

    def __init__(self, **settings):
        self.bin = find_bin_dir()
        self.settings = {**FAST_SETTINGS, **settings}
        self.root = self.data = self.log = self.port = self.proc = None
        self.owner = None
        if os.geteuid() == 0:  # initdb and postgres refuse root: run them as the postgres user
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(f"running as root and there is no `postgres` user: {SETUP_HINT}") from None
        # PGHOST, PGOPTIONS, PGDATA... from the caller's shell must not steer our own commands.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}

    def _as_owner(self):
        """Popen arguments that drop root to the postgres user for initdb and postgres."""
        # Popen switches user in the child itself; runuser would stay in between as the postmaster's parent,
        # so the pid we hold, and signal, would not be the postmaster's.
        return {} if self.owner is None else {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}

    def _run(self, tool, *args, owner=False):
        return subprocess.run([os.path.join(self.bin, tool), *map(str, args)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, env=self.env, **(self._as_owner() if owner else {}))

    def start(self):
        """initdb into a new temp folder, then start the server on a free port; returns self."""
        self.root = tempfile.mkdtemp(prefix="pgcluster-")
        atexit.register(self.stop)  # a run that dies before its teardown must not leave a postmaster behind
        if self.owner:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.data, self.log = os.path.join(self.root, "data"), os.path.join(self.root, "server.log")
        r = self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                      "--no-sync", "--no-instructions", owner=True)
        if r.returncode:
            self.stop()
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        for attempt in range(3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            try:
                return self.start_server()
            except RuntimeError as e:  # another process took the port between our probe and postgres' bind
                if attempt == 2 or "already in use" not in str(e):
                    self.stop()
                    raise

    def start_server(self, timeout=20):
        """Start postgres on the existing data folder and port, and wait until it accepts connections."""
        opts = [a for k, v in self.settings.items() for a in ("-c", f"{k}={v}")]
        with open(self.log, "ab") as log:
            offset = log.tell()
            # A session of its own: Ctrl-C in the terminal must not shut the server down under the tests' feet.
            self.proc = subprocess.Popen(
                [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.root, *opts],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True, **self._as_owner())
        deadline = time.monotonic() + timeout
        # Ask over our own socket folder: on 127.0.0.1 another server that holds the port could answer for us.
        while self._run("pg_isready", "-q", "-h", self.root, "-p", self.port, "-U", "postgres").returncode:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = f"did not answer in {timeout} s" if self.proc.poll() is None else \
                    f"exited ({self.proc.returncode})"
                self.stop_server("immediate")
                with open(self.log, errors="replace") as f:
                    f.seek(offset)
                    raise RuntimeError(f"postgres {why} on port {self.port}; its log:\n{f.read()[-4000:]}")
            time.sleep(0.05)
        return self

    def _pids(self):
        """The postmaster and its children (backends, checkpointer...): each is its own process group."""
        kids = [int(p.split("/")[2]) for p in glob.glob("/proc/[0-9]*")
                if (_proc_stat(p.split("/")[2]) or (0, 0))[1] == self.proc.pid]
        return [self.proc.pid, *kids]

    def _signal_all(self, sig):
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(pid, sig)

    def stop_server(self, mode="fast", timeout=15):
        """Stop the server, keeping its data: smart, fast, immediate (like a crash) or kill (like a power cut)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._signal_all(signal.SIGCONT)  # a paused server would not act on the stop signal
        if mode != "kill":
            os.kill(self.proc.pid, STOP_SIGNALS[mode])
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # SIGKILL skips the postmaster's cleanup: kill its children too and wait until they are gone,
        # or the next start finds the old shared memory still attached and refuses to run.
        pids = self._pids()
        self._signal_all(signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + timeout
        while any((_proc_stat(p) or ("Z",))[0] != "Z" for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)  # zombies are fine: they have already let go of the shared memory

    def kill(self):
        """SIGKILL every server process, as a power cut would; start_server() then recovers."""
        self.stop_server("kill")

    def pause(self):
        """Freeze every server process (SIGSTOP): connections hang as against an unresponsive database."""
        # A client that gives up while paused may leave its socket open (psycopg does until garbage-collected):
        # after resume() its backend waits for it, up to authentication_timeout, and so does a fast stop.
        self._signal_all(signal.SIGSTOP)

    def resume(self):
        """Undo pause()."""
        self._signal_all(signal.SIGCONT)

    def url(self, dbname="postgres"):
        """A libpq URL for a database of this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name):
        """A fresh, empty database (dropped first if it exists); returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        # One statement per -c: CREATE DATABASE cannot run inside the transaction that one -c makes.
        r = self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.root, "-p", self.port, "-U",
                      "postgres", "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                      "-c", f"CREATE DATABASE {name}")
        if r.returncode:
            raise RuntimeError(f"could not create database {name}:\n{r.stderr}")
        return self.url(name)

    def stop(self):
        """Stop the server (fast, killed if it lingers) and delete the folder; safe to call twice."""
        self.stop_server("fast")
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        atexit.unregister(self.stop)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
