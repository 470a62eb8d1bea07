/* remap_cost.c - what moving a piece of streamed memory costs the pager
 * thread, call by call, and whether vpage's device hash kernel is right
 * and fast.
 *
 *   cc -O2 -I/usr/local/cuda/include -I../.. remap_cost.c ../../pager/hash.c \
 *      -L/usr/local/cuda/lib64/stubs -lcuda -lpthread -o remap_cost
 *   ./remap_cost
 *
 * A 1 GiB range of 16 pieces of 64 MiB, each with a host-located handle
 * (CU_MEM_LOCATION_TYPE_HOST_NUMA) and a device handle, as pager/stream/
 * keeps them. Prints the milliseconds a piece of each call:
 *   A  idle device: to the device (unmap host, map device, set access) and
 *      back (unmap device, map host, set access), one piece at a time
 *   B  idle device: the 16 pieces unmapped with one call, access set with one
 *   C  busy device (a queue of about 1 s of memsets on another stream, on
 *      memory the range does not hold): as A, then whether the unmap waited
 *   D  two threads remapping 8 pieces each at once, against one thread
 *   E  piece sizes 2 MiB and 256 MiB, idle, as A
 * and then H: the hash kernel (pager/hash.c) against the host reference on
 * 64 MiB of random bytes, and its time on the busy and the idle device.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pager/hash.h"

#define CK(x) do { CUresult e_ = (x); if (e_ != CUDA_SUCCESS) { printf("error %d at %s:%d: %s\n", (int)e_, __FILE__, __LINE__, #x); exit(1); } } while (0)

static CUcontext ctx;
static CUdevice dev;
static CUmemAccessDesc acc;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

struct range {
    CUdeviceptr va;
    size_t piece;
    int k;
    CUmemGenericAllocationHandle h[64], d[64];
};

static void make(struct range *r, size_t piece, int k)
{
    CUmemAllocationProp ph = {0}, pd = {0};
    ph.type = pd.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    ph.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
    ph.location.id = 0;
    pd.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    pd.location.id = 0;
    r->piece = piece;
    r->k = k;
    CK(cuMemAddressReserve(&r->va, piece * k, 0, 0, 0));
    for (int i = 0; i < k; i++) {
        CK(cuMemCreate(&r->h[i], piece, &ph, 0));
        CK(cuMemCreate(&r->d[i], piece, &pd, 0));
        CK(cuMemMap(r->va + i * piece, piece, 0, r->h[i], 0));
    }
    CK(cuMemSetAccess(r->va, piece * k, &acc, 1));
}

static void unmake(struct range *r)
{
    CK(cuMemUnmap(r->va, r->piece * r->k));
    for (int i = 0; i < r->k; i++) {
        CK(cuMemRelease(r->h[i]));
        CK(cuMemRelease(r->d[i]));
    }
    CK(cuMemAddressFree(r->va, r->piece * r->k));
}

/* moves pieces [from, to) one at a time; t[0..2]: ms per piece of unmap, map, access */
static void move_each(struct range *r, int from, int to, int to_dev, double t[3])
{
    for (int i = from; i < to; i++) {
        CUdeviceptr o = r->va + i * r->piece;
        double a = now();
        CK(cuMemUnmap(o, r->piece));
        double b = now();
        CK(cuMemMap(o, r->piece, 0, to_dev ? r->d[i] : r->h[i], 0));
        double c = now();
        CK(cuMemSetAccess(o, r->piece, &acc, 1));
        double d = now();
        t[0] += b - a;
        t[1] += c - b;
        t[2] += d - c;
    }
}

static void report(const char *what, double t[3], int n)
{
    printf("%-44s unmap %7.3f  map %7.3f  access %7.3f  total %7.3f ms/piece\n", what, t[0] / n, t[1] / n, t[2] / n,
           (t[0] + t[1] + t[2]) / n);
}

static void round_trip(const char *label, struct range *r)
{
    char s[96];
    double t[3] = {0};
    move_each(r, 0, r->k, 1, t);
    snprintf(s, sizeof s, "%s, %zu MiB, to the device", label, r->piece >> 20);
    report(s, t, r->k);
    memset(t, 0, sizeof t);
    move_each(r, 0, r->k, 0, t);
    snprintf(s, sizeof s, "%s, %zu MiB, back to the host", label, r->piece >> 20);
    report(s, t, r->k);
}

static void coalesced(struct range *r, int to_dev)
{
    double a = now();
    CUresult u = cuMemUnmap(r->va, r->piece * r->k);
    double b = now();
    if (u != CUDA_SUCCESS) {
        printf("B  one unmap over %d mappings refused (%d)\n", r->k, (int)u);
        move_each(r, 0, r->k, to_dev, (double[3]){0});
        return;
    }
    for (int i = 0; i < r->k; i++) CK(cuMemMap(r->va + i * r->piece, r->piece, 0, to_dev ? r->d[i] : r->h[i], 0));
    double c = now();
    CK(cuMemSetAccess(r->va, r->piece * r->k, &acc, 1));
    double d = now();
    double t[3] = {b - a, c - b, d - c};
    report(to_dev ? "B  idle, one unmap + one access, to device" : "B  idle, one unmap + one access, to host", t, r->k);
}

struct twoarg {
    struct range *r;
    int from, to;
    double ms;
};

static void *thread_move(void *p)
{
    struct twoarg *a = p;
    CK(cuCtxSetCurrent(ctx));
    double t0 = now(), t[3] = {0};
    move_each(a->r, a->from, a->to, 1, t);
    move_each(a->r, a->from, a->to, 0, t);
    a->ms = now() - t0;
    return NULL;
}

int main(void)
{
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    char name[128];
    CK(cuDeviceGetName(name, sizeof name, dev));
    printf("device: %s\n", name);
    acc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    acc.location.id = 0;
    acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    size_t M = 1 << 20;

    struct range r;
    make(&r, 64 * M, 16);
    round_trip("A  idle (warm-up)", &r);
    round_trip("A  idle", &r);
    coalesced(&r, 1);
    coalesced(&r, 0);

    /* C: busy device */
    CUstream busy;
    CK(cuStreamCreate(&busy, CU_STREAM_NON_BLOCKING));
    CUdeviceptr big;
    size_t bigsz = 4096 * M;
    CK(cuMemAlloc(&big, bigsz));
    CUevent e0, e1;
    CK(cuEventCreate(&e0, 0));
    CK(cuEventCreate(&e1, 0));
    CK(cuEventRecord(e0, busy));
    for (int i = 0; i < 20; i++) CK(cuMemsetD8Async(big, (unsigned char)i, bigsz, busy));
    CK(cuEventRecord(e1, busy));
    CK(cuEventSynchronize(e1));
    float one;
    CK(cuEventElapsedTime(&one, e0, e1));
    int reps = (int)(1000.0 / (one / 20)) + 1;
    printf("C  a 4 GiB memset takes %.3f ms; queueing %d of them\n", one / 20, reps);
    double q0 = now();
    for (int i = 0; i < reps; i++) CK(cuMemsetD8Async(big, (unsigned char)i, bigsz, busy));
    CK(cuEventRecord(e1, busy));
    double q1 = now();
    double t[3] = {0};
    move_each(&r, 0, r.k, 1, t);
    int still = cuEventQuery(e1) == CUDA_ERROR_NOT_READY;
    report("C  busy, to the device", t, r.k);
    memset(t, 0, sizeof t);
    move_each(&r, 0, r.k, 0, t);
    report("C  busy, back to the host", t, r.k);
    printf("C  queued in %.1f ms; after the 16 moves in the busy work was %s (%.1f ms after queueing)\n", q1 - q0,
           still ? "still running: unmap did not wait for it" : "done", now() - q1);
    CK(cuEventSynchronize(e1));

    /* D: two threads at once */
    struct twoarg one_t = {&r, 0, 16, 0};
    thread_move(&one_t);
    struct twoarg x = {&r, 0, 8, 0}, y = {&r, 8, 16, 0};
    pthread_t tx, ty;
    double d0 = now();
    pthread_create(&tx, NULL, thread_move, &x);
    pthread_create(&ty, NULL, thread_move, &y);
    pthread_join(tx, NULL);
    pthread_join(ty, NULL);
    printf("D  16 round trips: one thread %.1f ms; two threads of 8 each %.1f ms (%.1f, %.1f)\n", one_t.ms,
           now() - d0, x.ms, y.ms);
    unmake(&r);

    /* E: other piece sizes */
    struct range r2;
    make(&r2, 2 * M, 64);
    round_trip("E  idle", &r2);
    unmake(&r2);
    make(&r2, 256 * M, 4);
    round_trip("E  idle", &r2);
    unmake(&r2);

    /* H: the hash kernel */
    char log[8192] = "";
    CUjit_option jo[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *jv[2] = {log, (void *)(uintptr_t)sizeof log};
    CUmodule mod;
    double l0 = now();
    CUresult lr = cuModuleLoadDataEx(&mod, vp_hash_ptx, 2, jo, jv);
    printf("H  module load %.1f ms, rc %d %s\n", now() - l0, (int)lr, log);
    if (lr != CUDA_SUCCESS) return 1;
    CUfunction fn;
    CK(cuModuleGetFunction(&fn, mod, "vp_hash"));
    size_t n = 64 * M / 8;
    uint64_t *host = malloc(n * 8);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        host[i] = s;
    }
    CUdeviceptr src;
    CK(cuMemAlloc(&src, n * 8));
    CK(cuMemcpyHtoD(src, host, n * 8));
    uint64_t *part;
    CK(cuMemAllocHost((void **)&part, 2 * VP_HASH_MAX_BLOCKS * 8));
    unsigned nb = vp_hash_blocks(n);
    CUdeviceptr outp = (CUdeviceptr)(uintptr_t)part;
    void *args[3] = {&src, &n, &outp};
    CK(cuLaunchKernel(fn, nb, 1, 1, VP_HASH_THREADS, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    uint64_t hd[2], hr[2];
    vp_hash_combine(part, nb, hd);
    vp_hash_ref(host, n, hr);
    int same = hd[0] == hr[0] && hd[1] == hr[1];
    printf("H  device %016llx%016llx host %016llx%016llx: %s\n", (unsigned long long)hd[0], (unsigned long long)hd[1],
           (unsigned long long)hr[0], (unsigned long long)hr[1], same ? "same" : "DIFFERENT");
    /* one word changed must change it */
    host[12345] ^= 1;
    CK(cuMemcpyHtoD(src + 12345 * 8, &host[12345], 8));
    CK(cuLaunchKernel(fn, nb, 1, 1, VP_HASH_THREADS, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    uint64_t hd2[2];
    vp_hash_combine(part, nb, hd2);
    vp_hash_ref(host, n, hr);
    printf("H  one bit flipped: device %s the host reference, %s the first\n",
           hd2[0] == hr[0] && hd2[1] == hr[1] ? "equals" : "DIFFERS FROM", hd2[0] != hd[0] ? "differs from" : "EQUALS");
    CUstream hs;
    int lo, hi;
    CK(cuCtxGetStreamPriorityRange(&lo, &hi));
    CK(cuStreamCreateWithPriority(&hs, CU_STREAM_NON_BLOCKING, hi));
    for (int busyrun = 0; busyrun < 2; busyrun++) {
        if (busyrun)
            for (int i = 0; i < 50; i++) CK(cuMemsetD8Async(big, (unsigned char)i, bigsz, busy));
        double h0 = now();
        for (int i = 0; i < 16; i++) CK(cuLaunchKernel(fn, nb, 1, 1, VP_HASH_THREADS, 1, 1, 0, hs, args, NULL));
        CK(cuStreamSynchronize(hs));
        printf("H  16 hashes of 64 MiB on a high-priority stream, %s device: %.3f ms each (%u blocks)\n",
               busyrun ? "busy" : "idle", (now() - h0) / 16, nb);
    }
    CK(cuCtxSynchronize());
    return same ? 0 : 2;
}
