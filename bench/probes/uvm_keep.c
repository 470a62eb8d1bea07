/* uvm_keep.c - does the UVM driver give back the device memory of managed
 * pages that were prefetched to the GPU and then back to the host?
 *
 *   cc -O2 -I/usr/local/cuda/include uvm_keep.c -L/usr/local/cuda/lib64/stubs -lcuda -o uvm_keep
 *   ./uvm_keep [GiB, default 8]
 *
 * Managed memory homed on the host (preferred location host, accessed-by
 * the GPU, populated on the host first), as vpage's pager uses it. Prints
 * the device's used memory (cuMemGetInfo) after each phase:
 *   A  the same 1 GiB window in and out five times
 *   B  a window moving over the whole buffer, in and out
 *   C  after a context synchronize and a 2 s pause
 *   D  the first window in again
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CK(x) do { CUresult e_ = (x); if (e_ != CUDA_SUCCESS) { printf("error %d at line %d\n", (int)e_, __LINE__); exit(1); } } while (0)

static size_t used0;
static double used_gib(void)
{
    size_t f, t;
    CK(cuMemGetInfo(&f, &t));
    return ((double)(t - f) - (double)used0) / (1 << 30);
}

int main(int argc, char **argv)
{
    size_t G = 1ull << 30, n = (argc > 1 ? (size_t)atoi(argv[1]) : 8) * G;
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
    CK(cuMemPrefetchAsync(p, n, host, 0, s));
    CK(cuStreamSynchronize(s));
    printf("allocated %zu GiB, placed on the host: device +%.2f GiB\n", n / G, used_gib());
    for (int i = 0; i < 5; i++) {
        CK(cuMemPrefetchAsync(p, G, gpu, 0, s));
        CK(cuStreamSynchronize(s));
        double in = used_gib();
        CK(cuMemPrefetchAsync(p, G, host, 0, s));
        CK(cuStreamSynchronize(s));
        printf("A%d same window: in +%.2f GiB, out +%.2f GiB\n", i, in, used_gib());
    }
    for (size_t w = 1; w < n / G; w++) {
        CK(cuMemPrefetchAsync(p + w * G, G, gpu, 0, s));
        CK(cuStreamSynchronize(s));
        double in = used_gib();
        CK(cuMemPrefetchAsync(p + w * G, G, host, 0, s));
        CK(cuStreamSynchronize(s));
        printf("B%zu moving window: in +%.2f GiB, out +%.2f GiB\n", w, in, used_gib());
    }
    CK(cuCtxSynchronize());
    sleep(2);
    printf("C after sync and 2 s: +%.2f GiB\n", used_gib());
    CK(cuMemPrefetchAsync(p, G, gpu, 0, s));
    CK(cuStreamSynchronize(s));
    printf("D first window in again: +%.2f GiB\n", used_gib());
    CK(cuMemFree(p));
    printf("E freed: +%.2f GiB\n", used_gib());
    return 0;
}
