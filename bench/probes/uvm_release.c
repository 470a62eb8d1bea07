/* uvm_release.c - which way of taking managed pages off the GPU gives the
 * device memory back? (uvm_keep.c showed that a prefetch to the host does
 * not: the UVM driver keeps the chunks for that address range.)
 *
 *   cc -O2 -I/usr/local/cuda/include uvm_release.c -L/usr/local/cuda/lib64/stubs -lcuda -o uvm_release
 *
 * Each method gets a fresh 1 GiB window of a managed buffer homed on the
 * host (preferred location host, accessed-by the GPU), filled with a
 * pattern on the host. The window is prefetched to the GPU, then taken off
 * by the method; printed: the device's used memory after the window came
 * in and after it left (relative to the start), the time the method took,
 * and whether the bytes read back from the host are intact.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CK(x) do { CUresult e_ = (x); if (e_ != CUDA_SUCCESS) { printf("error %d at line %d\n", (int)e_, __LINE__); exit(1); } } while (0)

static size_t used0;
static double used_gib(void)
{
    size_t f, t;
    CK(cuMemGetInfo(&f, &t));
    return ((double)(t - f) - (double)used0) / (1 << 30);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum { WRITEBACK, UNSET_ACCESSED_BY, PREFERRED_GPU_THEN_HOST, READ_MOSTLY_COLLAPSE, DISCARD, NMETHODS };
static const char *names[] = {"prefetch to host (write-back)", "unset accessed-by, prefetch to host",
                              "preferred location GPU then host, prefetch to host",
                              "read-mostly duplicate, unset read-mostly", "discard (contents lost)"};

int main(void)
{
    const size_t G = 1ull << 30, n = (size_t)NMETHODS * G;
    CUdevice dev;
    CUcontext ctx;
    CUstream s;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    size_t f, t;
    CK(cuMemGetInfo(&f, &t));
    used0 = t - f;
    CUdeviceptr p;
    CK(cuMemAllocManaged(&p, n, CU_MEM_ATTACH_GLOBAL));
    CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0}, gpu = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CK(cuMemAdvise(p, n, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host));
    CK(cuMemAdvise(p, n, CU_MEM_ADVISE_SET_ACCESSED_BY, gpu));
    memset((void *)p, 0x5a, n); /* concurrent managed access: the host may write it */
    for (int m = 0; m < NMETHODS; m++) {
        CUdeviceptr w = p + (size_t)m * G;
        double before = used_gib();
        if (m == READ_MOSTLY_COLLAPSE) CK(cuMemAdvise(w, G, CU_MEM_ADVISE_SET_READ_MOSTLY, gpu));
        CK(cuMemPrefetchAsync(w, G, gpu, 0, s));
        CK(cuStreamSynchronize(s));
        double in = used_gib(), t0 = now();
        switch (m) {
        case WRITEBACK:
            CK(cuMemPrefetchAsync(w, G, host, 0, s));
            break;
        case UNSET_ACCESSED_BY:
            CK(cuMemAdvise(w, G, CU_MEM_ADVISE_UNSET_ACCESSED_BY, gpu));
            CK(cuMemPrefetchAsync(w, G, host, 0, s));
            CK(cuStreamSynchronize(s));
            CK(cuMemAdvise(w, G, CU_MEM_ADVISE_SET_ACCESSED_BY, gpu));
            break;
        case PREFERRED_GPU_THEN_HOST:
            CK(cuMemAdvise(w, G, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, gpu));
            CK(cuMemAdvise(w, G, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host));
            CK(cuMemPrefetchAsync(w, G, host, 0, s));
            break;
        case READ_MOSTLY_COLLAPSE:
            CK(cuMemAdvise(w, G, CU_MEM_ADVISE_UNSET_READ_MOSTLY, gpu));
            break;
        case DISCARD: {
            size_t sz = G;
            CK(cuMemDiscardBatchAsync(&w, &sz, 1, 0, s));
            break;
        }
        }
        CK(cuStreamSynchronize(s));
        double took = now() - t0;
        /* read back through a copy (not the host's own loads) */
        unsigned char *chk = malloc(G);
        CK(cuMemcpyDtoH(chk, w, G));
        int intact = 1;
        for (size_t i = 0; i < G; i += 4096) intact &= chk[i] == 0x5a;
        free(chk);
        printf("%-52s device before +%.2f, in +%.2f, after +%.2f GiB; %.1f ms; contents %s\n", names[m], before, in,
               used_gib(), took * 1e3, intact ? "intact" : "LOST");
    }
    CK(cuMemFree(p));
    printf("freed: +%.2f GiB\n", used_gib());
    return 0;
}
