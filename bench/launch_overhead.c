/* launch_overhead.c - host time per kernel launch, as libcudart reaches the
 * driver (dlopen + cuGetProcAddress_v2 -> cuLaunchKernel).
 *
 * Launches an empty kernel in batches of 256 (a batch never fills the
 * launch queue, so the launch calls do not wait on the GPU) and times only
 * the launch calls. Run it with and without LD_PRELOAD=libvpage.so in one
 * session (bench/launch_overhead.sh) and compare.
 *
 *   launch_overhead [launches]        real GPU: PTX kernel
 *   launch_overhead --fake [launches] fake driver: "empty:0" image
 *
 * LAUNCH_BUFFERS=N (with LAUNCH_BUFFER_MB, default 8) passes each launch a
 * pointer into one of N device buffers in turn (cuMemAlloc), so that under
 * VPAGE_PAGING=stream with a cap above N buffers the launches are fenced
 * on streamed memory that fits: the cost of paging when nothing moves.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#undef cuGetProcAddress

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

static const char ptx[] = ".version 8.0\n.target sm_80\n.address_size 64\n"
                          ".visible .entry empty(.param .u64 p)\n{\n ret;\n}\n";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define GET(var, name)                                                                \
    do {                                                                              \
        CUdriverProcAddressQueryResult st_;                                           \
        if (gpa(name, (void **)&var, 13000, 0, &st_) != CUDA_SUCCESS || !var) {      \
            fprintf(stderr, "no %s\n", name);                                         \
            return 1;                                                                 \
        }                                                                             \
    } while (0)

int main(int argc, char **argv)
{
    int fake = argc > 1 && !strcmp(argv[1], "--fake");
    long n = argc > 1 + fake ? atol(argv[1 + fake]) : 200000;
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    gpa_fn gpa = (gpa_fn)dlsym(h, "cuGetProcAddress_v2");
    CUresult (*init)(unsigned);
    CUresult (*dev_get)(CUdevice *, int);
    CUresult (*retain)(CUcontext *, CUdevice);
    CUresult (*set)(CUcontext);
    CUresult (*load)(CUmodule *, const void *);
    CUresult (*getfn)(CUfunction *, CUmodule, const char *);
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                       void **, void **);
    CUresult (*sync)(void);
    CUresult (*alloc)(CUdeviceptr *, size_t);
    GET(init, "cuInit");
    GET(dev_get, "cuDeviceGet");
    GET(retain, "cuDevicePrimaryCtxRetain");
    GET(set, "cuCtxSetCurrent");
    GET(load, "cuModuleLoadData");
    GET(getfn, "cuModuleGetFunction");
    GET(launch, "cuLaunchKernel");
    GET(sync, "cuCtxSynchronize");
    GET(alloc, "cuMemAlloc");
    CUdevice d;
    CUcontext ctx;
    CUmodule mod;
    CUfunction f;
    if (init(0) || dev_get(&d, 0) || retain(&ctx, d) || set(ctx)) { fprintf(stderr, "no device\n"); return 1; }
    if (load(&mod, fake ? "empty:1" : ptx) || getfn(&f, mod, "empty")) { fprintf(stderr, "no kernel\n"); return 1; }
    const char *nb_s = getenv("LAUNCH_BUFFERS"), *mb_s = getenv("LAUNCH_BUFFER_MB");
    int nb = nb_s ? atoi(nb_s) : 0;
    size_t bytes = (size_t)(mb_s ? atoi(mb_s) : 8) << 20;
    CUdeviceptr buf[256];
    if (nb < 0 || nb > 256) { fprintf(stderr, "LAUNCH_BUFFERS: 0 to 256\n"); return 1; }
    for (int i = 0; i < nb; i++)
        if (alloc(&buf[i], bytes)) { fprintf(stderr, "cuMemAlloc failed\n"); return 1; }
    unsigned long long arg = 0;
    void *params[] = {&arg};
    int next = 0;
#define NEXT_ARG() (arg = nb ? (unsigned long long)buf[next++ % nb] : 0)
    for (int i = 0; i < 2048; i++) { NEXT_ARG(); launch(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL); }
    sync();
    double in_launch = 0;
    long done = 0;
    while (done < n) {
        double t0 = now();
        for (int i = 0; i < 256; i++) {
            NEXT_ARG();
            if (launch(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL) != CUDA_SUCCESS) { fprintf(stderr, "launch failed\n"); return 1; }
        }
        in_launch += now() - t0;
        done += 256;
        sync();
    }
    printf("{\"launches\": %ld, \"buffers\": %d, \"ns_per_launch\": %.1f, \"preloaded\": %s}\n", done, nb,
           in_launch * 1e9 / (double)done,
           dlsym(RTLD_DEFAULT, "vpage_stats_json") ? "true" : "false");
    return 0;
}
