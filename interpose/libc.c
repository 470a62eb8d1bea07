/* libc.c - the C library calls that tell vpage about weight files.
 *
 * open/openat (and their 64 names, and the fortified __open_2 family),
 * close, dup/dup2/dup3, close_range, fclose, mmap/mmap64, munmap, mprotect.
 * Each calls the real function first and then, only for a file whose name
 * matches VPAGE_WEIGHT_FILES (open) or an fd/range already tracked (the
 * rest), tells books/weights. For every other file the added cost is a
 * pattern match on open and one array load elsewhere. These run in every
 * process the preload reaches, CUDA or not, before vpage has started: they
 * touch nothing but the weights tables.
 */
#undef _FILE_OFFSET_BITS /* define open and open64 as themselves */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "../common/vp.h"
#include "../books/weights.h"
#include "../driver/driver.h"

#define REAL(name, type)                                                                 \
    static _Atomic(type) real_##name;                                                    \
    static type get_##name(void)                                                         \
    {                                                                                    \
        type f = atomic_load_explicit(&real_##name, memory_order_acquire);              \
        if (vp_likely(f)) return f;                                                      \
        f = (type)vp_dlsym_real(RTLD_NEXT, #name);                                       \
        atomic_store_explicit(&real_##name, f, memory_order_release);                   \
        return f;                                                                        \
    }

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*close_fn)(int);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef int (*fclose_fn)(FILE *);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef void *(*mmap64_fn)(void *, size_t, int, int, int, off64_t);
typedef int (*munmap_fn)(void *, size_t);
typedef int (*mprotect_fn)(void *, size_t, int);

REAL(open, open_fn)
REAL(open64, open_fn)
REAL(openat, openat_fn)
REAL(openat64, openat_fn)
REAL(close, close_fn)
REAL(__open_2, open2_fn)
REAL(__open64_2, open2_fn)
REAL(__openat_2, openat2_fn)
REAL(__openat64_2, openat2_fn)
REAL(dup, dup_fn)
REAL(dup2, dup2_fn)
REAL(dup3, dup3_fn)
REAL(close_range, close_range_fn)
REAL(fclose, fclose_fn)
REAL(mmap, mmap_fn)
REAL(mmap64, mmap64_fn)
REAL(munmap, munmap_fn)
REAL(mprotect, mprotect_fn)

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

static int opened(int fd, const char *path, int flags)
{
    if (fd >= 0 && (flags & O_ACCMODE) == O_RDONLY && vp_weights_wanted(path)) vp_weights_opened(fd);
    return fd;
}

/* open, open64, openat, openat64: the same but for the real function and
 * its arguments (ARGS: the real call's, mode last). */
#define OPEN_HOOK(name, PARAMS, ARGS)                                       \
    VP_EXPORT int name PARAMS                                               \
    {                                                                       \
        va_list ap;                                                         \
        va_start(ap, flags);                                                \
        mode_t mode = mode_arg(flags, ap);                                  \
        va_end(ap);                                                         \
        return opened(get_##name() ARGS, path, flags);                      \
    }

OPEN_HOOK(open, (const char *path, int flags, ...), (path, flags, mode))
OPEN_HOOK(open64, (const char *path, int flags, ...), (path, flags, mode))
OPEN_HOOK(openat, (int dirfd, const char *path, int flags, ...), (dirfd, path, flags, mode))
OPEN_HOOK(openat64, (int dirfd, const char *path, int flags, ...), (dirfd, path, flags, mode))

/* The fortified opens (_FORTIFY_SOURCE, open without O_CREAT); glibc
 * declares them only under fortification. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
VP_EXPORT int __open_2(const char *path, int flags) { return opened(get___open_2()(path, flags), path, flags); }
VP_EXPORT int __open64_2(const char *path, int flags) { return opened(get___open64_2()(path, flags), path, flags); }
VP_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return opened(get___openat_2()(dirfd, path, flags), path, flags);
}
VP_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return opened(get___openat64_2()(dirfd, path, flags), path, flags);
}

VP_EXPORT int close(int fd)
{
    vp_weights_closed(fd);
    return get_close()(fd);
}

/* Every other way an fd stops naming its file, or another fd starts to:
 * the books follow, so a reused fd number is never taken for the weight
 * file it named before. */
static int duplicated(int fd, int from)
{
    if (fd >= 0 && vp_weights_tracked(from)) vp_weights_opened(fd);
    return fd;
}

VP_EXPORT int dup(int old) { return duplicated(get_dup()(old), old); }

VP_EXPORT int dup2(int old, int fd)
{
    int r = get_dup2()(old, fd);
    if (r < 0 || old == fd) return r; /* the same fd: nothing changed */
    vp_weights_closed(fd);
    return duplicated(r, old);
}

VP_EXPORT int dup3(int old, int fd, int flags)
{
    int r = get_dup3()(old, fd, flags);
    if (r < 0) return r;
    vp_weights_closed(fd);
    return duplicated(r, old);
}

VP_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    int r = get_close_range()(first, last, flags);
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        for (unsigned fd = first; fd <= last && fd < (unsigned)VP_WEIGHTS_MAX_FDS; fd++) vp_weights_closed((int)fd);
    return r;
}

VP_EXPORT int fclose(FILE *f)
{
    /* closed by the C library from inside, past close(); untracked first,
     * as close() does: once closed, another thread's open may take the
     * number (fclose releases the stream even when it fails) */
    vp_weights_closed(f ? fileno(f) : -1);
    return get_fclose()(f);
}

VP_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = get_mmap()(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd >= 0) vp_weights_mapped(p, len, prot, flags, fd, off);
    return p;
}

VP_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    void *p = get_mmap64()(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd >= 0) vp_weights_mapped(p, len, prot, flags, fd, (off_t)off);
    return p;
}

VP_EXPORT int munmap(void *addr, size_t len)
{
    vp_weights_unmapped(addr, len);
    return get_munmap()(addr, len);
}

VP_EXPORT int mprotect(void *addr, size_t len, int prot)
{
    int rc = get_mprotect()(addr, len, prot);
    if (rc == 0) vp_weights_protected(addr, len, prot);
    return rc;
}
