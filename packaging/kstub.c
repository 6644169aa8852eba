/* kstub: the single-file kiosk's launcher (Linux). packaging/pack.py compiles it and appends the kiosk.
 *
 * dist/kiosk = this program + a zstd-compressed tar of PyInstaller's one-folder build + a 64-byte trailer
 * (magic, payload offset, payload size, SHA-256 of the payload, magic). At launch:
 *
 *   1. The build's folder is  $XDG_CACHE_HOME/book-counter-kiosk/<sha-256>/  (or ~/.cache/...).
 *   2. If it is complete (its marker lists every file with its size, and each is there, the right size, owned by
 *      this user and writable by no one else, in folders that are the user's alone), run it: nothing is unpacked.
 *   3. Otherwise, holding book-counter-kiosk/.lock (two launches at once: the second waits, then finds it done),
 *      unpack into a temporary sibling, write the marker last, and rename it into place; a damaged folder is moved
 *      aside first. Then folders of other builds that no kiosk is running from are removed.
 *   4. exec the kiosk inside, with the same arguments, and KIOSK_ENV_FILE=<this file's folder>/.env unless it is
 *      already set, so .env stays beside the file staff double-click.
 *
 * Each launch holds a shared flock on <folder>/.kiosk-in-use, kept across exec for the kiosk's lifetime: a newer
 * build's clean-up skips folders still in use. While it unpacks (the first launch of a build), a small X window
 * says so, if libX11 can be loaded and DISPLAY is set; PyInstaller's own splash follows once the kiosk starts.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zstd.h>

#define APP_DIR "book-counter-kiosk"
#define MARKER ".kiosk-complete"
#define IN_USE ".kiosk-in-use"
#define TRAILER_SIZE 64
#define IN_CHUNK (1 << 20)
#define OUT_CHUNK (1 << 20)

static const unsigned char MAGIC[8] = {'K', 'S', 'T', 'U', 'B', 0, 1, 0};
static char tmp_to_remove[PATH_MAX];
static void remove_tree(const char *path);

static void die(const char *fmt, ...) {
    va_list ap;
    fputs("[kiosk] cannot start: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (tmp_to_remove[0]) remove_tree(tmp_to_remove); /* never leave a half-unpacked folder behind */
    exit(70);
}

/* snprintf into a PATH_MAX buffer, refusing to cut a path short. */
static void fmt_path(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX) die("path too long: %s...", out);
}

static void join(char *out, const char *a, const char *b) { fmt_path(out, "%s/%s", a, b); }

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---------- the splash while unpacking: libX11 loaded at run time, so the kiosk computer needs nothing more ---------- */

typedef struct {
    void *lib, *dpy;
    unsigned long win, gc;
    int (*pending)(void *);
    int (*next_event)(void *, void *);
    int (*draw)(void *, unsigned long, unsigned long, int, int, const char *, int);
    int (*flush)(void *);
} splash_t;

static splash_t splash;
static const char SPLASH_TEXT[] = "Unpacking the book counter (first start of this version)...";

static void splash_draw(void) {
    splash.draw(splash.dpy, splash.win, splash.gc, 24, 116, SPLASH_TEXT, (int)sizeof SPLASH_TEXT - 1);
    splash.flush(splash.dpy);
}

static void splash_open(void) {
    const char *display = getenv("DISPLAY");
    if (!display || !*display || getenv("KSTUB_NO_SPLASH")) return;
    void *lib = dlopen("libX11.so.6", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
#define SYM(name) dlsym(lib, name)
    void *(*open_display)(const char *) = (void *(*)(const char *))SYM("XOpenDisplay");
    int (*default_screen)(void *) = (int (*)(void *))SYM("XDefaultScreen");
    unsigned long (*root)(void *, int) = (unsigned long (*)(void *, int))SYM("XRootWindow");
    int (*width)(void *, int) = (int (*)(void *, int))SYM("XDisplayWidth");
    int (*height)(void *, int) = (int (*)(void *, int))SYM("XDisplayHeight");
    unsigned long (*create)(void *, unsigned long, int, int, unsigned, unsigned, unsigned, unsigned long,
                            unsigned long) =
        (unsigned long (*)(void *, unsigned long, int, int, unsigned, unsigned, unsigned, unsigned long,
                           unsigned long))SYM("XCreateSimpleWindow");
    int (*store_name)(void *, unsigned long, const char *) = (int (*)(void *, unsigned long, const char *))SYM("XStoreName");
    int (*select_input)(void *, unsigned long, long) = (int (*)(void *, unsigned long, long))SYM("XSelectInput");
    int (*map)(void *, unsigned long) = (int (*)(void *, unsigned long))SYM("XMapRaised");
    unsigned long (*create_gc)(void *, unsigned long, unsigned long, void *) =
        (unsigned long (*)(void *, unsigned long, unsigned long, void *))SYM("XCreateGC");
    int (*set_fg)(void *, unsigned long, unsigned long) = (int (*)(void *, unsigned long, unsigned long))SYM("XSetForeground");
    splash.pending = (int (*)(void *))SYM("XPending");
    splash.next_event = (int (*)(void *, void *))SYM("XNextEvent");
    splash.draw = (int (*)(void *, unsigned long, unsigned long, int, int, const char *, int))SYM("XDrawString");
    splash.flush = (int (*)(void *))SYM("XFlush");
#undef SYM
    if (!open_display || !default_screen || !root || !width || !height || !create || !store_name || !select_input ||
        !map || !create_gc || !set_fg || !splash.pending || !splash.next_event || !splash.draw || !splash.flush) {
        dlclose(lib);
        return;
    }
    void *dpy = open_display(NULL);
    if (!dpy) { dlclose(lib); return; }
    int screen = default_screen(dpy);
    int w = 560, h = 220, x = (width(dpy, screen) - w) / 2, y = (height(dpy, screen) - h) / 2;
    splash.win = create(dpy, root(dpy, screen), x > 0 ? x : 0, y > 0 ? y : 0, w, h, 0, 0x162b47, 0x1f3a5f);
    store_name(dpy, splash.win, "Book counter: starting");
    select_input(dpy, splash.win, 1L << 15 /* ExposureMask */);
    map(dpy, splash.win);
    splash.gc = create_gc(dpy, splash.win, 0, NULL);
    set_fg(dpy, splash.gc, 0xffffff);
    splash.lib = lib;
    splash.dpy = dpy;
    splash.flush(dpy);
}

static void splash_pump(void) {
    if (!splash.dpy) return;
    long event[32]; /* an XEvent is 24 longs */
    int exposed = 0;
    while (splash.pending(splash.dpy) > 0) {
        splash.next_event(splash.dpy, event);
        int type;
        memcpy(&type, event, sizeof type);
        if (type == 12 /* Expose */) exposed = 1;
    }
    if (exposed) splash_draw();
}

static void splash_close(void) {
    if (!splash.dpy) return;
    int (*destroy)(void *, unsigned long) = (int (*)(void *, unsigned long))dlsym(splash.lib, "XDestroyWindow");
    int (*close_display)(void *) = (int (*)(void *))dlsym(splash.lib, "XCloseDisplay");
    if (destroy) destroy(splash.dpy, splash.win);
    if (close_display) close_display(splash.dpy);
    splash.dpy = NULL;
}

/* ---------- the x86 "E8/E9" filter ----------
 * Machine code calls and jumps by a 32-bit offset from the next instruction (opcodes E8 and E9), so a function
 * called from many places has as many different offsets. pack.py rewrites each offset as the absolute position
 * in the file: repeated calls become repeated bytes, and zstd packs the libraries smaller (0.4 MB, 1.5%, of the
 * 28 MB WebKitGTK build; 6% when it carried Qt WebEngine). It is exactly reversible whatever the bytes are: both
 * directions skip the same 4 bytes after every E8/E9 byte, and the opcode bytes themselves are never changed.
 * Entries filtered so have tar type 'X'. */
static void e8e9(unsigned char *b, uint64_t n, int encode) {
    for (uint64_t i = 0; i + 5 <= n;) {
        if ((b[i] & 0xFE) == 0xE8) {
            uint32_t v, pos = (uint32_t)(i + 5);
            memcpy(&v, b + i + 1, 4);
            v = encode ? v + pos : v - pos;
            memcpy(b + i + 1, &v, 4);
            i += 5;
        } else {
            i++;
        }
    }
}

#ifdef KSTUB_ENCODER
/* pack.py's encoder: kstub-encode FILE > FILTERED (the same e8e9() as the stub's, so the two always agree). */
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return 1;
    uint64_t n = (uint64_t)st.st_size;
    unsigned char *b = n ? mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) : NULL;
    if (n && b == MAP_FAILED) return 1;
    e8e9(b, n, 1);
    for (uint64_t done = 0; done < n;) {
        ssize_t w = write(1, b + done, n - done);
        if (w <= 0) return 1;
        done += (uint64_t)w;
    }
    return 0;
}
#else

/* ---------- the payload: zstd stream reader ---------- */

typedef struct {
    int fd;
    uint64_t pos, end;
    ZSTD_DCtx *dctx;
    unsigned char *in, *out;
    ZSTD_inBuffer ib;
    size_t out_pos, out_len;
} zreader;

/* More decompressed bytes into z->out; 0 at the end of the stream. */
static int zfill(zreader *z) {
    for (;;) {
        if (z->ib.pos == z->ib.size && z->pos < z->end) {
            size_t want = z->end - z->pos < IN_CHUNK ? (size_t)(z->end - z->pos) : IN_CHUNK;
            ssize_t got = pread(z->fd, z->in, want, (off_t)z->pos);
            if (got <= 0) die("cannot read the kiosk's payload: %s", got < 0 ? strerror(errno) : "file truncated");
            z->pos += (uint64_t)got;
            z->ib.src = z->in, z->ib.size = (size_t)got, z->ib.pos = 0;
        }
        ZSTD_outBuffer ob = {z->out, OUT_CHUNK, 0};
        size_t ret = ZSTD_decompressStream(z->dctx, &ob, &z->ib);
        if (ZSTD_isError(ret)) die("the kiosk's payload is damaged (%s): copy the kiosk file again", ZSTD_getErrorName(ret));
        if (ob.pos > 0) {
            z->out_pos = 0, z->out_len = ob.pos;
            return 1;
        }
        if (z->ib.pos == z->ib.size && z->pos >= z->end) {
            if (ret != 0) die("the kiosk's payload is damaged (cut short): copy the kiosk file again");
            return 0;
        }
    }
}

/* Pass n decompressed bytes to `sink` (a file descriptor, or -1 to copy into dst, or -2 to skip). */
static void zread(zreader *z, unsigned char *dst, int sink, uint64_t n) {
    while (n > 0) {
        if (z->out_pos == z->out_len && !zfill(z)) die("the kiosk's payload is damaged (it ends too early): copy the kiosk file again");
        size_t take = z->out_len - z->out_pos;
        if (take > n) take = (size_t)n;
        if (sink >= 0) {
            for (size_t done = 0; done < take;) {
                ssize_t w = write(sink, z->out + z->out_pos + done, take - done);
                if (w < 0) die("cannot write the kiosk's files: %s", strerror(errno));
                done += (size_t)w;
            }
        } else if (sink == -1) {
            memcpy(dst, z->out + z->out_pos, take);
            dst += take;
        }
        z->out_pos += take;
        n -= take;
    }
}

/* ---------- the tar inside (ustar, as pack.py writes it) ---------- */

static uint64_t octal(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && p[i]; i++) {
        if (p[i] == ' ') continue;
        if (p[i] < '0' || p[i] > '7') die("the kiosk's payload is damaged (bad tar header)");
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* A relative path of plain components: no "/" at the start, no "." or "..", nothing empty. */
static int safe_path(const char *path) {
    if (!*path || *path == '/') return 0;
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        p += n + (slash ? 1 : 0);
        if (slash && !*p) return 0;
    }
    return 1;
}

/* A symlink target that stays inside the folder, from the link's own place, read as text: a first filter as each
 * link is made (links_inside() then checks where each one really leads, through the links it passes). */
static int safe_link(const char *path, const char *target) {
    if (!*target || *target == '/') return 0;
    int depth = 0;
    for (const char *p = path; *p; p++) depth += *p == '/';
    for (const char *p = target; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0) return 0;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n + (slash ? 1 : 0);
    }
    return 1;
}

typedef struct {
    char *data;
    size_t len, cap;
    unsigned long count;
} text_t;

static void append(text_t *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) die("out of memory");
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        if (!t->data) die("out of memory");
    }
}

/* 1 when `path` leads inside `root` by the kernel's own resolution. A path that leads nowhere (a link to a file the
 * build left out) goes no further than the longest part of it that exists, so that part must be inside. */
static int leads_inside(const char *root, size_t rootlen, char *path) {
    char real[PATH_MAX];
    for (;;) {
        if (realpath(path, real)) return strncmp(real, root, rootlen) == 0 && (real[rootlen] == '/' || !real[rootlen]);
        char *slash = strrchr(path, '/');
        if (!slash || slash == path) return 0;
        *slash = 0;
    }
}

/* 1 when every link the manifest lists leads to a place inside `dir`. By the kernel's own resolution, not by its
 * text: a link through another link that points up ("up -> ..", then "x -> up/../..") reads as inside but leads
 * out. */
static int links_inside(const char *dir, const text_t *manifest, char *bad, size_t badlen) {
    char root[PATH_MAX], path[PATH_MAX], target[PATH_MAX], leads[2 * PATH_MAX];
    if (!realpath(dir, root)) return 0;
    size_t rootlen = strlen(root);
    for (const char *line = manifest->data; line && line < manifest->data + manifest->len;) {
        const char *end = memchr(line, '\n', (size_t)(manifest->data + manifest->len - line));
        if (!end) break;
        if (line[0] == 'l') {
            snprintf(bad, badlen, "%.*s", (int)(end - line - 4), line + 4); /* "l 0 name" */
            join(path, dir, bad);
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n < 0) return 0;
            target[n] = 0;
            char *slash = strrchr(path, '/');
            snprintf(leads, sizeof leads, "%.*s/%s", (int)(slash - path), path, target); /* from the link's folder */
            if (!leads_inside(root, rootlen, leads)) return 0;
        }
        line = end + 1;
    }
    return 1;
}

/* Unpack the payload into the empty folder `dir`, then write its marker (the manifest) last, once everything
 * before it is on disk. */
static void unpack(int self_fd, uint64_t offset, uint64_t size, const char *dir, const char *hash) {
    zreader z = {.fd = self_fd, .pos = offset, .end = offset + size};
    z.dctx = ZSTD_createDCtx();
    z.in = malloc(IN_CHUNK), z.out = malloc(OUT_CHUNK);
    if (!z.dctx || !z.in || !z.out) die("out of memory");
    ZSTD_DCtx_setParameter(z.dctx, ZSTD_d_windowLogMax, 30); /* pack.py's --long window (27 by default) */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) die("cannot open %s: %s", dir, strerror(errno));
    text_t manifest = {0};
    char name[PATH_MAX], longname[PATH_MAX] = "";
    unsigned char h[512];
    int files = 0;
    for (;;) {
        zread(&z, h, -1, 512);
        int zero = 1;
        for (int i = 0; i < 512; i++) zero &= h[i] == 0;
        if (zero) break; /* the end-of-archive block */
        uint64_t sum = 0;
        for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (sum != octal(h + 148, 8)) die("the kiosk's payload is damaged (tar checksum)");
        uint64_t fsize = octal(h + 124, 12), mode = octal(h + 100, 8);
        char type = (char)h[156];
        if (type == 'L') { /* GNU long name for the next entry */
            if (fsize >= sizeof longname) die("the kiosk's payload has a name too long");
            zread(&z, (unsigned char *)longname, -1, fsize);
            longname[fsize] = 0;
            zread(&z, NULL, -2, (512 - fsize % 512) % 512);
            continue;
        }
        if (longname[0]) {
            snprintf(name, sizeof name, "%s", longname);
            longname[0] = 0;
        } else if (h[345]) {
            snprintf(name, sizeof name, "%.155s/%.100s", (char *)h + 345, (char *)h);
        } else {
            snprintf(name, sizeof name, "%.100s", (char *)h);
        }
        size_t nlen = strlen(name);
        while (nlen > 1 && name[nlen - 1] == '/') name[--nlen] = 0;
        if (!safe_path(name)) die("the kiosk's payload has an unsafe path: %s", name);
        if (type == '0' || type == 0 || type == 'X') {
            int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode & 0100) ? 0700 : 0600);
            if (fd < 0) die("cannot create %s/%s: %s", dir, name, strerror(errno));
            if (type == 'X' && fsize > 0) { /* into the file's pages, then the filter undone there */
                if (ftruncate(fd, (off_t)fsize) != 0) die("cannot write %s/%s: %s", dir, name, strerror(errno));
                unsigned char *m = mmap(NULL, fsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (m == MAP_FAILED) die("cannot write %s/%s: %s", dir, name, strerror(errno));
                zread(&z, m, -1, fsize);
                e8e9(m, fsize, 0);
                if (munmap(m, fsize) != 0) die("cannot write %s/%s: %s", dir, name, strerror(errno));
            } else {
                zread(&z, NULL, fd, fsize);
            }
            if (close(fd) != 0) die("cannot write %s/%s: %s", dir, name, strerror(errno));
            append(&manifest, "f %llu %s\n", (unsigned long long)fsize, name);
            if (++files % 64 == 0) splash_pump();
        } else if (type == '5') {
            if (mkdirat(dfd, name, 0700) != 0 && errno != EEXIST) die("cannot create %s/%s: %s", dir, name, strerror(errno));
            append(&manifest, "d 0 %s\n", name);
        } else if (type == '2') {
            char target[101];
            snprintf(target, sizeof target, "%.100s", (char *)h + 157);
            if (!safe_link(name, target)) die("the kiosk's payload has an unsafe link: %s -> %s", name, target);
            if (symlinkat(target, dfd, name) != 0) die("cannot create %s/%s: %s", dir, name, strerror(errno));
            append(&manifest, "l 0 %s\n", name);
        } else {
            die("the kiosk's payload has an entry of unknown type '%c': %s", type, name);
        }
        manifest.count++;
        zread(&z, NULL, -2, (512 - fsize % 512) % 512);
    }
    char bad[PATH_MAX];
    if (!links_inside(dir, &manifest, bad, sizeof bad)) die("the kiosk's payload has an unsafe link: %s", bad);
    int fd = openat(dfd, IN_USE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) die("cannot create %s/%s: %s", dir, IN_USE, strerror(errno));
    close(fd);
    /* Every file's data on disk before the marker says the folder is complete: after a power cut the marker never
     * vouches for files the disk did not keep (ready() checks sizes, not contents). */
    if (syncfs(dfd) != 0) die("cannot write %s: %s", dir, strerror(errno));
    fd = openat(dfd, MARKER ".partial", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) die("cannot create %s/%s: %s", dir, MARKER, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) die("out of memory");
    fprintf(f, "kstub 1 %s\n", hash);
    fwrite(manifest.data, 1, manifest.len, f);
    fprintf(f, "end %lu\n", manifest.count);
    if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0) die("cannot write %s/%s: %s", dir, MARKER, strerror(errno));
    if (renameat(dfd, MARKER ".partial", dfd, MARKER) != 0) die("cannot write %s/%s: %s", dir, MARKER, strerror(errno));
    if (fsync(dfd) != 0) die("cannot write %s: %s", dir, strerror(errno)); /* the rename itself, kept */
    close(dfd);
    free(manifest.data);
    free(z.in), free(z.out);
    ZSTD_freeDCtx(z.dctx);
}

/* ---------- is a build's folder complete, and the user's alone? ---------- */

static int owned_private(const struct stat *st, mode_t not_allowed) {
    return st->st_uid == geteuid() && !(st->st_mode & not_allowed);
}

/* 1 if `dir` holds the complete build `hash`. Takes a shared lock on its in-use file, left in *in_use (kept open
 * across exec) on success. */
static int ready(const char *dir, const char *hash, int *in_use) {
    char path[PATH_MAX];
    struct stat st;
    *in_use = -1;
    join(path, dir, IN_USE);
    int lock = open(path, O_RDONLY | O_NOFOLLOW); /* no O_CLOEXEC: the kiosk keeps it */
    if (lock < 0) return 0;
    if (flock(lock, LOCK_SH) != 0) goto no;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || !owned_private(&st, 077)) goto no;
    join(path, dir, MARKER);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) goto no;
    FILE *f = fdopen(fd, "r");
    if (!f) { close(fd); goto no; }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !owned_private(&st, 022)) { fclose(f); goto no; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char expect[128];
    snprintf(expect, sizeof expect, "kstub 1 %s\n", hash);
    int ok = (n = getline(&line, &cap, f)) > 0 && strcmp(line, expect) == 0;
    unsigned long count = 0, ended = 0;
    while (ok && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') { ok = 0; break; }
        line[n - 1] = 0;
        if (strncmp(line, "end ", 4) == 0) {
            ok = strtoul(line + 4, NULL, 10) == count;
            ended = 1;
            break;
        }
        char kind = line[0];
        char *rest = line + 2, *space;
        unsigned long long size = strtoull(rest, &space, 10);
        if (n < 5 || line[1] != ' ' || *space != ' ') { ok = 0; break; }
        join(path, dir, space + 1);
        if (lstat(path, &st) != 0) { ok = 0; break; }
        if (kind == 'f') ok = S_ISREG(st.st_mode) && (unsigned long long)st.st_size == size && owned_private(&st, 022);
        else if (kind == 'd') ok = S_ISDIR(st.st_mode) && owned_private(&st, 022);
        else if (kind == 'l') ok = S_ISLNK(st.st_mode) && st.st_uid == geteuid();
        else ok = 0;
        count++;
    }
    free(line);
    fclose(f);
    if (!ok || !ended) goto no;
    join(path, dir, "kiosk");
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR)) goto no;
    *in_use = lock;
    return 1;
no:
    close(lock);
    return 0;
}

/* Remove a folder of the cache, unless a kiosk is running from it (its in-use file is locked). */
static void remove_unused(const char *app, const char *entry) {
    char path[PATH_MAX], lockpath[PATH_MAX], aside[PATH_MAX];
    join(path, app, entry);
    join(lockpath, path, IN_USE);
    int lock = open(lockpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) { close(lock); return; } /* in use */
    if (entry[0] != '.') { /* a build's folder: out of the way first, so no launch finds it half removed */
        fmt_path(aside, "%s/.old-%.16s-%d", app, entry, (int)getpid());
        if (rename(path, aside) == 0) snprintf(path, sizeof path, "%s", aside);
    }
    remove_tree(path);
    if (lock >= 0) close(lock);
}

static int is_hash(const char *name) {
    if (strlen(name) != 64) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

/* Under the lock: leftovers of interrupted unpacks, damaged folders moved aside, and other builds not in use. */
static void clean_up(const char *app, const char *keep) {
    DIR *d = opendir(app);
    if (!d) return;
    struct dirent *e;
    char names[256][80];
    int n = 0;
    while ((e = readdir(d)) && n < 256) {
        if (strcmp(e->d_name, keep) == 0) continue;
        if (strncmp(e->d_name, ".tmp-", 5) == 0 || strncmp(e->d_name, ".old-", 5) == 0 || is_hash(e->d_name))
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) remove_unused(app, names[i]);
}

/* mkdir -p, each new folder 0700. */
static void make_dirs(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) die("cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) die("cannot create %s: %s", buf, strerror(errno));
}

int main(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) die("cannot find its own file (/proc/self/exe): %s", strerror(errno));
    self[n] = 0;
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("cannot read %s: %s", self, strerror(errno));
    struct stat st;
    unsigned char t[TRAILER_SIZE];
    if (fstat(fd, &st) != 0 || st.st_size < TRAILER_SIZE ||
        pread(fd, t, TRAILER_SIZE, st.st_size - TRAILER_SIZE) != TRAILER_SIZE ||
        memcmp(t, MAGIC, 8) != 0 || memcmp(t + 56, MAGIC, 8) != 0)
        die("%s is incomplete (no payload at its end): copy the kiosk file again", self);
    uint64_t offset = le64(t + 8), size = le64(t + 16);
    if (offset + size + TRAILER_SIZE != (uint64_t)st.st_size) die("%s is damaged: copy the kiosk file again", self);
    char hash[65];
    for (int i = 0; i < 32; i++) snprintf(hash + 2 * i, 3, "%02x", t[24 + i]);

    /* The cache folder: the user's own. */
    char base[PATH_MAX], app[PATH_MAX], dir[PATH_MAX], lockpath[PATH_MAX];
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') snprintf(base, sizeof base, "%s", xdg);
    else {
        struct passwd *pw = (home && home[0] == '/') ? NULL : getpwuid(geteuid());
        if (!(home && home[0] == '/') && !(pw && pw->pw_dir)) die("no home folder: set HOME or XDG_CACHE_HOME");
        snprintf(base, sizeof base, "%s/.cache", (home && home[0] == '/') ? home : pw->pw_dir);
    }
    join(app, base, APP_DIR);
    make_dirs(app);
    if (lstat(app, &st) != 0 || !S_ISDIR(st.st_mode)) die("%s is not a folder", app);
    if (st.st_uid != geteuid())
        die("%s belongs to another user: the kiosk will not run code from it. Remove it, or set XDG_CACHE_HOME "
            "to a folder of your own", app);
    if ((st.st_mode & 077) && chmod(app, 0700) != 0) die("cannot make %s private: %s", app, strerror(errno));
    join(dir, app, hash);

    int in_use;
    if (!ready(dir, hash, &in_use)) {
        splash_open();
        join(lockpath, app, ".lock");
        int lock = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lock < 0 || flock(lock, LOCK_EX) != 0) die("cannot lock %s: %s", lockpath, strerror(errno));
        if (!ready(dir, hash, &in_use)) { /* not done by a launch we waited for */
            char tmp[PATH_MAX];
            fmt_path(tmp, "%s/.tmp-%.16s-XXXXXX", app, hash);
            if (!mkdtemp(tmp)) die("cannot create a folder in %s: %s", app, strerror(errno));
            snprintf(tmp_to_remove, sizeof tmp_to_remove, "%s", tmp);
            splash_pump();
            unpack(fd, offset, size, tmp, hash);
            struct stat old;
            if (lstat(dir, &old) == 0) { /* damaged, partial, or not private: out of the way */
                char aside[PATH_MAX];
                fmt_path(aside, "%s/.old-%.16s-%d", app, hash, (int)getpid());
                if (rename(dir, aside) != 0) die("cannot move the damaged %s aside: %s", dir, strerror(errno));
            }
            if (rename(tmp, dir) != 0) die("cannot rename %s to %s: %s", tmp, dir, strerror(errno));
            tmp_to_remove[0] = 0;
            int app_fd = open(app, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (app_fd < 0 || fsync(app_fd) != 0) die("cannot write %s: %s", app, strerror(errno)); /* the rename */
            close(app_fd);
            if (!ready(dir, hash, &in_use)) die("%s is incomplete right after unpacking it", dir);
            clean_up(app, hash);
        }
        close(lock);
        splash_close();
    }
    close(fd);

    if (!getenv("KIOSK_ENV_FILE")) { /* .env beside the file staff start, not in the cache */
        char env[PATH_MAX];
        snprintf(env, sizeof env, "%s", self);
        char *slash = strrchr(env, '/');
        snprintf(slash + 1, sizeof env - (size_t)(slash + 1 - env), ".env");
        setenv("KIOSK_ENV_FILE", env, 1);
    }
    char program[PATH_MAX];
    join(program, dir, "kiosk");
    argv[0] = program;
    execv(program, argv);
    die("cannot run %s: %s", program, strerror(errno));
}
#endif /* KSTUB_ENCODER */
