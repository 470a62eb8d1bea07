/* weights.c - see weights.h. */
#define _GNU_SOURCE
#include "weights.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common/file.h"
#include "../common/log.h"
#include "../common/options.h"
#include "pageout.h"
#include "safetensors.h"

#define MAX_FILES 4096
#define MAX_FDS VP_WEIGHTS_MAX_FDS

enum hdr { HDR_UNREAD, HDR_OK, HDR_REJECTED, HDR_NOT_SAFETENSORS };

struct wfile {
    char path[512];
    dev_t dev;
    ino_t ino;
    uint64_t size;
    enum hdr hdr;
    const char *why; /* HDR_REJECTED: the parser's reason */
    struct vp_st_file st;
    struct bysize *bs; /* its tensors by size, then index (HDR_OK) */
    size_t next; /* staged copies: the tensor to try first (loaders go in order) */
    uint64_t compared; /* tensors compared with copies (at most MATCH_TRIES a copy) */
    int open_fds; /* tracked fds open on it now (a pread loader keeps one) */
    uint64_t given_back; /* bytes of its pages given back to the kernel after a copy */
    uint64_t give_back_ns; /* the time those calls took */
};

/* cow: a private mapping that may be written (torch's from_file maps
 * weights PROT_READ|PROT_WRITE, MAP_PRIVATE): its pages hold the file's
 * bytes until written, which pagemap tells (still_file_pages). */
struct hmap { uintptr_t addr, len; uint64_t off; int file; int cow; };
struct bysize { uint64_t size; size_t i; };

/* Most tensors of a copy's size compared with it, from the one after the
 * last match: a copy's cost does not grow with a file's tensor count
 * (loaders copy in order; one out of order by more is not named). */
#define MATCH_TRIES 8
struct copy { uint64_t dptr, len, off; int file; };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct wfile *files[MAX_FILES];
static int nfiles;
static struct hmap *maps;
static size_t nmaps, capmaps;
static struct copy *copies;
static size_t ncopies, capcopies;
static atomic_int active;
static atomic_short fd_file[MAX_FDS]; /* file index + 1 for tracked fds */
static atomic_uint_fast64_t rejected_msgs;
static int (*_Atomic holder)(uint64_t dptr); /* vp_weights_give_back_pages */

/* This thread holds mu, or is taking or leaving it: a signal handler
 * that runs on it (and opens, closes or maps a file) must not take mu
 * again, or the thread waits for itself. Set before the lock is taken and
 * cleared after it is left, so no moment between is uncovered. */
static __thread volatile sig_atomic_t held;

static void lock(void)
{
    held = 1;
    pthread_mutex_lock(&mu);
}

static void unlock(void)
{
    pthread_mutex_unlock(&mu);
    held = 0;
}

int vp_weights_active(void) { return atomic_load_explicit(&active, memory_order_relaxed); }

/* ---- names ---- */

int vp_weights_wanted(const char *path)
{
    char own[VP_PATTERNS_BYTES];
    const char *pats = vp_weight_patterns(own);
    if (!pats || !*pats) return 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char pat[VP_PATTERN_MAX];
    for (const char *p = pats; *p;) {
        size_t n = strcspn(p, ",");
        if (n && n < sizeof pat) {
            memcpy(pat, p, n);
            pat[n] = '\0';
            if (fnmatch(pat, base, 0) == 0) return 1;
        }
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

/* ---- files and mappings ---- */

static int file_index_locked(const struct stat *st, int fd)
{
    for (int i = 0; i < nfiles; i++)
        if (files[i]->dev == st->st_dev && files[i]->ino == st->st_ino) return i;
    if (nfiles == MAX_FILES) return -1;
    struct wfile *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = (uint64_t)st->st_size;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, f->path, sizeof f->path - 1);
    f->path[n > 0 ? n : 0] = '\0';
    files[nfiles] = f;
    return nfiles++;
}

void vp_weights_opened(int fd)
{
    struct stat st;
    if (held || fd < 0 || fd >= MAX_FDS || fstat(fd, &st) || !S_ISREG(st.st_mode)) return;
    lock();
    int i = file_index_locked(&st, fd);
    if (i >= 0) {
        files[i]->open_fds++;
        atomic_store(&fd_file[fd], (short)(i + 1));
    }
    unlock();
    if (i >= 0) atomic_store(&active, 1);
}

int vp_weights_tracked(int fd)
{
    return fd >= 0 && fd < MAX_FDS && atomic_load_explicit(&fd_file[fd], memory_order_relaxed) != 0;
}

void vp_weights_closed(int fd)
{
    if (!vp_weights_tracked(fd)) return;
    if (held) { /* a signal handler on a thread inside the books: the fd untracked, its count left */
        atomic_store(&fd_file[fd], 0);
        return;
    }
    lock();
    int i = atomic_exchange(&fd_file[fd], 0) - 1;
    if (i >= 0 && files[i]->open_fds > 0) files[i]->open_fds--;
    unlock();
}

static int push(void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * size);
    if (!p) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

void vp_weights_mapped(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (held || fd < 0 || fd >= MAX_FDS) return;
    /* a writable shared mapping writes the file itself: not a stable source */
    if ((prot & PROT_WRITE) && !(flags & MAP_PRIVATE)) return;
    int fi = atomic_load_explicit(&fd_file[fd], memory_order_relaxed) - 1;
    if (fi < 0) return;
    lock();
    if (push((void **)&maps, &nmaps, &capmaps, sizeof *maps) == 0)
        maps[nmaps++] = (struct hmap){(uintptr_t)addr, len, (uint64_t)off, fi, (prot & PROT_WRITE) != 0};
    unlock();
    atomic_store(&active, 1);
}

/* Drops every mapping that overlaps [addr, addr+len). */
static void drop_maps(uintptr_t a, size_t len)
{
    if (held || !vp_weights_active()) return;
    lock();
    for (size_t i = 0; i < nmaps;) {
        if (maps[i].addr < a + len && a < maps[i].addr + maps[i].len) maps[i] = maps[--nmaps];
        else i++;
    }
    unlock();
}

void vp_weights_unmapped(void *addr, size_t len) { drop_maps((uintptr_t)addr, len); }

void vp_weights_protected(void *addr, size_t len, int prot)
{
    if (held || !(prot & PROT_WRITE) || !vp_weights_active()) return;
    uintptr_t a = (uintptr_t)addr;
    lock(); /* made writable: from now on its pages must be checked */
    for (size_t i = 0; i < nmaps; i++)
        if (maps[i].addr < a + len && a < maps[i].addr + maps[i].len) maps[i].cow = 1;
    unlock();
}

/* True when no page of [a, a+n) has been written privately: each is either
 * not yet faulted in or still the file's page (pagemap bit 61). A page
 * written in a private mapping becomes anonymous (bit 61 clear, or swapped). */
static int still_file_pages(uintptr_t a, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t first = a / (uintptr_t)ps, last = (a + n - 1) / (uintptr_t)ps;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint64_t ent[512];
    int clean = 1;
    for (uintptr_t p = first; p <= last && clean;) {
        size_t k = last - p + 1 < 512 ? last - p + 1 : 512;
        long got = syscall(SYS_pread64, fd, ent, k * 8, (off_t)(p * 8));
        if (got != (long)(k * 8)) { clean = 0; break; }
        for (size_t i = 0; i < k; i++) {
            int present = (ent[i] >> 63) & 1, swapped = (ent[i] >> 62) & 1, file = (ent[i] >> 61) & 1;
            if (swapped || (present && !file)) { clean = 0; break; }
        }
        p += k;
    }
    vp_file_close(fd);
    return clean;
}

/* ---- the header, read once, at the first copy out of the file ---- */

static int by_size(const void *x, const void *y)
{
    const struct bysize *a = x, *b = y;
    if (a->size != b->size) return a->size < b->size ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* f->bs from its parsed tensors. Returns 0, or -1 (out of memory, said in
 * f->why). */
static int index_sizes(struct wfile *f)
{
    f->bs = malloc((f->st.ntensors ? f->st.ntensors : 1) * sizeof *f->bs);
    if (!f->bs) {
        vp_st_free(&f->st);
        f->why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < f->st.ntensors; i++) f->bs[i] = (struct bysize){f->st.t[i].end - f->st.t[i].begin, i};
    qsort(f->bs, f->st.ntensors, sizeof *f->bs, by_size);
    return 0;
}

/* The first entry of f->bs at or after (size, i), in its order. */
static size_t lower_bound(const struct wfile *f, uint64_t size, size_t i)
{
    const struct bysize key = {size, i};
    size_t lo = 0, hi = f->st.ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (by_size(&f->bs[mid], &key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The first entry of f->bs of size; sets *count to the entries of that
 * size and *rot to where, among them, `from` falls. */
static size_t size_range(const struct wfile *f, uint64_t size, size_t from, size_t *count, size_t *rot)
{
    size_t first = lower_bound(f, size, 0);
    size_t end = size == UINT64_MAX ? f->st.ntensors : lower_bound(f, size + 1, 0);
    *count = end - first;
    *rot = lower_bound(f, size, from) - first;
    return first;
}

/* The k-th tensor (k < MATCH_TRIES and < the count) of size n to try for
 * a copy into f: from the one after the last match, around. */
static const struct vp_st_tensor *candidate(const struct wfile *f, size_t first, size_t count, size_t rot, size_t k,
                                            size_t *index)
{
    *index = f->bs[first + (rot + k) % count].i;
    return &f->st.t[*index];
}

/* Read from the file, never from the program's mapping: a file cut short
 * under it would raise SIGBUS in vpage's hook. */
static void read_header(struct wfile *f)
{
    f->hdr = HDR_NOT_SAFETENSORS;
    const char *suffix = ".safetensors";
    size_t pl = strlen(f->path), sl = strlen(suffix);
    if (pl < sl || strcmp(f->path + pl - sl, suffix) != 0) return;
    uint8_t lenbuf[8];
    char *json = NULL;
    uint64_t n = 0;
    /* the raw system calls: vpage's own reads must not reach its hooks */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || syscall(SYS_pread64, fd, lenbuf, 8, 0) != 8) goto bad_io;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenbuf[i];
    f->why = "header length past the end of the file";
    if (n > VP_ST_MAX_HEADER || n + 8 > f->size) goto rejected;
    json = malloc(n ? n : 1);
    if (!json || syscall(SYS_pread64, fd, json, n, 8) != (long)n) goto bad_io;
    if (vp_st_parse(json, n, f->size - 8 - n, &f->st, &f->why) == 0 && index_sizes(f) == 0) f->hdr = HDR_OK;
    else goto rejected;
    goto out;
bad_io:
    f->why = "could not read the header";
rejected:
    f->hdr = HDR_REJECTED;
    vp_log_limited(VP_WARN, &rejected_msgs, "%s: not a valid safetensors header (%s): tracked without tensor names",
                   f->path, f->why);
out:
    free(json);
    if (fd >= 0) vp_file_close(fd);
}

/* ---- device copies ---- */

/* First record with end > d. */
static size_t first_after(uint64_t d)
{
    size_t lo = 0, hi = ncopies;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (copies[mid].dptr + copies[mid].len <= d) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Removes [d, d+n) from the copy records, splitting where needed. */
static void cut_locked(uint64_t d, uint64_t n)
{
    size_t i = first_after(d);
    while (i < ncopies && copies[i].dptr < d + n) {
        struct copy c = copies[i];
        uint64_t cend = c.dptr + c.len;
        int keep_left = c.dptr < d, keep_right = cend > d + n;
        if (keep_left && keep_right) {
            if (push((void **)&copies, &ncopies, &capcopies, sizeof *copies)) {
                copies[i].len = d - c.dptr; /* no room to split: keep the left part only */
                return;
            }
            memmove(&copies[i + 1], &copies[i], (ncopies - i) * sizeof *copies);
            ncopies++;
            copies[i].len = d - c.dptr;
            copies[i + 1] = (struct copy){d + n, cend - (d + n), c.off + (d + n - c.dptr), c.file};
            return;
        }
        if (keep_left) { copies[i].len = d - c.dptr; i++; continue; }
        if (keep_right) {
            copies[i] = (struct copy){d + n, cend - (d + n), c.off + (d + n - c.dptr), c.file};
            return;
        }
        memmove(&copies[i], &copies[i + 1], (ncopies - i - 1) * sizeof *copies);
        ncopies--;
    }
}

void vp_weights_written(uint64_t dst, size_t n)
{
    if (!vp_weights_active() || !n) return;
    lock();
    cut_locked(dst, n);
    unlock();
}

/* A copy from memory that is no mapping of a weight file (a pinned staging
 * buffer, a buffer filled by read): if its bytes equal a whole tensor of a
 * mapped safetensors file, it is a copy of that tensor. Candidates are the
 * tensors of exactly n bytes inside a mapping, tried from the one after the
 * last match; a byte-for-byte comparison decides. Called with mu held. */
/* Do the file's bytes at off equal src[0..n)? Read with the raw system
 * calls, in 1 MiB pieces. */
static int file_equals(const struct wfile *f, uint64_t off, const uint8_t *src, size_t n)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    size_t piece = n < (1u << 20) ? n : (1u << 20);
    uint8_t *buf = malloc(piece ? piece : 1);
    int same = buf != NULL;
    for (size_t done = 0; same && done < n;) {
        size_t k = n - done < piece ? n - done : piece;
        same = syscall(SYS_pread64, fd, buf, k, (off_t)(off + done)) == (long)k && !memcmp(buf, src + done, k);
        done += k;
    }
    free(buf);
    vp_file_close(fd);
    return same;
}

/* The same for files a loader keeps open without mapping them (safetensors'
 * pread backend reads each tensor into a temporary buffer). */
static int match_read(const uint8_t *src, size_t n, int *file, uint64_t *off)
{
    for (int fi = 0; fi < nfiles; fi++) {
        struct wfile *f = files[fi];
        if (!f->open_fds) continue;
        if (f->hdr == HDR_UNREAD) read_header(f);
        if (f->hdr != HDR_OK) continue;
        size_t count, rot, first = size_range(f, n, f->next, &count, &rot), i;
        for (size_t k = 0; k < count && k < MATCH_TRIES; k++) {
            const struct vp_st_tensor *t = candidate(f, first, count, rot, k, &i);
            f->compared++;
            if (!file_equals(f, t->begin, src, n)) continue;
            f->next = i + 1;
            *file = fi;
            *off = t->begin;
            return 1;
        }
    }
    return 0;
}

/* Do the n bytes of the program's mapping at there equal src? Read with
 * process_vm_readv, which answers EFAULT where a plain read would raise
 * SIGBUS (the file cut short under the mapping: a re-save while the
 * program runs), in 1 MiB pieces. */
static int mapped_equals(const uint8_t *there, const uint8_t *src, size_t n)
{
    size_t piece = n < (1u << 20) ? n : (1u << 20);
    uint8_t *buf = malloc(piece ? piece : 1);
    int same = buf != NULL;
    for (size_t done = 0; same && done < n;) {
        size_t k = n - done < piece ? n - done : piece;
        struct iovec local = {buf, k}, remote = {(void *)(there + done), k};
        same = process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)k && !memcmp(buf, src + done, k);
        done += k;
    }
    free(buf);
    return same;
}

static int match_staged(const uint8_t *src, size_t n, struct hmap **mm, uint64_t *off)
{
    for (size_t mi = nmaps; mi-- > 0;) {
        struct hmap *m = &maps[mi];
        struct wfile *f = files[m->file];
        if (f->hdr == HDR_UNREAD) read_header(f);
        if (f->hdr != HDR_OK || !f->st.ntensors) continue;
        size_t count, rot, first = size_range(f, n, f->next, &count, &rot), i;
        for (size_t k = 0; k < count && k < MATCH_TRIES; k++) {
            const struct vp_st_tensor *t = candidate(f, first, count, rot, k, &i);
            if (t->begin < m->off || t->end - m->off > m->len) continue;
            f->compared++;
            const uint8_t *there = (const uint8_t *)(m->addr + (t->begin - m->off));
            if (m->cow && !still_file_pages((uintptr_t)there, n)) continue;
            if (!mapped_equals(there, src, n < 64 ? n : 64) || !mapped_equals(there, src, n)) continue;
            f->next = i + 1;
            *mm = m;
            *off = t->begin;
            return 1;
        }
    }
    return 0;
}

/* The thread of pageout.c gave bytes of file's pages back in ns. */
static void given_back(int file, uint64_t bytes, uint64_t ns)
{
    lock();
    if (file >= 0 && file < nfiles) { /* vp_weights_forget may have emptied the books meanwhile */
        files[file]->given_back += bytes;
        files[file]->give_back_ns += ns;
    }
    unlock();
}

void vp_weights_give_back_pages(int (*holds)(uint64_t dptr))
{
    vp_pageout_init(given_back);
    atomic_store(&holder, holds);
}

/* After a copy straight out of file's mapping at [s, s+n) into dst: its
 * pages given back, in the background, when vpage keeps dst's bytes
 * itself. Without the lock (the holder takes the pager's). */
static void maybe_give_back(int file, uint64_t dst, uintptr_t s, size_t n)
{
    int (*holds)(uint64_t) = atomic_load_explicit(&holder, memory_order_relaxed);
    if (holds && holds(dst)) vp_pageout_queue(s, n, file);
}

void vp_weights_copied(uint64_t dst, const void *src, size_t n, int host_src)
{
    if (!vp_weights_active() || !n) return;
    uintptr_t s = (uintptr_t)src;
    lock();
    cut_locked(dst, n);
    const struct hmap *m = NULL;
    for (size_t i = 0; i < nmaps; i++)
        if (maps[i].addr <= s && s + n <= maps[i].addr + maps[i].len) { m = &maps[i]; break; }
    if (m && m->cow && !still_file_pages(s, n)) m = NULL; /* written since it was mapped */
    uint64_t off = 0;
    int direct = m != NULL; /* straight out of the mapping at s */
    if (m) {
        struct wfile *f = files[m->file];
        if (f->hdr == HDR_UNREAD) read_header(f); /* once per file, under the lock */
        off = m->off + (s - m->addr);
    } else {
        struct hmap *hm = NULL;
        for (size_t i = 0; i < nmaps && !hm; i++) /* the source lies in no mapping at all */
            if (maps[i].addr < s + n && s < maps[i].addr + maps[i].len) hm = &maps[i];
        if (!hm && host_src && match_staged((const uint8_t *)src, n, &hm, &off)) m = hm;
    }
    int file = m ? m->file : -1;
    if (!m && (!host_src || !match_read((const uint8_t *)src, n, &file, &off))) file = -1;
    if (file >= 0) {
        size_t i = first_after(dst);
        if (push((void **)&copies, &ncopies, &capcopies, sizeof *copies) == 0) {
            memmove(&copies[i + 1], &copies[i], (ncopies - i) * sizeof *copies);
            copies[i] = (struct copy){dst, n, off, file};
            ncopies++;
        }
    }
    unlock();
    if (direct) maybe_give_back(file, dst, s, n);
}

/* ---- what is known ---- */

uint64_t vp_weights_clean_bytes(uint64_t dptr, uint64_t n)
{
    if (!vp_weights_active()) return 0;
    uint64_t sum = 0, end = dptr + n;
    lock();
    for (size_t i = first_after(dptr); i < ncopies && copies[i].dptr < end; i++) {
        uint64_t a = copies[i].dptr > dptr ? copies[i].dptr : dptr;
        uint64_t b = copies[i].dptr + copies[i].len < end ? copies[i].dptr + copies[i].len : end;
        sum += b - a;
    }
    unlock();
    return sum;
}

int vp_weights_describe(uint64_t dptr, char *buf, size_t len)
{
    if (len) buf[0] = '\0';
    if (!vp_weights_active()) return 0;
    int found = 0;
    lock();
    size_t i = first_after(dptr);
    if (i < ncopies && copies[i].dptr <= dptr) {
        const struct copy *c = &copies[i];
        const struct wfile *f = files[c->file];
        uint64_t off = c->off + (dptr - c->dptr);
        const struct vp_st_tensor *t = f->hdr == HDR_OK ? vp_st_find(&f->st, off) : NULL;
        snprintf(buf, len, "%s:%llu:%s", f->path, (unsigned long long)off, t ? t->name : "");
        found = 1;
    }
    unlock();
    return found;
}

void vp_weights_report(int json, void (*emit)(void *ctx, const char *fmt, ...), void *ctx)
{
    vp_pageout_drain(); /* the pages given back, counted whole */
    lock();
    if (json) emit(ctx, "[");
    int first = 1;
    for (int fi = 0; fi < nfiles; fi++) {
        const struct wfile *f = files[fi];
        uint64_t bytes = 0, whole = 0;
        for (size_t i = 0; i < ncopies; i++) {
            if (copies[i].file != fi) continue;
            bytes += copies[i].len;
            if (f->hdr != HDR_OK) continue;
            uint64_t a = copies[i].off, b = a + copies[i].len;
            for (size_t k = 0; k < f->st.ntensors; k++) /* tensors wholly inside this copy */
                if (f->st.t[k].begin >= a && f->st.t[k].end <= b && f->st.t[k].end > f->st.t[k].begin) whole++;
        }
        int mapped = 0;
        for (size_t i = 0; i < nmaps; i++) mapped |= maps[i].file == fi;
        if (!bytes && !mapped && f->hdr == HDR_UNREAD) continue; /* opened, never used for a copy */
        const char *hdr = f->hdr == HDR_OK ? "ok" : f->hdr == HDR_REJECTED ? "rejected"
                          : f->hdr == HDR_NOT_SAFETENSORS ? "not safetensors" : "unread";
        size_t nt = f->hdr == HDR_OK ? f->st.ntensors : 0;
        if (!json) {
            emit(ctx, "  %s: %zu tensors (header %s), %llu of them and %llu bytes on the device as clean copies; "
                 "%llu bytes of its pages given back\n", f->path, nt, hdr, (unsigned long long)whole,
                 (unsigned long long)bytes, (unsigned long long)f->given_back);
            continue;
        }
        emit(ctx, "%s{\"path\": \"", first ? "" : ", ");
        for (const char *p = f->path; *p; p++) /* paths: escape what JSON needs */
            emit(ctx, (*p == '"' || *p == '\\') ? "\\%c" : ((unsigned char)*p < 0x20 ? "?" : "%c"), *p);
        emit(ctx, "\", \"size\": %llu, \"header\": \"%s\", \"tensors\": %zu, \"device_clean_bytes\": %llu, "
                  "\"tensors_on_device\": %llu, \"tensors_compared\": %llu, \"pages_given_back\": %llu, "
                  "\"give_back_ns\": %llu}",
             (unsigned long long)f->size, hdr, nt, (unsigned long long)bytes, (unsigned long long)whole,
             (unsigned long long)f->compared, (unsigned long long)f->given_back, (unsigned long long)f->give_back_ns);
        first = 0;
    }
    if (json) emit(ctx, "]");
    unlock();
}

void vp_weights_reset_child(void)
{
    vp_pageout_reset_child();
    ncopies = 0; /* device memory was the parent's; files and mappings are inherited */
}

void vp_weights_forget(void)
{
    vp_pageout_drain();
    lock();
    for (int i = 0; i < nfiles; i++) {
        vp_st_free(&files[i]->st); /* zeroed when not parsed */
        free(files[i]->bs);
        free(files[i]);
        files[i] = NULL;
    }
    nfiles = 0;
    nmaps = ncopies = 0;
    for (int fd = 0; fd < MAX_FDS; fd++) atomic_store_explicit(&fd_file[fd], 0, memory_order_relaxed);
    atomic_store(&active, 0);
    unlock();
}

void vp_weights_lock(void) { lock(); }
void vp_weights_unlock(void) { unlock(); }
