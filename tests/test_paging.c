/* test_paging.c - VPAGE_PAGING=demand on the fake driver: paged
 * allocations live on the host, launches make what they touch resident,
 * and the device never holds more than the cap. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "helpers.h"

/* Paging under a cap of cap_mib on a card of the same size, where the
 * pager evicts (on a larger card it places chunks once: see
 * chunks_are_placed_once_on_a_card_larger_than_the_cap). */
static void paging(int cap_mib, const char *chunk) { pager_env("demand", cap_mib, chunk); }





/* Waits until the pager is quiet: the device holds what vpage counts, and
 * that stays so for a while. */
static void settle(int dev)
{
    int same = 0;
    for (int i = 0; i < 500 && same < 5; i++) {
        same = fake_used(dev) == vpage_now(dev) ? same + 1 : 0;
        sleep_ms(5);
    }
    ASSERT_BOOKS_MATCH(dev);
}

/* Waits for fake_used(dev) to reach at least want bytes. */
static void wait_used(int dev, uint64_t want)
{
    for (int i = 0; i < 1000 && fake_used(dev) < want; i++) sleep_ms(5);
    cr_assert_geq(fake_used(dev), want, "device holds %llu, waited for %llu", (unsigned long long)fake_used(dev),
                  (unsigned long long)want);
}


/* Paging under a cap of cap_mib (card of the same size), the driver
 * loaded way w, and a kernel named name with two pointer parameters. */
static CUfunction start(struct cu *c, enum way w, int cap_mib, const char *chunk, const char *name)
{
    paging(cap_mib, chunk);
    load_or_die(c, w);
    char image[64];
    snprintf(image, sizeof image, "%s:2", name);
    return kernel(c, image, name);
}


TEST_EACH_WAY(paging, paged_memory_costs_the_device_nothing_until_a_kernel_touches_it)
{
    paging(256, "2M");
    struct cu c;
    load_or_die(&c, w);
    CUdeviceptr big;
    CU_OK(c.cuMemAlloc(&big, 1 * GiB)); /* four times the cap */
    cr_assert_eq(fake_used(0), 0);
    cr_assert_eq(vpage_now(0), 0, "paged bytes do not count against the cap");
    size_t free_b, total_b;
    CU_OK(c.cuMemGetInfo(&free_b, &total_b));
    cr_assert_eq(total_b, 256 * MiB);

    CUfunction f = kernel(&c, "touch:2", "touch");
    launch2(&c, f, big + 8 * MiB + 100, 0);
    /* the chunk holding the pointer and those after it, up to cap/4 */
    wait_used(0, 64 * MiB);
    settle(0);
    cr_assert_eq(fake_used(0), 64 * MiB);
    cr_assert_eq(paging_stat("bytes_in"), 64 * MiB);
    cr_assert_leq(fake_peak(0), 256 * MiB);
    CU_OK(c.cuMemFree(big));
    cr_assert_eq(fake_used(0), 0);
    cr_assert_eq(vpage_now(0), 0);
}

Test(paging, the_device_never_holds_more_than_the_cap)
{
    struct cu c;
    CUfunction f = start(&c, WAY_PROCADDR, 64, "4M", "pair");
    CUdeviceptr buf[8];
    for (int i = 0; i < 8; i++) CU_OK(c.cuMemAlloc(&buf[i], 32 * MiB));
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 8; i++) {
            launch2(&c, f, buf[i], buf[(i + 3) % 8]);
            if (i % 3 == 0) sleep_ms(1); /* let the pager run between some launches */
        }
    settle(0);
    cr_assert_leq(fake_peak(0), 64 * MiB, "device peak %llu over the 64 MiB cap",
                  (unsigned long long)fake_peak(0));
    cr_assert_gt(paging_stat("evictions"), 0);
    cr_assert_eq(paging_stat("bytes_writeback"), fake_u64("fake_cuda_managed_out"),
                 "what vpage says it evicted is what left the device");
    cr_assert_eq(paging_stat("bytes_in"), fake_u64("fake_cuda_managed_in"));
    cr_assert_leq(paging_stat("resident_peak"), 64 * MiB);
    for (int i = 0; i < 8; i++) CU_OK(c.cuMemFree(buf[i]));
    ASSERT_BOOKS_MATCH(0);
}

Test(paging, a_device_that_keeps_evicted_memory_still_stays_under_the_cap)
{
    /* the UVM driver keeps (some of) the memory of evicted pages: the pager
     * sees the device's own use grow past its books and stops letting
     * chunks in, instead of letting the device pass the cap */
    paging(64, "4M");
    setenv("FAKE_CUDA_UVM_KEEPS", "1", 1);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "pair:2", "pair");
    CUdeviceptr buf[8];
    for (int i = 0; i < 8; i++) CU_OK(c.cuMemAlloc(&buf[i], 32 * MiB));
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 8; i++) {
            launch2(&c, f, buf[i], buf[(i + 3) % 8]);
            sleep_ms(1);
        }
    sleep_ms(100);
    cr_assert_leq(fake_peak(0), 64 * MiB, "device peak %llu over the 64 MiB cap", (unsigned long long)fake_peak(0));
    cr_assert_gt(paging_stat("evictions"), 0);
    cr_assert_gt(paging_stat("unbooked_peak"), 0);
    cr_assert_eq(paging_stat("evictions_stopped"), 1);
    uint64_t ev = paging_stat("evictions");
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 8; i++) launch2(&c, f, buf[i], buf[(i + 3) % 8]);
    sleep_ms(100);
    cr_assert_eq(paging_stat("evictions"), ev, "no more evictions once they are seen to give nothing back");
    cr_assert_eq(paging_stat("resident"), 64 * MiB, "what is resident stays, the room is used: %s", stats());
    cr_assert_leq(fake_peak(0), 64 * MiB);
    for (int i = 0; i < 8; i++) CU_OK(c.cuMemFree(buf[i]));
    cr_assert_eq(fake_used(0), 0, "freeing gives the kept memory back");
}

Test(paging, chunks_are_placed_once_on_a_card_larger_than_the_cap)
{
    /* 8 GiB card, 64 MiB cap: the driver would keep the memory of evicted
     * chunks, so nothing is evicted; half the cap is kept for chunks in hot
     * use (an activation touched by every launch), weights used once a
     * round take the rest */
    paging(64, "2M");
    setenv("FAKE_CUDA_MEM", "8589934592", 1);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "pair:2", "pair");
    enum { NW = 300 };
    static CUdeviceptr w[NW];
    CUdeviceptr act;
    for (int i = 0; i < NW; i++) CU_OK(c.cuMemAlloc(&w[i], 2 * MiB));
    CU_OK(c.cuMemAlloc(&act, 8 * MiB));
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NW; i++) {
            launch2(&c, f, w[i], act);
            if (i % 50 == 0) sleep_ms(2);
        }
    sleep_ms(100);
    settle(0);
    cr_assert_eq(paging_stat("evictions_stopped"), 1);
    cr_assert_eq(paging_stat("evictions"), 0);
    cr_assert_leq(fake_peak(0), 64 * MiB);
    uint64_t (*resident)(uint64_t, uint64_t) =
        (uint64_t(*)(uint64_t, uint64_t))dlsym(dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD), "fake_cuda_resident");
    cr_assert_not_null(resident);
    cr_assert_eq(resident(act, 8 * MiB), 8 * MiB, "the chunk in hot use is resident");
    uint64_t weights = 0;
    for (int i = 0; i < NW; i++) weights += resident(w[i], 2 * MiB);
    cr_assert_leq(weights, 32 * MiB, "cold chunks leave half the cap free");
    cr_assert_gt(weights, 0);
    for (int i = 0; i < NW; i++) CU_OK(c.cuMemFree(w[i]));
    CU_OK(c.cuMemFree(act));
}

Test(paging, memory_that_cannot_be_paged_takes_room_from_resident_chunks)
{
    struct cu c;
    CUfunction f = start(&c, WAY_PROCADDR, 64, "4M", "touch");
    CUdeviceptr big;
    CU_OK(c.cuMemAlloc(&big, 256 * MiB));
    launch2(&c, f, big, 0);
    wait_used(0, 16 * MiB); /* cap/4 resident */
    settle(0);
    /* an allocation from a pool of the program's own needs 56 MiB: 48 MiB
     * are free, the pager gives up the rest */
    CUmemoryPool pool = own_pool(&c);
    CUdeviceptr p;
    CU_OK(c.cuMemAllocFromPoolAsync(&p, 56 * MiB, pool, NULL));
    cr_assert_geq(paging_stat("reclaims"), 1);
    cr_assert_leq(fake_peak(0), 64 * MiB);
    settle(0);
    CU_OK(c.cuMemFreeAsync(p, NULL));
    CU_OK(c.cuMemPoolDestroy(pool));
    CU_OK(c.cuMemFree(big));
}

Test(paging, the_paged_limit_refuses_with_a_message)
{
    paging(64, "2M");
    setenv("VPAGE_PAGED_LIMIT", "100M", 1);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a, b;
    CU_OK(c.cuMemAlloc(&a, 64 * MiB));
    struct capture k;
    capture_begin(&k);
    CUresult rc = c.cuMemAlloc(&b, 64 * MiB);
    const char *err = capture_end(&k);
    cr_assert_eq(rc, CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(err, "VPAGE_PAGED_LIMIT") != NULL, "%s", err);
    cr_assert_eq(paging_stat("refused"), 1);
    CU_OK(c.cuMemFree(a));
    CU_OK(c.cuMemAlloc(&b, 64 * MiB));
    CU_OK(c.cuMemFree(b));
}

Test(paging, ipc_handles_on_paged_memory_are_refused)
{
    paging(64, "2M");
    struct cu c;
    load_or_die(&c, WAY_DLSYM);
    CUdeviceptr a, async_ptr, pool_ptr;
    CU_OK(c.cuMemAlloc(&a, 8 * MiB));
    CU_OK(c.cuMemAllocAsync(&async_ptr, 8 * MiB, NULL)); /* the default pool's: paged */
    CUmemoryPool pool = own_pool(&c);
    CU_OK(c.cuMemAllocFromPoolAsync(&pool_ptr, 8 * MiB, pool, NULL));
    CUresult (*ipc)(CUipcMemHandle *, CUdeviceptr) =
        (CUresult(*)(CUipcMemHandle *, CUdeviceptr))dlsym(c.handle, "cuIpcGetMemHandle");
    cr_assert_not_null(ipc);
    CUipcMemHandle h;
    struct capture k;
    capture_begin(&k);
    CUresult rc = ipc(&h, a + 4096);
    const char *err = capture_end(&k);
    cr_assert_eq(rc, CUDA_ERROR_NOT_SUPPORTED);
    cr_assert(strstr(err, "cuIpcGetMemHandle refused") != NULL && strstr(err, "VPAGE_PAGING") != NULL, "%s", err);
    cr_assert_eq(ipc(&h, async_ptr), CUDA_ERROR_NOT_SUPPORTED);
    CU_OK(ipc(&h, pool_ptr)); /* not paged: the driver answers */
    CU_OK(c.cuMemFree(a));
    CU_OK(c.cuMemFreeAsync(async_ptr, NULL));
    CU_OK(c.cuMemFreeAsync(pool_ptr, NULL));
    CU_OK(c.cuMemPoolDestroy(pool));
}

Test(paging, a_device_without_concurrent_managed_access_keeps_the_cap_a_wall)
{
    paging(64, "2M");
    setenv("FAKE_CUDA_NO_MANAGED_ACCESS", "1", 1);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUdeviceptr a;
    struct capture k;
    capture_begin(&k);
    cr_assert_eq(c.cuMemAlloc(&a, 128 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
    const char *err = capture_end(&k);
    cr_assert(strstr(err, "no concurrent managed access") != NULL, "%s", err);
    CU_OK(c.cuMemAlloc(&a, 32 * MiB));
    cr_assert_eq(fake_used(0), 32 * MiB);
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemFree(a));
}

Test(paging, launches_with_a_packed_parameter_buffer)
{
    struct cu c;
    CUfunction f = start(&c, WAY_PROCADDR, 64, "2M", "packed");
    CUdeviceptr a;
    CU_OK(c.cuMemAlloc(&a, 4 * MiB));
    uint64_t packed[2] = {0, a + 2 * MiB};
    size_t len = sizeof packed;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, packed, CU_LAUNCH_PARAM_BUFFER_SIZE, &len, CU_LAUNCH_PARAM_END};
    CU_OK(c.cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra));
    wait_used(0, 2 * MiB);
    settle(0);
    cr_assert_eq(fake_used(0), 2 * MiB, "only the chunk from the pointer on");
    CU_OK(c.cuMemFree(a));
}

Test(paging, launches_recorded_into_a_graph_move_nothing)
{
    struct cu c;
    CUfunction f = start(&c, WAY_PROCADDR, 64, "2M", "touch");
    CUdeviceptr a;
    CU_OK(c.cuMemAlloc(&a, 4 * MiB));
    CUstream s = (CUstream)0x77;
    CU_OK(c.cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    launch2(&c, f, a, 0);
    sleep_ms(50);
    cr_assert_eq(fake_used(0), 0);
    CUgraph g;
    CU_OK(c.cuStreamEndCapture(s, &g));
    launch2(&c, f, a, 0);
    wait_used(0, 4 * MiB);
    settle(0);
    CU_OK(c.cuMemFree(a));
}

Test(paging, a_graph_replay_brings_in_what_its_captured_kernels_touch)
{
    /* the launch captured into the graph names what its replays touch:
     * the first replay queues it, as a launch would */
    struct cu c;
    CUfunction f = start(&c, WAY_PROCADDR, 64, "2M", "touch");
    CUdeviceptr a, none = 0;
    CU_OK(c.cuMemAlloc(&a, 4 * MiB));
    CUstream s = (CUstream)0x77;
    CU_OK(c.cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    void *args[2] = {&a, &none};
    CU_OK(c.cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, args, NULL));
    CUgraph g;
    CUgraphExec e;
    CU_OK(c.cuStreamEndCapture(s, &g));
    CU_OK(c.cuGraphInstantiate(&e, g, 0));
    sleep_ms(50);
    cr_assert_eq(fake_used(0), 0, "a capture moves nothing");
    CU_OK(c.cuGraphLaunch(e, NULL));
    wait_used(0, 4 * MiB);
    settle(0);
    CU_OK(c.cuMemFree(a));
}

Test(paging, weight_file_chunks_leave_by_dropping_their_duplicate)
{
    paging(4, "2M");
    setenv("VPAGE_POLICY", "loop", 1);
    setenv("VPAGE_WEIGHT_FILES", "*.safetensors", 1);
    char path[128];
    snprintf(path, sizeof path, "/tmp/vpage-test-%d.safetensors", (int)getpid());
    const char *hdr = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2097152],\"data_offsets\":[0,2097152]}}";
    uint64_t hn = strlen(hdr);
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    fwrite(&hn, 8, 1, fp);
    fwrite(hdr, 1, hn, fp);
    for (uint64_t i = 0; i < 2 * MiB; i++) fputc((int)(i * 31 % 251), fp);
    fclose(fp);
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0);
    uint8_t *map = mmap(NULL, 8 + hn + 2 * MiB, PROT_READ, MAP_PRIVATE, fd, 0);
    cr_assert(map != MAP_FAILED);
    close(fd);

    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUfunction f = kernel(&c, "touch:2", "touch");
    CUdeviceptr wgt, act1, act2;
    CU_OK(c.cuMemAlloc(&wgt, 2 * MiB));
    CU_OK(c.cuMemcpyHtoD(wgt, map + 8 + hn, 2 * MiB));
    CU_OK(c.cuMemAlloc(&act1, 2 * MiB));
    CU_OK(c.cuMemAlloc(&act2, 2 * MiB));
    launch2(&c, f, wgt, 0);
    launch2(&c, f, wgt, 0);
    wait_used(0, 2 * MiB);
    launch2(&c, f, act1, 0); /* both resident: the cap is full */
    launch2(&c, f, act1, 0);
    wait_used(0, 4 * MiB);
    settle(0);
    launch2(&c, f, act1, 0); /* the weights are now overdue: the first to go */
    launch2(&c, f, act2, 0);
    settle(0);
    cr_assert_eq(paging_stat("bytes_collapsed"), 2 * MiB, "%s", stats());
    cr_assert_eq(paging_stat("bytes_writeback"), 0);
    cr_assert_leq(fake_peak(0), 4 * MiB);
    for (CUdeviceptr *p = (CUdeviceptr[]){wgt, act1, act2, 0}; *p; p++) CU_OK(c.cuMemFree(*p));
    munmap(map, 8 + hn + 2 * MiB);
    unlink(path);
}

/* Threads allocating, launching and freeing at once: nothing is lost, no
 * record outlives its allocation (ASan and valgrind runs watch this). */
struct churn {
    struct cu *c;
    CUfunction f;
};

static void *churn_thread(void *arg)
{
    struct churn *ch = arg;
    for (int i = 0; i < 150; i++) {
        CUdeviceptr a, b;
        if (ch->c->cuMemAlloc(&a, 6 * MiB) != CUDA_SUCCESS) return (void *)1;
        if (ch->c->cuMemAlloc(&b, 2 * MiB) != CUDA_SUCCESS) return (void *)1;
        launch2(ch->c, ch->f, a, b);
        launch2(ch->c, ch->f, b + MiB, a + 4 * MiB);
        if (ch->c->cuMemFree(a) != CUDA_SUCCESS || ch->c->cuMemFree(b) != CUDA_SUCCESS) return (void *)1;
    }
    return NULL;
}

Test(paging, allocating_launching_and_freeing_from_many_threads)
{
    paging(16, "2M");
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct churn ch = {&c, kernel(&c, "pair:2", "pair")};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn_thread, &ch);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r);
    }
    settle(0);
    cr_assert_eq(fake_used(0), 0);
    cr_assert_eq(vpage_now(0), 0);
    cr_assert_leq(fake_peak(0), 16 * MiB);
}
