/* demo.c - what vpage does, on whatever libcuda.so.1 is found (the fake one
 * from tests/ on a machine without a GPU). Reaches the driver the way
 * libcudart does (dlopen + cuGetProcAddress_v2), allocates under a cap,
 * shows a refusal, and prints vpage's stats.
 *
 *   LD_PRELOAD=build/libvpage.so LD_LIBRARY_PATH=build/tests build/tests/demo
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#undef cuGetProcAddress

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

static void *get(gpa_fn gpa, const char *name)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    if (gpa(name, &fn, 13000, 0, &st) != CUDA_SUCCESS || !fn) {
        fprintf(stderr, "demo: no %s\n", name);
        exit(1);
    }
    Dl_info di;
    const char *lib = dladdr(fn, &di) && di.dli_fname ? strrchr(di.dli_fname, '/') : NULL;
    printf("  %-22s -> %s in %s\n", name, di.dli_sname ? di.dli_sname : "?",
           lib ? lib + 1 : (di.dli_fname ? di.dli_fname : "?"));
    return fn;
}

int main(void)
{
    if (!getenv("VPAGE_CAP")) setenv("VPAGE_CAP", "1G", 1); /* before the first CUDA lookup */
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "demo: cannot load libcuda.so.1: %s\n", dlerror());
        return 1;
    }
    gpa_fn gpa = (gpa_fn)dlsym(h, "cuGetProcAddress_v2");
    if (!gpa) {
        fprintf(stderr, "demo: the driver has no cuGetProcAddress_v2\n");
        return 1;
    }
    size_t (*stats)(char *, size_t) = (size_t(*)(char *, size_t))dlsym(RTLD_DEFAULT, "vpage_stats_json");
    printf("vpage demo: the driver's functions as libcudart receives them (VPAGE_CAP=%s)\n", getenv("VPAGE_CAP"));
    CUresult (*init)(unsigned) = (CUresult(*)(unsigned))get(gpa, "cuInit");
    CUresult (*dev_get)(CUdevice *, int) = (CUresult(*)(CUdevice *, int))get(gpa, "cuDeviceGet");
    CUresult (*retain)(CUcontext *, CUdevice) = (CUresult(*)(CUcontext *, CUdevice))get(gpa, "cuDevicePrimaryCtxRetain");
    CUresult (*set)(CUcontext) = (CUresult(*)(CUcontext))get(gpa, "cuCtxSetCurrent");
    CUresult (*info)(size_t *, size_t *) = (CUresult(*)(size_t *, size_t *))get(gpa, "cuMemGetInfo");
    CUresult (*alloc)(CUdeviceptr *, size_t) = (CUresult(*)(CUdeviceptr *, size_t))get(gpa, "cuMemAlloc");
    CUresult (*mfree)(CUdeviceptr) = (CUresult(*)(CUdeviceptr))get(gpa, "cuMemFree");
    if (init(0) != CUDA_SUCCESS) {
        fprintf(stderr, "demo: cuInit failed\n");
        return 1;
    }
    CUdevice d;
    CUcontext ctx;
    dev_get(&d, 0);
    retain(&ctx, d);
    set(ctx);
    size_t fr, tot;
    info(&fr, &tot);
    printf("cuMemGetInfo: %.2f GiB free of %.2f GiB (the cap, not the card)\n", fr / 1073741824.0,
           tot / 1073741824.0);
    CUdeviceptr p[64];
    int n = 0;
    CUresult rc = CUDA_SUCCESS;
    size_t chunk = tot / 4 + 1;
    while (n < 64 && (rc = alloc(&p[n], chunk)) == CUDA_SUCCESS) n++;
    printf("allocated %d x %.2f MiB, then the next one returned %d (CUDA_ERROR_OUT_OF_MEMORY = %d)\n", n,
           chunk / 1048576.0, (int)rc, (int)CUDA_ERROR_OUT_OF_MEMORY);
    while (n > 0) mfree(p[--n]);
    if (stats) {
        static char buf[16384];
        stats(buf, sizeof buf);
        printf("vpage_stats_json(): %s", buf);
    } else {
        printf("vpage is not preloaded: nothing was counted\n");
    }
    fflush(stdout); /* before vpage's exit-time stats on stderr */
    return rc == CUDA_ERROR_OUT_OF_MEMORY ? 0 : 1;
}
