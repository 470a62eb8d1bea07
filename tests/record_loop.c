/* record_loop.c - a program with a loop, for the page table's recording
 * (VPAGE_TABLE, pager/record.h): six 4 MiB buffers, a warm-up of launches
 * of another pattern, ten steps of six launches (kernels ro ro rw ro rw
 * rw, one on each buffer in turn), then three launches after the loop.
 * With RECORD_LONG_NAMES set, the kernels' names are 250 bytes long (as
 * C++ templates' are: longer than vpage keeps). Run under the preload on
 * the fake driver by tests/check_record.sh, which reads the table it
 * leaves. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                   \
    do {                                                              \
        if ((call) != CUDA_SUCCESS) {                                 \
            fprintf(stderr, "record_loop: %s failed\n", #call);       \
            return 1;                                                 \
        }                                                             \
    } while (0)

int main(void)
{
    CUdevice d;
    CUcontext ctx;
    CUmodule m;
    CUfunction f, g;
    CUdeviceptr buf[6], none = 0;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&d, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, d));
    CHECK(cuCtxSetCurrent(ctx));
    char ro[256] = "ro", rw[256] = "rw", image[260];
    if (getenv("RECORD_LONG_NAMES")) { /* the fake's kernel kinds go by their names' first bytes */
        memset(ro + 2, 'x', 248);
        memset(rw + 2, 'x', 248);
        ro[250] = rw[250] = '\0';
    }
    snprintf(image, sizeof image, "%s:2", ro);
    CHECK(cuModuleLoadData(&m, image));
    CHECK(cuModuleGetFunction(&f, m, ro));
    CUmodule m2;
    snprintf(image, sizeof image, "%s:2", rw);
    CHECK(cuModuleLoadData(&m2, image));
    CHECK(cuModuleGetFunction(&g, m2, rw));
    for (int i = 0; i < 6; i++) CHECK(cuMemAlloc(&buf[i], 4 << 20));
    for (int i = 0; i < 5; i++) { /* warm-up: two buffers a launch */
        void *args[2] = {&buf[i], &buf[i + 1]};
        CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
    }
    static const int writes[6] = {0, 0, 1, 0, 1, 1};
    for (int step = 0; step < 10; step++)
        for (int i = 0; i < 6; i++) {
            void *args[2] = {&buf[i], &none};
            CHECK(cuLaunchKernel(writes[i] ? g : f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
        }
    for (int i = 0; i < 3; i++) { /* after the loop */
        void *args[2] = {&buf[5 - i], &none};
        CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
    }
    CHECK(cuCtxSynchronize());
    puts("record_loop: done");
    return 0;
}
