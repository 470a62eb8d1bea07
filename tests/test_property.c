/* test_property.c - a randomized property test of the books (issue 20):
 * eight threads, each a seeded random mix of allocations (cuMemAlloc, and
 * cuMemAllocAsync with cuMemFreeAsync), frees, launches of a kernel that
 * counts on its buffers, copies in and out, and VMM chunks made, mapped,
 * written and released, and trims of the default pool, under a 64 MiB cap on a
 * card of that size, in each paging mode. After every operation vpage's
 * counted bytes are at most the cap; every buffer reads back as the
 * launches left it when it is freed; at the end the device's own peak is
 * at most the cap (what stream mode keeps; the other modes count it) and
 * vpage's books equal the device's. VP_PROPERTY_OPS (operations per
 * thread, default 300: a short run in CI) and VP_PROPERTY_SEED (default:
 * the time) reproduce a run; the seed is printed. Each mode may run two
 * hours: 10^6 operations (VP_PROPERTY_OPS=125000) took 13 minutes in
 * paging-off and demand modes (run side by side on two cores) and about
 * 20 in stream mode (beside other work); the suite's own timeout bounds
 * CI's short run. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "helpers.h"

#define THREADS 8
#define BUFS 4
#define CAP_MIB 64

struct buf {
    CUdeviceptr d;
    size_t n;
    int b;         /* its pattern (helpers.h) */
    uint64_t incs; /* counts the kernel added to its first word */
};

struct thread {
    struct cu *c;
    CUfunction f;
    uint64_t seed;
    int id, ops, made;
    struct buf bufs[BUFS];
    char fault[256]; /* the first property that failed, or "" */
};

static atomic_uint_fast64_t over_cap;

static uint64_t next(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Whether buffer k reads back as its pattern plus its counts. */
static int intact(struct thread *t, struct buf *k)
{
    unsigned char *h = malloc(k->n), *want = malloc(k->n);
    int ok = h && want && t->c->cuMemcpyDtoH(h, k->d, k->n) == CUDA_SUCCESS;
    if (ok) content(want, k->b, k->incs, k->n);
    ok = ok && memcmp(h, want, k->n) == 0;
    free(h);
    free(want);
    return ok;
}

static void fault(struct thread *t, const char *what, int op)
{
    if (!t->fault[0]) snprintf(t->fault, sizeof t->fault, "thread %d, operation %d: %s", t->id, op, what);
}

static void make(struct thread *t, struct buf *k, uint64_t r, int op)
{
    size_t n = (1 + r % 4) * MiB;
    CUresult rc = t->c->cuMemAlloc(&k->d, n);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) return; /* the cap is full: a clean refusal */
    if (rc != CUDA_SUCCESS) return fault(t, "cuMemAlloc failed otherwise than out of memory", op);
    *k = (struct buf){k->d, n, t->id * 10000 + t->made++, 0};
    unsigned char *h = malloc(n);
    content(h, k->b, 0, n);
    if (t->c->cuMemcpyHtoD(k->d, h, n) != CUDA_SUCCESS) fault(t, "a copy in failed", op);
    free(h);
}

static void drop(struct thread *t, struct buf *k, int op)
{
    if (!intact(t, k)) fault(t, "a buffer did not read back as written", op);
    if (t->c->cuMemFree(k->d) != CUDA_SUCCESS) fault(t, "cuMemFree failed", op);
    k->d = 0;
}

static void async_pair(struct thread *t, uint64_t r, int op)
{
    CUdeviceptr d;
    CUresult rc = t->c->cuMemAllocAsync(&d, (1 + r % 2) * MiB, NULL);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) return;
    if (rc != CUDA_SUCCESS) return fault(t, "cuMemAllocAsync failed otherwise than out of memory", op);
    if (t->c->cuMemFreeAsync(d, NULL) != CUDA_SUCCESS) fault(t, "cuMemFreeAsync failed", op);
}

/* A VMM chunk of 2 MiB on the device: made (or refused by the cap),
 * mapped, written, read back, released. */
static void vmm_pair(struct thread *t, int op)
{
    CUmemAllocationProp prop = device_chunk(0);
    CUmemGenericAllocationHandle h;
    CUresult rc = t->c->cuMemCreate(&h, 2 * MiB, &prop, 0);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) return;
    if (rc != CUDA_SUCCESS) return fault(t, "cuMemCreate failed otherwise than out of memory", op);
    CUdeviceptr va = 0;
    if (t->c->cuMemAddressReserve(&va, 2 * MiB, 0, 0, 0) != CUDA_SUCCESS ||
        t->c->cuMemMap(va, 2 * MiB, 0, h, 0) != CUDA_SUCCESS)
        fault(t, "a VMM chunk could not be mapped", op);
    else {
        unsigned char w = (unsigned char)(t->id + 1), got = 0;
        if (t->c->cuMemsetD8(va, w, 2 * MiB) != CUDA_SUCCESS || t->c->cuMemcpyDtoH(&got, va + MiB, 1) != CUDA_SUCCESS ||
            got != w)
            fault(t, "a VMM chunk did not read back as written", op);
        if (t->c->cuMemUnmap(va, 2 * MiB) != CUDA_SUCCESS) fault(t, "a VMM chunk could not be unmapped", op);
    }
    if (va) t->c->cuMemAddressFree(va, 2 * MiB);
    if (t->c->cuMemRelease(h) != CUDA_SUCCESS) fault(t, "cuMemRelease failed", op);
}

static void trim(struct thread *t, int op)
{
    CUmemoryPool pool;
    if (t->c->cuDeviceGetMemPool(&pool, 0) != CUDA_SUCCESS || t->c->cuMemPoolTrimTo(pool, 0) != CUDA_SUCCESS)
        fault(t, "the default pool could not be trimmed", op);
}

static void one_op(struct thread *t, int op)
{
    uint64_t r = next(&t->seed);
    struct buf *k = &t->bufs[(r >> 8) % BUFS], *o = &t->bufs[(r >> 16) % BUFS];
    unsigned kind = (unsigned)(r % 100);
    if (kind < 20) {
        if (!k->d) make(t, k, r >> 24, op);
    } else if (kind < 30) {
        if (k->d) drop(t, k, op);
    } else if (kind < 80) {
        if (!k->d) return;
        CUdeviceptr other = o->d && o != k ? o->d : 0;
        launch2(t->c, t->f, k->d, other);
        k->incs++;
        if (other) o->incs++;
    } else if (kind < 90) {
        if (k->d && !intact(t, k)) fault(t, "a buffer did not read back as written", op);
    } else if (kind < 95) {
        async_pair(t, r >> 24, op);
    } else if (kind < 98) {
        vmm_pair(t, op);
    } else {
        trim(t, op);
    }
    uint64_t cur = vpage_now(0);
    if (cur > (uint64_t)CAP_MIB * MiB) atomic_fetch_add(&over_cap, 1);
}

static void *run(void *arg)
{
    struct thread *t = arg;
    for (int op = 0; op < t->ops && !t->fault[0]; op++) one_op(t, op);
    for (int i = 0; i < BUFS; i++)
        if (t->bufs[i].d) drop(t, &t->bufs[i], t->ops);
    return NULL;
}

static void property(const char *mode)
{
    pager_env(mode, CAP_MIB, "2M");
    const char *s = getenv("VP_PROPERTY_SEED"), *n = getenv("VP_PROPERTY_OPS");
    uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
    int ops = n ? atoi(n) : 300;
    fprintf(stderr, "property (%s): VP_PROPERTY_SEED=%llu VP_PROPERTY_OPS=%d\n", mode, (unsigned long long)seed, ops);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "rw:2", "rw");
    static struct thread t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct thread){.c = &c, .f = f, .seed = seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), .id = i,
                               .ops = ops};
        pthread_create(&th[i], NULL, run, &t[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) cr_assert(!t[i].fault[0], "seed %llu: %s", (unsigned long long)seed, t[i].fault);
    cr_assert_eq(atomic_load(&over_cap), 0, "seed %llu: counted bytes passed the cap %llu times",
                 (unsigned long long)seed, (unsigned long long)atomic_load(&over_cap));
    CU_OK(c.cuCtxSynchronize());
    cr_assert_leq(fake_peak(0), (uint64_t)CAP_MIB * MiB, "seed %llu: the device's own peak passed the cap",
                  (unsigned long long)seed);
    ASSERT_BOOKS_MATCH(0);
}

Test(property, the_cap_holds_and_bytes_survive_with_paging_off, .timeout = 7200) { property("off"); }
Test(property, the_cap_holds_and_bytes_survive_in_demand_mode, .timeout = 7200) { property("demand"); }
Test(property, the_cap_holds_and_bytes_survive_in_stream_mode, .timeout = 7200) { property("stream"); }
