"""Make the single file `dist/kiosk` (Linux) from PyInstaller's one-folder build.

    python packaging/pack.py [FOLDER] [OUTPUT]      (default: dist/kiosk-onefolder -> dist/kiosk)

build.spec calls `pack()` at its end. The output is three parts, one after the other:

1. the launcher stub, `packaging/kstub.c` compiled here with the system C compiler (libzstd linked in statically);
2. the payload: the folder as a tar (ustar, sorted, fixed owners and times, so the same folder gives the same
   bytes), compressed with the `zstd` program;
3. a 64-byte trailer: magic, payload offset, payload size, SHA-256 of the payload, magic.

The stub reads the trailer, unpacks the payload once into `$XDG_CACHE_HOME/book-counter-kiosk/<sha-256>/` and runs
the kiosk from there (see kstub.c). The SHA-256 is the build's identity: a new build unpacks into a new folder.
"""
import hashlib
import io
import os
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAGIC = b"KSTUB\x00\x01\x00"
TRAILER = struct.Struct("<8sQQ32s8s")  # magic, payload offset, payload size, sha256, magic: 64 bytes
# zstd level 19 with a 128 MiB window (--long=27): bench/README.md has the sizes and times of the others measured.
# The window is also the memory the stub needs to unpack; 27 is the most zstd decodes without being told more.
ZSTD_LEVEL = int(os.environ.get("KIOSK_ZSTD_LEVEL", "19"))
ZSTD_LONG = int(os.environ.get("KIOSK_ZSTD_LONG", "27"))
FIXED_MTIME = 1_700_000_000
FILTER = os.environ.get("KIOSK_PACK_FILTER", "1") == "1"  # the E8/E9 filter on ELF files (kstub.c): 6% smaller


def log(message):
    print(f"[pack] {message}", flush=True)


def compile_stub(work):
    """packaging/kstub.c -> work/kstub, with the system `cc` (libzstd static, so the kiosk computer needs no -dev)."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "kstub"
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        raise SystemExit("[pack] no C compiler: install gcc (scripts/setup.sh --dev does)")
    static = ["-Wl,-Bstatic", "-lzstd", "-Wl,-Bdynamic"]
    base = [cc, "-std=c11", "-O2", "-s", "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", "-Wall",
            "-Wextra", "-Werror", "-o", str(out), str(HERE / "kstub.c")]
    # The build machine's own compiler on this repository's source: nothing untrusted is run.
    proc = subprocess.run([*base, *static, "-ldl"], capture_output=True, text=True)  # noqa: S603
    if proc.returncode != 0:  # no libzstd.a: link the shared library instead
        proc = subprocess.run([*base, "-lzstd", "-ldl"], capture_output=True, text=True)  # noqa: S603
    if proc.returncode != 0:
        raise SystemExit(f"[pack] compiling kstub.c failed (is libzstd-dev installed?):\n{proc.stderr}")
    encoder = work / "kstub-encode"
    proc = subprocess.run([cc, "-std=c11", "-O2", "-DKSTUB_ENCODER", "-o", str(encoder),  # noqa: S603
                           str(HERE / "kstub.c")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"[pack] compiling kstub.c's encoder failed:\n{proc.stderr}")
    return out


def filtered(path, encoder):
    """An ELF file's bytes with the x86 E8/E9 filter applied (kstub.c's e8e9(), undone as it unpacks)."""
    proc = subprocess.run([str(encoder), str(path)], capture_output=True, check=True)  # noqa: S603
    return proc.stdout


def entries(folder):
    """Every path under `folder`, parents before children, in a stable order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        rel = Path(root).relative_to(folder)
        for name in sorted(dirs + files):
            yield rel / name


def write_tar(folder, stream, encoder=None):
    """The folder as a ustar stream: only directories, regular files and relative symlinks that stay inside.

    With `encoder`, ELF files (libraries, programs) are stored E8/E9-filtered, as tar type 'X'."""
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for rel in entries(folder):
            path = folder / rel
            st = path.lstat()
            info = tarfile.TarInfo(rel.as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                inside = (path.parent / target).resolve()
                if os.path.isabs(target) or not inside.is_relative_to(folder.resolve()):
                    raise SystemExit(f"[pack] {rel} links outside the folder ({target})")
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size, info.mode = st.st_size, 0o700 if st.st_mode & 0o100 else 0o600
                with open(path, "rb") as f:
                    elf = f.read(4) == b"\x7fELF"
                    f.seek(0)
                    if elf and encoder:
                        info.type = b"X"
                        tar.addfile(info, io.BytesIO(filtered(path, encoder)))
                    else:
                        tar.addfile(info, f)
            else:
                raise SystemExit(f"[pack] {rel}: not a file, folder or symlink")


def compress(folder, out_file, level=ZSTD_LEVEL, long=ZSTD_LONG, encoder=None):
    """Tar `folder` into `zstd`, appending the compressed bytes to `out_file`; returns (size, sha256)."""
    if not shutil.which("zstd"):
        raise SystemExit("[pack] the zstd program is missing: apt-get install zstd")
    cmd = ["zstd", "-q", f"-{level}", *(["--ultra"] if level > 19 else []), *([f"--long={long}"] if long else []),
           "-T0", "-c"]
    digest, size = hashlib.sha256(), 0
    zstd = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # noqa: S603 - fixed arguments
    failure = []

    def feed():
        try:
            write_tar(folder, io.BufferedWriter(zstd.stdin, 1 << 20), encoder)
        except BaseException as exc:  # noqa: BLE001 - reported below, after zstd ends
            failure.append(exc)
        finally:
            zstd.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    while chunk := zstd.stdout.read(1 << 20):
        digest.update(chunk)
        out_file.write(chunk)
        size += len(chunk)
    feeder.join()
    if zstd.wait() != 0 or failure:
        raise SystemExit(f"[pack] compressing failed: {failure[0] if failure else 'zstd exit ' + str(zstd.returncode)}")
    return size, digest.digest()


def pack(folder, output, work=None, level=ZSTD_LEVEL, long=ZSTD_LONG, stub=None):
    """Write `output`: the stub, the compressed `folder`, the trailer. Returns the output's size in bytes.

    `stub`: an already compiled stub (tests pack small folders with one); `level`/`long`: zstd's settings."""
    folder, output = Path(folder).resolve(), Path(output)
    if not (folder / "kiosk").is_file():
        raise SystemExit(f"[pack] {folder}/kiosk is missing: build the one-folder kiosk first")
    started = time.monotonic()
    stub = Path(stub) if stub else compile_stub(Path(work) if work else folder.parent / ".pack")
    tmp = output.with_name(output.name + ".partial")
    with open(tmp, "wb") as out:
        out.write(stub.read_bytes())
        offset = out.tell()
        size, sha = compress(folder, out, level, long, stub.with_name("kstub-encode") if FILTER else None)
        out.write(TRAILER.pack(MAGIC, offset, size, sha, MAGIC))
    os.chmod(tmp, 0o755)  # noqa: S103 - a program others may run (not write): what staff copy to the kiosk
    os.replace(tmp, output)  # a new inode: hard links to the previous build keep the previous bytes
    total = output.stat().st_size
    unpacked = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    log(f"{output}: {total} bytes ({total / 2**20:.1f} MiB, {total / 1e6:.1f} MB): stub {offset} bytes, "
        f"payload zstd -{level} --long={long} {size} bytes of {unpacked / 2**20:.0f} MiB, "
        f"build {sha.hex()[:16]}, {time.monotonic() - started:.0f} s")
    return total


def read_trailer(path):
    """(payload offset, payload size, sha256 hex) of a packed file, or ValueError."""
    with open(path, "rb") as f:
        f.seek(-TRAILER.size, os.SEEK_END)
        magic, offset, size, sha, magic2 = TRAILER.unpack(f.read(TRAILER.size))
    if magic != MAGIC or magic2 != MAGIC:
        raise ValueError(f"{path} is not a packed kiosk")
    return offset, size, sha.hex()


if __name__ == "__main__":
    root = HERE.parent
    args = sys.argv[1:]
    pack(Path(args[0]) if args else root / "dist" / "kiosk-onefolder",
         Path(args[1]) if len(args) > 1 else root / "dist" / "kiosk",
         work=root / "build" / "pack")
