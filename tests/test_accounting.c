/* test_accounting.c - every allocation path is counted exactly, and the cap
 * holds at its boundary, across threads and fork. The fake driver's own
 * books (what "the device" holds) are the reference. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "helpers.h"

static void cap(const char *v) { setenv("VPAGE_CAP", v, 1); }

TEST_EACH_WAY(accounting, plain_pitch_managed)
{
    struct cu c;
    load_or_die(&c, w);
    CUdeviceptr a, b, m;
    size_t pitch;
    CU_OK(c.cuMemAlloc(&a, 5 * MiB + 3));
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemAllocPitch(&b, &pitch, 1000, 300, 4));
    cr_assert_eq(pitch, 1024);
    ASSERT_BOOKS_MATCH(0);
    /* the program's own managed memory may all migrate to the device: it
     * counts in full, though the device holds none of it until touched */
    uint64_t held = fake_used(0);
    CU_OK(c.cuMemAllocManaged(&m, 7 * MiB, CU_MEM_ATTACH_GLOBAL));
    cr_assert_eq(fake_used(0), held);
    cr_assert_eq(vpage_now(0), 5 * MiB + 3 + 1024 * 300 + 7 * MiB);
    CU_OK(c.cuMemFree(b));
    cr_assert_eq(vpage_now(0), fake_used(0) + 7 * MiB);
    CU_OK(c.cuMemFree(a));
    CU_OK(c.cuMemFree(m));
    cr_assert_eq(vpage_now(0), 0);
    cr_assert_eq(vpage_peak_of(0), 5 * MiB + 3 + 1024 * 300 + 7 * MiB);
}

TEST_EACH_WAY(accounting, cap_boundary_and_message)
{
    cap("64M");
    struct cu c;
    load_or_die(&c, w);
    size_t fr, tot;
    CU_OK(c.cuMemGetInfo(&fr, &tot));
    cr_assert_eq(tot, 64 * MiB, "total must be the cap");
    cr_assert_eq(fr, 64 * MiB);
    size_t dt;
    CU_OK(c.cuDeviceTotalMem(&dt, 0));
    cr_assert_eq(dt, 64 * MiB);

    CUdeviceptr a, b;
    CU_OK(c.cuMemAlloc(&a, 64 * MiB));
    CU_OK(c.cuMemGetInfo(&fr, &tot));
    cr_assert_eq(fr, 0);
    struct capture k;
    capture_begin(&k);
    CUresult rc = c.cuMemAlloc(&b, 1);
    const char *err = capture_end(&k);
    cr_assert_eq(rc, CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(err, "cuMemAlloc_v2 of 1 B on device 0 refused") != NULL, "stderr: %s", err);
    cr_assert(strstr(err, "64.00 MiB cap (VPAGE_CAP)") != NULL, "stderr: %s", err);
    cr_assert_eq(fake_peak(0), 64 * MiB, "the device never held more than the cap");
    CU_OK(c.cuMemFree(a));
    CU_OK(c.cuMemAlloc(&b, 32 * MiB));
    CU_OK(c.cuMemAlloc(&a, 32 * MiB));
    cr_assert_eq(c.cuMemAlloc(&a, 4096), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_BOOKS_MATCH(0);
}

Test(accounting, per_entry_point_current_and_peak)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    size_t (*json)(char *, size_t) = (size_t(*)(char *, size_t))dlsym(RTLD_DEFAULT, "vpage_stats_json");
    static char buf[65536];
    CUdeviceptr a, b, p;
    CU_OK(c.cuMemAlloc(&a, 3 * MiB));
    CU_OK(c.cuMemAlloc(&b, 5 * MiB));
    CU_OK(c.cuMemAllocAsync(&p, 1 * MiB, NULL));
    CU_OK(c.cuMemFree(a));
    CU_OK(c.cuMemFreeAsync(p, NULL));
    json(buf, sizeof buf);
    /* frees are taken off the entry point that allocated */
    cr_assert(strstr(buf, "\"cuMemAlloc_v2\": {\"calls\": 2, \"failed\": 0, \"refused\": 0, \"bytes\": 8388608, "
                          "\"current\": 5242880, \"peak\": 8388608}") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"cuMemAllocAsync\": {\"calls\": 1, \"failed\": 0, \"refused\": 0, \"bytes\": 1048576, "
                          "\"current\": 0, \"peak\": 1048576}") != NULL, "%s", buf);
}

Test(accounting, per_device_caps)
{
    cap("0:16M,1:32M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr p;
    cr_assert_eq(c.cuMemAlloc(&p, 17 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(c.cuMemAlloc(&p, 16 * MiB));
    cu_use_device(&c, 1);
    size_t fr, tot;
    CU_OK(c.cuMemGetInfo(&fr, &tot));
    cr_assert_eq(tot, 32 * MiB);
    CU_OK(c.cuMemAlloc(&p, 32 * MiB));
    cr_assert_eq(c.cuMemAlloc(&p, 1), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_BOOKS_MATCH(0);
    ASSERT_BOOKS_MATCH(1);
    cr_assert_eq(vpage_now(1), 32 * MiB);
}

Test(accounting, uncapped_devices_pass_through_but_count)
{
    cap("0:16M");
    struct cu c;
    load_or_die(&c, WAY_DLSYM);
    cu_use_device(&c, 1);
    CUdeviceptr p;
    CU_OK(c.cuMemAlloc(&p, 512 * MiB));
    ASSERT_BOOKS_MATCH(1);
    size_t fr, tot;
    CU_OK(c.cuMemGetInfo(&fr, &tot));
    cr_assert_eq(tot, 8 * GiB, "no cap on device 1: the real total");
}

TEST_EACH_WAY(accounting, stream_ordered_pools_count_reserved_bytes)
{
    setenv("FAKE_CUDA_POOL_GRANULE", "4194304", 1);
    struct cu c;
    load_or_die(&c, w);
    CUdeviceptr a, b;
    CU_OK(c.cuMemAllocAsync(&a, 1 * MiB, NULL));
    cr_assert_eq(vpage_now(0), 4 * MiB, "a pool reserves its granule");
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemAllocAsync(&b, 5 * MiB, NULL));
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemFreeAsync(a, NULL));
    CU_OK(c.cuMemFreeAsync(b, NULL));
    ASSERT_BOOKS_MATCH(0); /* freed into the pool: still reserved */
    cr_assert_eq(vpage_now(0), 8 * MiB);
    CUmemoryPool pool;
    CU_OK(c.cuDeviceGetMemPool(&pool, 0));
    CU_OK(c.cuMemPoolTrimTo(pool, 0));
    ASSERT_BOOKS_MATCH(0);
    cr_assert_eq(vpage_now(0), 0);
}

Test(accounting, pool_growth_is_not_counted_twice)
{
    /* the provisional reservation becomes the growth: vpage's peak is the
     * device's peak, not the two added */
    setenv("FAKE_CUDA_POOL_GRANULE", "8388608", 1);
    cap("1G");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a, b;
    CU_OK(c.cuMemAllocAsync(&a, 3 * MiB, NULL));
    CU_OK(c.cuMemAllocAsync(&b, 9 * MiB, NULL));
    ASSERT_BOOKS_MATCH(0);
    cr_assert_eq(vpage_peak_of(0), fake_peak(0), "vpage peak %llu, device peak %llu",
                 (unsigned long long)vpage_peak_of(0), (unsigned long long)fake_peak(0));
}

Test(accounting, captured_allocations_leave_the_capture_valid_and_count_at_launch)
{
    cap("1G");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr before, inside;
    CU_OK(c.cuMemAllocAsync(&before, 4 * MiB, NULL)); /* the pool exists already */
    CU_OK(c.cuStreamBeginCapture(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CU_OK(c.cuMemAllocAsync(&inside, 64 * MiB, NULL));
    CU_OK(c.cuMemFreeAsync(inside, NULL));
    CUgraph g;
    cr_assert_eq(c.cuStreamEndCapture(NULL, &g), CUDA_SUCCESS, "vpage broke the capture");
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuGraphLaunch((CUgraphExec)(uintptr_t)0x77, NULL));
    ASSERT_BOOKS_MATCH(0); /* the graph's memory, now backed, is counted */
    cr_assert_geq(vpage_now(0), 64 * MiB);
}

Test(accounting, pool_release_at_sync_is_seen_by_mem_get_info)
{
    cap("1G");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a;
    CU_OK(c.cuMemAllocAsync(&a, 100 * MiB, NULL));
    CU_OK(c.cuMemFreeAsync(a, NULL));
    CU_OK(c.cuStreamSynchronize(NULL)); /* the fake's pool releases here, unseen by vpage */
    size_t fr, tot;
    CU_OK(c.cuMemGetInfo(&fr, &tot));
    ASSERT_BOOKS_MATCH(0);
    cr_assert_eq(fr, 1 * GiB);
}

Test(accounting, async_allocations_without_a_pool_to_read_count_their_bytes)
{
    setenv("FAKE_CUDA_NO_POOL_QUERY", "1", 1);
    cap("16M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a, b;
    CU_OK(c.cuMemAllocAsync(&a, 10 * MiB, NULL));
    cr_assert_eq(vpage_now(0), 10 * MiB);
    cr_assert_eq(c.cuMemAllocAsync(&b, 7 * MiB, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(c.cuMemFreeAsync(a, NULL));
    cr_assert_eq(vpage_now(0), 0);
}

Test(accounting, explicit_pools_and_their_destruction)
{
    struct cu c;
    load_or_die(&c, WAY_LINKED);
    CUmemoryPool pool = own_pool(&c);
    CUdeviceptr a;
    CU_OK(c.cuMemAllocFromPoolAsync(&a, 10 * MiB, pool, NULL));
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemFreeAsync(a, NULL));
    CU_OK(c.cuMemPoolDestroy(pool));
    ASSERT_BOOKS_MATCH(0);
    cr_assert_eq(vpage_now(0), 0);
}

Test(accounting, pool_rounding_past_the_cap_is_refused_and_undone)
{
    /* the pool grows in 32 MiB steps; under a 40 MiB cap the second step
     * must be refused before the device ever holds it */
    setenv("FAKE_CUDA_POOL_GRANULE", "33554432", 1);
    cap("40M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a, b;
    CU_OK(c.cuMemAllocAsync(&a, 1 * MiB, NULL));
    cr_assert_eq(vpage_now(0), 32 * MiB);
    struct capture k;
    capture_begin(&k);
    CUresult rc = c.cuMemAllocAsync(&b, 31 * MiB + 1, NULL);
    const char *err = capture_end(&k);
    cr_assert_eq(rc, CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(err, "cuMemAllocAsync of") != NULL, "stderr: %s", err);
    cr_assert_leq(fake_peak(0), 40 * MiB, "device peak %llu passed the cap", (unsigned long long)fake_peak(0));
    ASSERT_BOOKS_MATCH(0);
    /* a request the provisional check lets through but the pool rounds past the cap */
    CU_OK(c.cuMemAllocAsync(&b, 30 * MiB, NULL)); /* fits the reserved 32 MiB */
    ASSERT_BOOKS_MATCH(0);
    cr_assert_leq(vpage_now(0), 40 * MiB);
}

TEST_EACH_WAY(accounting, vmm_counts_device_chunks_only)
{
    struct cu c;
    load_or_die(&c, w);
    CUmemAllocationProp prop = device_chunk(1);
    CUmemGenericAllocationHandle h1, h2;
    CU_OK(c.cuMemCreate(&h1, 20 * MiB, &prop, 0));
    cr_assert_eq(vpage_now(1), 20 * MiB);
    cr_assert_eq(vpage_now(0), 0, "the chunk's location decides the device");
    CUdeviceptr va;
    CU_OK(c.cuMemAddressReserve(&va, 64 * MiB, 0, 0, 0));
    CU_OK(c.cuMemMap(va, 20 * MiB, 0, h1, 0));
    cr_assert_eq(vpage_now(1), 20 * MiB, "mapping costs nothing");
    prop.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
    prop.location.id = 0;
    CU_OK(c.cuMemCreate(&h2, 20 * MiB, &prop, 0));
    cr_assert_eq(vpage_now(0), 0, "host-located chunks are not device memory");
    ASSERT_BOOKS_MATCH(0);
    ASSERT_BOOKS_MATCH(1);
    CU_OK(c.cuMemRelease(h1));
    CU_OK(c.cuMemRelease(h2));
    cr_assert_eq(vpage_now(1), 0);
}

Test(accounting, vmm_cap)
{
    cap("1:30M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUmemAllocationProp prop = device_chunk(1);
    CUmemGenericAllocationHandle h;
    CU_OK(c.cuMemCreate(&h, 20 * MiB, &prop, 0));
    cr_assert_eq(c.cuMemCreate(&h, 20 * MiB, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(fake_peak(1), 20 * MiB);
}

TEST_EACH_WAY(accounting, arrays_count_what_the_driver_reserves)
{
    struct cu c;
    load_or_die(&c, w);
    CUDA_ARRAY_DESCRIPTOR d = {.Width = 100, .Height = 100, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 4};
    CUarray a, b;
    CU_OK(c.cuArrayCreate(&a, &d));
    ASSERT_BOOKS_MATCH(0);
    cr_assert_eq(vpage_now(0), 3 * 65536, "the fake pads 160000 bytes to 3 x 64 KiB");
    CUDA_ARRAY3D_DESCRIPTOR d3 = {.Width = 64, .Height = 64, .Depth = 64, .Format = CU_AD_FORMAT_HALF,
                                  .NumChannels = 1};
    CU_OK(c.cuArray3DCreate(&b, &d3));
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuArrayDestroy(a));
    CU_OK(c.cuArrayDestroy(b));
    cr_assert_eq(vpage_now(0), 0);
}

Test(accounting, array_padding_past_the_cap_is_refused)
{
    cap("100K");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    /* 90000 bytes asked, 128 KiB held by the driver */
    CUDA_ARRAY_DESCRIPTOR d = {.Width = 22500, .Height = 1, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    CUarray a;
    cr_assert_eq(c.cuArrayCreate(&a, &d), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_BOOKS_MATCH(0);
    cr_assert_eq(vpage_now(0), 0);
}

Test(accounting, frees_of_unknown_pointers_pass_through)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    cr_assert_eq(c.cuMemFree(0xdead0000), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(vpage_now(0), 0);
}

/* ---- concurrency ---- */

static struct cu shared;
static atomic_int stop_flag;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *hammer(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    CUdeviceptr live[16] = {0};
    cu_use_device(&shared, 0);
    for (int i = 0; i < 4000 && !atomic_load(&stop_flag); i++) {
        int slot = (int)(rng_next(&seed) % 16);
        if (live[slot]) {
            cr_assert_eq(shared.cuMemFree(live[slot]), CUDA_SUCCESS);
            live[slot] = 0;
        } else {
            size_t sz = (size_t)(rng_next(&seed) % (4 * MiB)) + 1;
            CUresult rc = shared.cuMemAlloc(&live[slot], sz);
            cr_assert(rc == CUDA_SUCCESS || rc == CUDA_ERROR_OUT_OF_MEMORY);
            if (rc) live[slot] = 0;
        }
    }
    for (int s = 0; s < 16; s++)
        if (live[s]) shared.cuMemFree(live[s]);
    return NULL;
}

Test(accounting, threads_never_pass_the_cap_together)
{
    cap("48M");
    load_or_die(&shared, WAY_PROCADDR);
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    cr_assert_leq(fake_peak(0), 48 * MiB, "device peak %llu", (unsigned long long)fake_peak(0));
    cr_assert_leq(vpage_peak_of(0), 48 * MiB);
    cr_assert_eq(vpage_now(0), 0);
    ASSERT_BOOKS_MATCH(0);
}

Test(accounting, fork_while_other_threads_allocate, .timeout = 60)
{
    cap("48M");
    load_or_die(&shared, WAY_PROCADDR);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 11));
    for (int n = 0; n < 20; n++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* the child starts with empty books and can allocate its full cap */
            alarm(10);
            CUdeviceptr p;
            int ok = vpage_now(0) == 0 && shared.cuMemAlloc(&p, 48 * MiB) == CUDA_SUCCESS &&
                     vpage_now(0) == 48 * MiB && shared.cuMemAlloc(&p, 1) == CUDA_ERROR_OUT_OF_MEMORY;
            _exit(ok ? 0 : 1);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d ended with status %d", n, status);
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    ASSERT_BOOKS_MATCH(0);
}

/* ---- property: random sequences over every kind keep the books exact ---- */

Test(accounting, random_sequences_keep_books_exact_and_under_cap)
{
    setenv("FAKE_CUDA_POOL_GRANULE", "2097152", 1);
    cap("0:96M,1:64M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    uint64_t seed = 20261126;
    struct { int kind, dev; uint64_t h; } live[64] = {{0}};
    for (int step = 0; step < 3000; step++) {
        int slot = (int)(rng_next(&seed) % 64);
        if (live[slot].h) {
            cu_use_device(&c, live[slot].dev);
            switch (live[slot].kind) {
            case 0: CU_OK(c.cuMemFree(live[slot].h)); break;
            case 1: CU_OK(c.cuMemFreeAsync(live[slot].h, NULL)); break;
            case 2: CU_OK(c.cuMemRelease(live[slot].h)); break;
            case 3: CU_OK(c.cuArrayDestroy((CUarray)(uintptr_t)live[slot].h)); break;
            }
            live[slot].h = 0;
        } else {
            int dev = (int)(rng_next(&seed) % 2), kind = (int)(rng_next(&seed) % 4);
            size_t sz = (size_t)(rng_next(&seed) % (12 * MiB)) + 1;
            cu_use_device(&c, dev);
            CUresult rc = CUDA_SUCCESS;
            CUdeviceptr p = 0;
            if (kind == 0) {
                rc = c.cuMemAlloc(&p, sz);
            } else if (kind == 1) {
                rc = c.cuMemAllocAsync(&p, sz, NULL);
            } else if (kind == 2) {
                CUmemAllocationProp prop = device_chunk(dev);
                CUmemGenericAllocationHandle h = 0;
                rc = c.cuMemCreate(&h, (sz + 2 * MiB - 1) / (2 * MiB) * 2 * MiB, &prop, 0);
                p = h;
            } else {
                CUDA_ARRAY_DESCRIPTOR d = {.Width = sz / 4 + 1, .Height = 1, .Format = CU_AD_FORMAT_FLOAT,
                                           .NumChannels = 1};
                CUarray a = NULL;
                rc = c.cuArrayCreate(&a, &d);
                p = (CUdeviceptr)(uintptr_t)a;
            }
            cr_assert(rc == CUDA_SUCCESS || rc == CUDA_ERROR_OUT_OF_MEMORY, "step %d kind %d: %d", step, kind, rc);
            if (rc == CUDA_SUCCESS) live[slot].kind = kind, live[slot].dev = dev, live[slot].h = p;
        }
        if (step % 50 == 0) { /* pools release at syncs vpage does not see; mem_get_info re-reads them */
            size_t fr, tot;
            for (int d = 0; d < 2; d++) {
                cu_use_device(&c, d);
                CU_OK(c.cuMemGetInfo(&fr, &tot));
                ASSERT_BOOKS_MATCH(d);
            }
        }
        cr_assert_leq(fake_used(0), 96 * MiB, "step %d", step);
        cr_assert_leq(fake_used(1), 64 * MiB, "step %d", step);
    }
    cr_assert_leq(fake_peak(0), 96 * MiB);
    cr_assert_leq(fake_peak(1), 64 * MiB);
}
