/* replay_loop.c - a program whose loop is larger than the cap, for the
 * replay of the page table (VPAGE_TABLE, pager/replay.h): twelve weight
 * buffers of REPLAY_LOOP_MB MiB (default 4) and one activation buffer,
 * REPLAY_LOOP_STEPS (default 6) steps of twelve launches (kernel rw on the activation and on one
 * weight in turn, a kernel's time of about 2 ms slept after each), then
 * every counter read back: each weight's first word was incremented once
 * a step, the activation's twelve times. Prints "replay_loop: ok". Run
 * twice under the preload on the fake driver by tests/check_replay.sh. */
#define _POSIX_C_SOURCE 200809L
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                   \
    do {                                                              \
        if ((call) != CUDA_SUCCESS) {                                 \
            fprintf(stderr, "replay_loop: %s failed\n", #call);       \
            return 1;                                                 \
        }                                                             \
    } while (0)

#define WEIGHTS 12

int main(void)
{
    CUdevice d;
    CUcontext ctx;
    CUmodule m;
    CUfunction rw;
    CUdeviceptr w[WEIGHTS], act;
    const char *mb = getenv("REPLAY_LOOP_MB");
    size_t bytes = (size_t)(mb ? atoi(mb) : 4) << 20;
    const char *steps = getenv("REPLAY_LOOP_STEPS");
    const uint64_t STEPS = steps ? (uint64_t)atoi(steps) : 6;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&d, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, d));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&m, "rw:2"));
    CHECK(cuModuleGetFunction(&rw, m, "rw"));
    CHECK(cuMemAlloc(&act, 2 << 20));
    CHECK(cuMemsetD8(act, 0, 2 << 20));
    for (int i = 0; i < WEIGHTS; i++) {
        CHECK(cuMemAlloc(&w[i], bytes));
        CHECK(cuMemsetD8(w[i], 0, bytes));
    }
    struct timespec kernel = {0, 2000000};
    for (uint64_t step = 0; step < STEPS; step++)
        for (int i = 0; i < WEIGHTS; i++) {
            void *args[2] = {&act, &w[i]};
            CHECK(cuLaunchKernel(rw, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
            nanosleep(&kernel, NULL);
        }
    CHECK(cuCtxSynchronize());
    uint64_t v;
    for (int i = 0; i < WEIGHTS; i++) {
        CHECK(cuMemcpyDtoH(&v, w[i], sizeof v));
        if (v != STEPS) {
            fprintf(stderr, "replay_loop: weight %d counted %llu, not %llu\n", i, (unsigned long long)v,
                    (unsigned long long)STEPS);
            return 1;
        }
    }
    CHECK(cuMemcpyDtoH(&v, act, sizeof v));
    if (v != STEPS * WEIGHTS) {
        fprintf(stderr, "replay_loop: the activation counted %llu, not %llu\n", (unsigned long long)v,
                (unsigned long long)(STEPS * WEIGHTS));
        return 1;
    }
    puts("replay_loop: ok");
    return 0;
}
