/* foreign_driver.c - a program that finds the driver the way a runtime
 * does: dlopen of a path (argv[1]), then dlsym of each function; first it
 * calls one function found in what is loaded (vpage's export: as in a
 * process where another library already started CUDA, vpage starts and
 * loads its driver then). It
 * initialises, then allocates 2 GiB three times. Exit status: 0 when all
 * three allocations succeeded, 2 when one failed, 3 when cuInit failed.
 * Run by tests/check_fail_closed.sh under the preload on the fake driver
 * (issue 18: a cap must never silently not apply). */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>

typedef CUresult (*init_fn)(unsigned);
typedef CUresult (*dev_fn)(CUdevice *, int);
typedef CUresult (*retain_fn)(CUcontext *, CUdevice);
typedef CUresult (*set_fn)(CUcontext);
typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);

int main(int argc, char **argv)
{
    init_fn first = (init_fn)dlsym(RTLD_DEFAULT, "cuInit");
    if (first) first(0);
    void *h = dlopen(argc > 1 ? argv[1] : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "foreign_driver: %s\n", dlerror());
        return 1;
    }
    init_fn init = (init_fn)dlsym(h, "cuInit");
    dev_fn dev = (dev_fn)dlsym(h, "cuDeviceGet");
    retain_fn retain = (retain_fn)dlsym(h, "cuDevicePrimaryCtxRetain");
    set_fn set = (set_fn)dlsym(h, "cuCtxSetCurrent");
    alloc_fn alloc = (alloc_fn)dlsym(h, "cuMemAlloc_v2");
    CUdevice d;
    CUcontext c;
    CUresult rc = init(0);
    if (rc != CUDA_SUCCESS) {
        printf("foreign_driver: cuInit failed (%d)\n", (int)rc);
        return 3;
    }
    dev(&d, 0);
    retain(&c, d);
    set(c);
    for (int i = 0; i < 3; i++) {
        CUdeviceptr p;
        rc = alloc(&p, (size_t)2 << 30);
        if (rc != CUDA_SUCCESS) {
            printf("foreign_driver: allocation %d of 2 GiB failed (%d)\n", i, (int)rc);
            return 2;
        }
    }
    puts("foreign_driver: 3 x 2 GiB allocated");
    return 0;
}
