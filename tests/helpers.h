/* helpers.h - shared by the Criterion suites that run under the preload. */
#ifndef VPAGE_TESTS_HELPERS_H
#define VPAGE_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* One test per way a program reaches the driver. */
#define TEST_EACH_WAY(suite, name)                                           \
    static void name##_body(enum way w);                                     \
    Test(suite, name##_procaddr) { name##_body(WAY_PROCADDR); }              \
    Test(suite, name##_dlsym) { name##_body(WAY_DLSYM); }                    \
    Test(suite, name##_linked) { name##_body(WAY_LINKED); }                  \
    static void name##_body(enum way w)

#define CU_OK(call) cr_assert_eq((call), CUDA_SUCCESS, "%s failed", #call)

/* vpage's count must equal what the fake device holds. */
#define ASSERT_BOOKS_MATCH(dev)                                                             \
    cr_assert_eq(vpage_now(dev), fake_used(dev), "device %d: vpage counts %llu, device holds %llu", \
                 (dev), (unsigned long long)vpage_now(dev), (unsigned long long)fake_used(dev))

static inline void load_or_die(struct cu *c, enum way w)
{
    cr_assert_eq(cu_load(c, w), 0, "cannot load the driver via %s", way_name(w));
}

/* stderr capture into a temporary file (vpage writes with write(2)). */
struct capture {
    int saved, fd;
    char path[64];
};

static inline void capture_begin(struct capture *k)
{
    strcpy(k->path, "/tmp/vpage-test-XXXXXX");
    k->fd = mkstemp(k->path);
    cr_assert(k->fd >= 0);
    k->saved = dup(2);
    dup2(k->fd, 2);
}

/* Returns what was written to stderr (static buffer). */
static inline const char *capture_end(struct capture *k)
{
    static char buf[16384];
    dup2(k->saved, 2);
    close(k->saved);
    ssize_t n = pread(k->fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(k->fd);
    unlink(k->path);
    return buf;
}

/* ---- the pager suites (test_paging.c, test_stream.c) ---- */

/* VPAGE_PAGING=mode under a cap of cap_mib on a card of the same size,
 * pieces/chunks of chunk bytes. */
static inline void pager_env(const char *mode, int cap_mib, const char *chunk)
{
    char v[32];
    snprintf(v, sizeof v, "%dM", cap_mib);
    setenv("VPAGE_PAGING", mode, 1);
    setenv("VPAGE_CAP", v, 1);
    setenv("VPAGE_CHUNK", chunk, 1);
    snprintf(v, sizeof v, "%llu", (unsigned long long)cap_mib << 20);
    setenv("FAKE_CUDA_MEM", v, 1);
}

/* A pool of the program's own on device 0: under paging its allocations
 * stay the driver's (pager/apool.h), memory that cannot be paged. */
static inline CUmemoryPool own_pool(struct cu *c)
{
    CUmemPoolProps props = {0};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    CUmemoryPool pool;
    CU_OK(c->cuMemPoolCreate(&pool, &props));
    return pool;
}

/* What cuMemCreate takes for device memory on dev (PyTorch's expandable
 * segments, NCCL). */
static inline CUmemAllocationProp device_chunk(int dev)
{
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED, .location = {CU_MEM_LOCATION_TYPE_DEVICE, dev}};
    return prop;
}

/* A counter the fake driver exports (fake_cuda_*). */
static inline uint64_t fake_u64(const char *name)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(h);
    uint64_t (*f)(void) = (uint64_t (*)(void))dlsym(h, name);
    cr_assert_not_null(f, "%s", name);
    return f();
}

/* vpage's stats as JSON (static buffer). */
static inline const char *stats(void)
{
    static char buf[65536];
    size_t (*f)(char *, size_t) = (size_t(*)(char *, size_t))dlsym(RTLD_DEFAULT, "vpage_stats_json");
    cr_assert_not_null(f);
    cr_assert_lt(f(buf, sizeof buf), sizeof buf);
    return buf;
}

/* A number from the paging section of the stats ("bytes_in" ...). */
static inline uint64_t paging_stat(const char *name)
{
    const char *j = strstr(stats(), "\"paging\":");
    cr_assert_not_null(j);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(j, key);
    cr_assert_not_null(p, "no %s in %s", name, j);
    return strtoull(p + strlen(key), NULL, 10);
}

static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

static inline void sleep_ms(int ms) { sleep_us(ms * 1000L); }

/* A fake kernel from a text image ("name:nparams"). */
static inline CUfunction kernel(struct cu *c, const char *image, const char *name)
{
    CUmodule mod;
    CU_OK(c->cuModuleLoadData(&mod, image));
    CUfunction f;
    CU_OK(c->cuModuleGetFunction(&f, mod, name));
    return f;
}

static inline void launch2(struct cu *c, CUfunction f, CUdeviceptr a, CUdeviceptr b)
{
    void *args[2] = {&a, &b};
    CU_OK(c->cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
}

/* Buffers with a pattern of their own, to find bytes lost or overwritten. */
/* Byte i of buffer b's pattern. */
static inline unsigned char pat(int b, size_t i) { return (unsigned char)(b * 37 + i * 7 + (i >> 12)); }

/* n bytes of buffer b's pattern into h, its first word plus inc (what
 * inc increments by rw kernels leave). */
static inline void content(unsigned char *h, int b, uint64_t inc, size_t n)
{
    for (size_t i = 0; i < n; i++) h[i] = pat(b, i);
    uint64_t w;
    memcpy(&w, h, 8);
    w += inc;
    memcpy(h, &w, 8);
}

static inline void fill(struct cu *c, CUdeviceptr d, int b, size_t n)
{
    unsigned char *h = malloc(n);
    content(h, b, 0, n);
    CU_OK(c->cuMemcpyHtoD(d, h, n));
    free(h);
}

/* Checks buffer b: its first 8 bytes are the pattern's plus incs, the rest
 * is the pattern. */
static inline void check(struct cu *c, CUdeviceptr d, int b, size_t n, uint64_t incs)
{
    unsigned char *h = malloc(n);
    CU_OK(c->cuMemcpyDtoH(h, d, n));
    uint64_t first, want;
    unsigned char p0[8];
    for (int i = 0; i < 8; i++) p0[i] = pat(b, (size_t)i);
    memcpy(&want, p0, 8);
    memcpy(&first, h, 8);
    cr_assert_eq(first, want + incs, "buffer %d: counter %llu, want %llu", b, (unsigned long long)(first - want),
                 (unsigned long long)incs);
    for (size_t i = 8; i < n; i++)
        if (h[i] != pat(b, i)) cr_assert_fail("buffer %d: byte %zu is %u, want %u", b, i, h[i], pat(b, i));
    free(h);
}

#endif
