"""What /proc says about a running kiosk: its processes (WebKit's helpers included), their libraries and memory."""
import re
from pathlib import Path


def descendants(pid):
    """Every process started, directly or not, by `pid` (not `pid` itself)."""
    children = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def mapped_libraries(pid):
    """Paths of the shared libraries mapped in process `pid`."""
    fields = (line.split(None, 5) for line in Path(f"/proc/{pid}/maps").read_text().splitlines())
    return {f[5] for f in fields if len(f) == 6 and ".so" in f[5].rsplit("/", 1)[-1]}


def pss(pid):
    """Proportional set size of `pid` and every process it started, in bytes (0 for any that ended)."""
    total = 0
    for each in [pid, *descendants(pid)]:
        try:
            found = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{each}/smaps_rollup").read_text(), re.M)
        except OSError:
            continue
        total += int(found.group(1)) * 1024 if found else 0
    return total
