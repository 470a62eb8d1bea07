/* demo.c - what vpage does, on whatever libcuda.so.1 is found (the fake one
 * from tests/ on a machine without a GPU). Reaches the driver the way
 * libcudart does (dlopen + cuGetProcAddress_v2).
 *
 * Paging off: allocates under a cap, shows a refusal, and prints vpage's
 * stats.
 *   LD_PRELOAD=build/libvpage.so LD_LIBRARY_PATH=build/tests build/tests/demo
 * Paging on (VPAGE_PAGING=stream or demand, as `vpage run --cap` sets it):
 * a program twice the cap: four buffers of half the cap each, every one
 * filled, then three rounds of a kernel that increments each buffer's first
 * word, then every first word read back: "same output: yes" when each is
 * what the program wrote plus three.
 *   LD_LIBRARY_PATH=build/tests scripts/vpage run --cap 512M -- build/tests/demo
 * LOCAL_RANK=k (as torchrun sets it for each worker) runs on device k.
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

/* An increment of the 32-bit word at its parameter: PTX for a GPU, the
 * fake driver's "rw" kernel (a 64-bit increment) on the fake. */
static const char ptx_rw[] = ".version 8.0\n.target sm_80\n.address_size 64\n"
                             ".visible .entry rw(.param .u64 p)\n{\n .reg .b64 %rd<2>;\n .reg .b32 %r<3>;\n"
                             " ld.param.u64 %rd1, [p];\n cvta.to.global.u64 %rd1, %rd1;\n"
                             " ld.global.u32 %r1, [%rd1];\n add.s32 %r2, %r1, 1;\n st.global.u32 [%rd1], %r2;\n"
                             " ret;\n}\n";

/* The paging story: four buffers of half the cap each. Returns 0 when
 * every buffer read back as written. */
static int paging_demo(gpa_fn gpa, void *driver, size_t cap)
{
    CUresult (*alloc)(CUdeviceptr *, size_t) = (CUresult(*)(CUdeviceptr *, size_t))get(gpa, "cuMemAlloc");
    CUresult (*set8)(CUdeviceptr, unsigned char, size_t) =
        (CUresult(*)(CUdeviceptr, unsigned char, size_t))get(gpa, "cuMemsetD8");
    CUresult (*load)(CUmodule *, const void *) = (CUresult(*)(CUmodule *, const void *))get(gpa, "cuModuleLoadData");
    CUresult (*getfn)(CUfunction *, CUmodule, const char *) =
        (CUresult(*)(CUfunction *, CUmodule, const char *))get(gpa, "cuModuleGetFunction");
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                       void **, void **) =
        (CUresult(*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                     void **, void **))get(gpa, "cuLaunchKernel");
    CUresult (*dtoh)(void *, CUdeviceptr, size_t) = (CUresult(*)(void *, CUdeviceptr, size_t))get(gpa, "cuMemcpyDtoH");
    CUresult (*mfree)(CUdeviceptr) = (CUresult(*)(CUdeviceptr))get(gpa, "cuMemFree");
    int fake = dlsym(driver, "fake_cuda_used") != NULL;
    CUmodule mod;
    CUfunction rw;
    if (load(&mod, fake ? "rw:1" : ptx_rw) != CUDA_SUCCESS || getfn(&rw, mod, "rw") != CUDA_SUCCESS) {
        fprintf(stderr, "demo: cannot load the kernel\n");
        return 1;
    }
    enum { N = 4, ROUNDS = 3 };
    size_t each = cap / 2 / 4 * 4;
    CUdeviceptr b[N];
    for (int i = 0; i < N; i++)
        if (alloc(&b[i], each) != CUDA_SUCCESS || set8(b[i], (unsigned char)(0x10 * (i + 1)), each) != CUDA_SUCCESS) {
            fprintf(stderr, "demo: buffer %d could not be made\n", i);
            return 1;
        }
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < N; i++) {
            void *args[] = {&b[i]};
            if (launch(rw, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL) != CUDA_SUCCESS) {
                fprintf(stderr, "demo: a launch failed\n");
                return 1;
            }
        }
    int same = 1;
    for (int i = 0; i < N; i++) {
        unsigned w = 0;
        same &= dtoh(&w, b[i], 4) == CUDA_SUCCESS && w == 0x01010101u * (unsigned)(0x10 * (i + 1)) + ROUNDS;
        mfree(b[i]);
    }
    printf("%d buffers of %.0f MiB (%.0f MiB, %.1fx the cap) filled, %d kernels run on them, read back: "
           "same output: %s\n", N, each / 1048576.0, N * each / 1048576.0, (double)(N * each) / (double)cap,
           N * ROUNDS, same ? "yes" : "NO");
    fflush(stdout);
    return same ? 0 : 1;
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
    const char *rank = getenv("LOCAL_RANK");
    if (dev_get(&d, rank ? atoi(rank) : 0) != CUDA_SUCCESS) {
        fprintf(stderr, "demo: no device %s\n", rank);
        return 1;
    }
    retain(&ctx, d);
    set(ctx);
    size_t fr, tot;
    info(&fr, &tot);
    printf("cuMemGetInfo: %.2f GiB free of %.2f GiB (the cap, not the card)\n", fr / 1073741824.0,
           tot / 1073741824.0);
    const char *paging = getenv("VPAGE_PAGING");
    if (paging && (!strcmp(paging, "stream") || !strcmp(paging, "demand"))) return paging_demo(gpa, h, tot);
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
