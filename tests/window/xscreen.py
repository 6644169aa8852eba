"""A bare X server (Xvfb, no window manager) for the tests that open the kiosk's window."""
import os
import shutil
import subprocess


def start_xvfb(size=(1280, 800)):
    """Start Xvfb with one screen of `size` (width, height); returns (its process, its DISPLAY)."""
    assert shutil.which("Xvfb") and shutil.which("xwininfo"), "Xvfb and xwininfo are needed (scripts/setup.sh --dev)"
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "{}x{}x24".format(*size),
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as said:
        number = said.readline().strip()  # Xvfb writes its display number once it accepts clients
    assert number.isdigit(), f"Xvfb did not start (exit {proc.poll()})"
    return proc, f":{number}"


def stop_xvfb(proc):
    """End an Xvfb started by start_xvfb."""
    proc.terminate()
    proc.wait(10)
