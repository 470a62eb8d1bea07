/* test_apool.c - pager/apool.h on the fake driver: under paging,
 * cuMemAllocAsync from the default pool is served from paged memory
 * through a cache; blocks keep their bytes while pieces move, a freed block
 * is taken again at once on its stream and elsewhere only once its work
 * completed, small blocks share segments, and the cache gives memory back
 * at a trim and before the paged limit refuses. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "../pager/apool.h"
#include "helpers.h"

static CUmemoryPool default_pool(struct cu *c)
{
    CUmemoryPool p;
    CU_OK(c->cuDeviceGetMemPool(&p, 0));
    return p;
}

TEST_EACH_WAY(apool, default_pool_allocations_are_streamed_and_keep_their_bytes_through_moves)
{
    pager_env("stream", 64, "4M");
    struct cu c;
    load_or_die(&c, w);
    CUfunction f = kernel(&c, "rw:2", "rw");
    enum { N = 8 };
    CUdeviceptr b[N];
    for (int i = 0; i < N; i++) { /* four times the cap */
        CU_OK(c.cuMemAllocAsync(&b[i], 32 * MiB, NULL));
        fill(&c, b[i], i, 32 * MiB);
    }
    cr_assert_eq(fake_used(0), 0, "nothing resident before a kernel touches it");
    cr_assert_eq(paging_stat("streamed"), N * 32 * MiB, "%s", stats());
    cr_assert_eq(paging_stat("async_made"), N, "%s", stats());
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < N; i++) {
            launch2(&c, f, b[i], 0);
            sleep_ms(2);
        }
    cr_assert_gt(paging_stat("moves_out"), 0, "%s", stats());
    cr_assert_leq(fake_peak(0), 64 * MiB, "the device never held more than the cap");
    for (int i = 0; i < N; i++) check(&c, b[i], i, 32 * MiB, 3);
    for (int i = 0; i < N; i++) CU_OK(c.cuMemFreeAsync(b[i], NULL));
    cr_assert_eq(paging_stat("async_cached"), N * 32 * MiB, "freed blocks stay in the cache");
    CU_OK(c.cuMemPoolTrimTo(default_pool(&c), 0));
    cr_assert_eq(paging_stat("async_backing"), 0, "%s", stats());
    cr_assert_eq(paging_stat("streamed"), 0, "%s", stats());
    ASSERT_BOOKS_MATCH(0);
}

Test(apool, a_freed_block_is_taken_again_on_its_stream_at_once_and_elsewhere_once_its_work_completed)
{
    setenv("FAKE_CUDA_LAG_MS", "100", 1); /* the default stream's work ends 100 ms after it is issued */
    pager_env("stream", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "rw:2", "rw");
    CUstream s;
    CU_OK(c.cuStreamCreate(&s, 0));
    CUdeviceptr a, again, other, later;
    CU_OK(c.cuMemAllocAsync(&a, 4 * MiB, NULL));
    launch2(&c, f, a, 0);
    CU_OK(c.cuMemFreeAsync(a, NULL)); /* its kernel still runs */
    CU_OK(c.cuMemAllocAsync(&again, 4 * MiB, NULL));
    cr_assert_eq(again, a, "the same stream takes it at once: stream order covers the kernel");
    CU_OK(c.cuMemFreeAsync(again, NULL));
    CU_OK(c.cuMemAllocAsync(&other, 4 * MiB, s));
    cr_assert_neq(other, a, "another stream does not take it while the default stream's work runs");
    sleep_ms(150);
    CU_OK(c.cuMemAllocAsync(&later, 4 * MiB, s));
    cr_assert_eq(later, a, "once the work completed any stream takes it");
    cr_assert_eq(paging_stat("async_made"), 2, "%s", stats());
    cr_assert_eq(paging_stat("async_reused"), 2, "%s", stats());
    CU_OK(c.cuMemFreeAsync(other, s));
    CU_OK(c.cuMemFreeAsync(later, s));
    (void)c.cuMemFreeAsync(0, s); /* freeing NULL (cudaFree(0) and the like) finds nothing to free */
    cr_assert_eq(paging_stat("async_cached"), 8 * MiB, "%s", stats());
}

Test(apool, small_requests_share_a_segment_and_a_trim_gives_back_what_is_free)
{
    pager_env("stream", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_DLSYM);
    enum { N = 100 };
    CUdeviceptr p[N], big;
    for (int i = 0; i < N; i++) {
        CU_OK(c.cuMemAllocAsync(&p[i], 1000, NULL)); /* 1 KiB blocks */
        CU_OK(c.cuMemsetD8(p[i], (unsigned char)i, 1000));
    }
    CU_OK(c.cuMemAllocAsync(&big, 3 * MiB, NULL)); /* one of its own, rounded to 4 MiB */
    cr_assert_eq(paging_stat("async_backing"), VP_APOOL_SEGMENT + 4 * MiB, "%s", stats());
    cr_assert_eq(paging_stat("async_made"), 2, "%s", stats());
    for (int i = 0; i < N; i++) {
        cr_assert_lt(p[i] - p[0] + 1000, VP_APOOL_SEGMENT + 0ull, "block %d outside the first's segment", i);
        unsigned char h[1000];
        CU_OK(c.cuMemcpyDtoH(h, p[i], sizeof h));
        for (size_t j = 0; j < sizeof h; j++)
            if (h[j] != (unsigned char)i) cr_assert_fail("block %d byte %zu overwritten", i, j);
    }
    /* a segment with a block in use stays; the large block goes */
    for (int i = 1; i < N; i++) CU_OK(c.cuMemFreeAsync(p[i], NULL));
    CU_OK(c.cuMemFreeAsync(big, NULL));
    CU_OK(c.cuMemPoolTrimTo(default_pool(&c), 0));
    cr_assert_eq(paging_stat("async_backing"), VP_APOOL_SEGMENT, "%s", stats());
    CU_OK(c.cuMemFree(p[0])); /* synchronous free of a stream-ordered block */
    CU_OK(c.cuMemPoolTrimTo(default_pool(&c), 0));
    cr_assert_eq(paging_stat("async_backing"), 0, "%s", stats());
    cr_assert_eq(paging_stat("async_trimmed"), VP_APOOL_SEGMENT + 4 * MiB, "%s", stats());
    ASSERT_BOOKS_MATCH(0);
}

Test(apool, the_cache_gives_back_before_the_paged_limit_refuses)
{
    pager_env("stream", 64, "2M");
    setenv("VPAGE_PAGED_LIMIT", "64M", 1);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a, b, d;
    CU_OK(c.cuMemAllocAsync(&a, 40 * MiB, NULL));
    CU_OK(c.cuMemFreeAsync(a, NULL));
    CU_OK(c.cuMemAllocAsync(&b, 48 * MiB, NULL)); /* 40 cached + 48 pass the limit */
    cr_assert_eq(paging_stat("async_trimmed"), 40 * MiB, "%s", stats());
    struct capture k;
    capture_begin(&k);
    CUresult rc = c.cuMemAllocAsync(&d, 48 * MiB, NULL);
    const char *err = capture_end(&k);
    cr_assert_eq(rc, CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(err, "cuMemAllocAsync of") && strstr(err, "VPAGE_PAGED_LIMIT"), "stderr: %s", err);
    CU_OK(c.cuMemFreeAsync(b, NULL));
}

Test(apool, a_pool_the_program_made_current_stays_the_drivers)
{
    pager_env("stream", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUmemoryPool own = own_pool(&c);
    CU_OK(c.cuDeviceSetMemPool(0, own));
    CUdeviceptr p;
    CU_OK(c.cuMemAllocAsync(&p, 8 * MiB, NULL));
    cr_assert_eq(fake_used(0), 8 * MiB, "device memory of the program's pool");
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemFreeAsync(p, NULL));
    CU_OK(c.cuMemPoolDestroy(own));
}

Test(apool, under_demand_paging_default_pool_allocations_are_managed)
{
    pager_env("demand", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "rw:2", "rw");
    CUdeviceptr p;
    CU_OK(c.cuMemAllocAsync(&p, 96 * MiB, NULL)); /* more than the cap */
    fill(&c, p, 3, 96 * MiB);
    launch2(&c, f, p, 0);
    cr_assert_eq(paging_stat("paged"), 96 * MiB, "%s", stats());
    CU_OK(c.cuCtxSynchronize());
    check(&c, p, 3, 96 * MiB, 1);
    CU_OK(c.cuMemFreeAsync(p, NULL));
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Seeded random allocations (512 B to 12 MiB), frees and launches on three
 * streams: every live block keeps its own bytes (two live blocks sharing
 * memory would overwrite each other's pattern), the device stays under the
 * cap, and after a trim the books match the device. */
Test(apool, random_allocations_frees_and_launches_keep_every_blocks_bytes, .timeout = 300)
{
    pager_env("stream", 64, "4M");
    setenv("FAKE_CUDA_LAG_MS", "1", 1);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "rw:2", "rw");
    CUstream st[3] = {NULL, NULL, NULL};
    CU_OK(c.cuStreamCreate(&st[1], 0));
    CU_OK(c.cuStreamCreate(&st[2], 0));
    enum { SLOTS = 48 };
    struct { CUdeviceptr p; size_t n; int pat, incs; CUstream s; } live[SLOTS] = {{0}};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int op = 0; op < 1200; op++) {
        int i = (int)(rng(&seed) % SLOTS);
        if (!live[i].p) {
            size_t n = rng(&seed) % 4 ? 512u << (rng(&seed) % 12) : (size_t)(rng(&seed) % (12 * MiB)) + 8;
            if (n < 8) n = 8;
            live[i].s = st[rng(&seed) % 3];
            CU_OK(c.cuMemAllocAsync(&live[i].p, n, live[i].s));
            live[i].n = n;
            live[i].pat = op;
            live[i].incs = 0;
            fill(&c, live[i].p, op, n);
        } else if (rng(&seed) % 3) {
            launch2(&c, f, live[i].p, 0);
            live[i].incs++;
        } else {
            check(&c, live[i].p, live[i].pat, live[i].n, (uint64_t)live[i].incs);
            CU_OK(c.cuMemFreeAsync(live[i].p, live[i].s));
            live[i].p = 0;
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (live[i].p) {
            check(&c, live[i].p, live[i].pat, live[i].n, (uint64_t)live[i].incs);
            CU_OK(c.cuMemFreeAsync(live[i].p, live[i].s));
        }
    cr_assert_gt(paging_stat("async_reused"), 100, "%s", stats());
    cr_assert_leq(fake_peak(0), 64 * MiB, "the device never held more than the cap");
    CU_OK(c.cuMemPoolTrimTo(default_pool(&c), 0));
    cr_assert_eq(paging_stat("async_backing"), 0, "%s", stats());
    ASSERT_BOOKS_MATCH(0);
}

Test(apool, vmm_chunks_are_not_paged_they_count_whole_and_vpage_says_so_once)
{
    pager_env("stream", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUmemAllocationProp prop = device_chunk(0);
    CUmemGenericAllocationHandle h[2];
    struct capture k;
    capture_begin(&k);
    CUresult r0 = c.cuMemCreate(&h[0], 8 * MiB, &prop, 0);
    CUresult r1 = c.cuMemCreate(&h[1], 8 * MiB, &prop, 0);
    const char *err = capture_end(&k);
    CU_OK(r0);
    CU_OK(r1);
    const char *first = strstr(err, "is not paged under VPAGE_PAGING");
    cr_assert(first && !strstr(first + 1, "is not paged under VPAGE_PAGING"), "said once: %s", err);
    cr_assert_eq(fake_used(0), 16 * MiB);
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemRelease(h[0]));
    CU_OK(c.cuMemRelease(h[1]));
}

/* Threads allocating, writing, checking and freeing small blocks on
 * streams of their own, one each, while another trims the cache over and
 * over: no block is handed out twice or given back while in use (each
 * keeps its pattern), and at the end the books match. */
struct churn {
    struct cu *c;
    CUstream s;
    int id;
};

static void *churn_blocks(void *arg)
{
    struct churn *w = arg;
    uint64_t seed = 0x1234567ull * (uint64_t)(w->id + 1);
    for (int round = 0; round < 300; round++) {
        CUdeviceptr p[8];
        size_t n[8];
        for (int i = 0; i < 8; i++) {
            n[i] = 512u << (rng(&seed) % 8); /* 512 B .. 64 KiB: segments */
            CU_OK(w->c->cuMemAllocAsync(&p[i], n[i], w->s));
            fill(w->c, p[i], w->id * 8 + i, n[i]);
        }
        for (int i = 0; i < 8; i++) {
            check(w->c, p[i], w->id * 8 + i, n[i], 0);
            CU_OK(w->c->cuMemFreeAsync(p[i], w->s));
        }
    }
    return NULL;
}

Test(apool, threads_allocating_and_freeing_while_another_trims_lose_nothing)
{
    pager_env("stream", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUmemoryPool pool = default_pool(&c);
    enum { T = 4 };
    struct churn w[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct churn){.c = &c, .id = i};
        CU_OK(c.cuStreamCreate(&w[i].s, 0));
        cr_assert_eq(pthread_create(&th[i], NULL, churn_blocks, &w[i]), 0);
    }
    int trims = 0;
    for (int i = 0; i < T; i++) {
        while (pthread_tryjoin_np(th[i], NULL)) {
            CU_OK(c.cuMemPoolTrimTo(pool, 0));
            trims++;
        }
    }
    cr_assert_gt(trims, 0);
    CU_OK(c.cuMemPoolTrimTo(pool, 0));
    cr_assert_eq(paging_stat("async_backing"), 0, "%s", stats());
    cr_assert_eq(paging_stat("async_live"), 0, "%s", stats());
    ASSERT_BOOKS_MATCH(0);
}

static uint64_t pool_attr(struct cu *c, CUmemPool_attribute a)
{
    cuuint64_t v = 0;
    CU_OK(c->cuMemPoolGetAttribute(default_pool(c), a, &v));
    return v;
}

Test(apool, the_default_pools_attributes_count_the_caches_bytes_as_pytorch_reads_them)
{
    /* PyTorch's memory counters (torch.cuda.memory_allocated and the rest)
     * read the default pool's attributes under backend:cudaMallocAsync */
    pager_env("stream", 64, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr big, small;
    CU_OK(c.cuMemAllocAsync(&big, 3 * MiB, NULL));
    CU_OK(c.cuMemAllocAsync(&small, 1000, NULL));
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 3 * MiB + 1000);
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB + VP_APOOL_SEGMENT);
    CU_OK(c.cuMemFreeAsync(big, NULL));
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 1000);
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 3 * MiB + 1000);
    cuuint64_t zero = 0;
    CU_OK(c.cuMemPoolSetAttribute(default_pool(&c), CU_MEMPOOL_ATTR_USED_MEM_HIGH, &zero));
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 1000, "reset to the current value");
    CU_OK(c.cuMemPoolTrimTo(default_pool(&c), 0));
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), VP_APOOL_SEGMENT, "the segment in use stays");
    cr_assert_eq(pool_attr(&c, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 4 * MiB + VP_APOOL_SEGMENT);
    CU_OK(c.cuMemFreeAsync(small, NULL));
    /* another pool's attributes are the driver's alone */
    CUmemoryPool own = own_pool(&c);
    cuuint64_t v = 1;
    CU_OK(c.cuMemPoolGetAttribute(own, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v));
    cr_assert_eq(v, 0);
    CU_OK(c.cuMemPoolDestroy(own));
}
