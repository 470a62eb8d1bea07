/* replay_loop.c - a program whose loop is larger than the cap, for the
 * replay of the page table (VPAGE_TABLE, pager/replay.h): twelve weight
 * buffers of REPLAY_LOOP_MB MiB (default 4) and one activation buffer
 * holding a small tensor at 1 MiB, REPLAY_LOOP_STEPS (default 6) steps of
 * 24 launches (kernel rw on the activation and one weight in turn, then
 * on the small tensor; a kernel's time of about 1 ms slept after each),
 * then every counter read back: each weight's first word was incremented
 * once a step, the activation's and the small tensor's twelve times.
 * Prints "replay_loop: ok". Run under the preload on the fake driver by
 * tests/check_replay.sh. REPLAY_LOOP_SMALL_IN=k puts the small tensor in
 * the last 8 bytes of weight k instead (as a caching allocator may put a
 * small tensor in the tail of another's block): the same launches, those
 * on the small tensor on other pieces. REPLAY_LOOP_FRESH=1 gives the
 * weights' launches a buffer made anew each step (2 MiB, freed at the
 * step's end) instead of the activation, as a KV cache or a tensor made
 * per token is: its order of making differs from run to run.
 * REPLAY_LOOP_VARIANT=1 runs the small tensor's launches with another
 * kernel of the same work, "rwv" (as a kernel chosen by a length would).
 * REPLAY_LOOP_TAIL=k ends the run with k launches of "rwt" on the
 * activation alone (a run's own last kernels, repeated whole).
 * REPLAY_LOOP_STRIDE=k visits the weights k apart (0, k, 2k, ... then 1,
 * 1+k, ...) instead of in order: each launch is one of the table's, found
 * elsewhere in its step, and the cursor goes back every 12/k weights.
 * REPLAY_LOOP_INIT=k begins the run with k passes over the weights before
 * the loop (as a program builds or loads its weights on the device): a
 * kernel the step never runs, "rwi", on each weight's second word,
 * bringing every weight's first piece in k times; REPLAY_LOOP_INIT_RW=1
 * runs them with the step's kernel rw instead (on pieces no launch of the
 * step has together). REPLAY_LOOP_GARBAGE=k gives the launches on the
 * even weights i the kernel "rwg" instead, with a third word it never
 * reads (as a kernel's struct parameter carries stale stack words): an
 * address in weight (i + 1 + k * step) % 12, another weight each step when
 * k is not 0 (the table's step then has other ones than the run's).
 * REPLAY_LOOP_LOOKUP=1 adds a table of 4 MiB that kernel "rwl" looks up
 * at the start of each step (as an embedding's lookup reads a row; give it
 * a short time with FAKE_CUPTI_RWL_NS): its first word counts the steps. */
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
    CUfunction rwv, rwt, rwi, rwg, rwl;
    CUdeviceptr w[WEIGHTS], act, small, lookup = 0, none = 0;
    const int fresh = getenv("REPLAY_LOOP_FRESH") != NULL, variant = getenv("REPLAY_LOOP_VARIANT") != NULL;
    const char *mb = getenv("REPLAY_LOOP_MB");
    size_t bytes = (size_t)(mb ? atoi(mb) : 4) << 20;
    const char *steps = getenv("REPLAY_LOOP_STEPS"), *stride_s = getenv("REPLAY_LOOP_STRIDE");
    const int stride = stride_s && atoi(stride_s) > 0 && WEIGHTS % atoi(stride_s) == 0 ? atoi(stride_s) : 1;
    const uint64_t STEPS = steps ? (uint64_t)atoi(steps) : 6;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&d, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, d));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&m, "rw:2,rwv:2,rwt:2,rwi:2,rwg:3,rwl:2"));
    CHECK(cuModuleGetFunction(&rw, m, "rw"));
    CHECK(cuModuleGetFunction(&rwv, m, "rwv"));
    CHECK(cuModuleGetFunction(&rwt, m, "rwt"));
    CHECK(cuModuleGetFunction(&rwi, m, "rwi"));
    CHECK(cuModuleGetFunction(&rwg, m, "rwg"));
    CHECK(cuModuleGetFunction(&rwl, m, "rwl"));
    const char *garbage = getenv("REPLAY_LOOP_GARBAGE");
    const int gk = garbage ? atoi(garbage) : 0;
    CHECK(cuMemAlloc(&act, 2 << 20));
    CHECK(cuMemsetD8(act, 0, 2 << 20));
    for (int i = 0; i < WEIGHTS; i++) {
        CHECK(cuMemAlloc(&w[i], bytes));
        CHECK(cuMemsetD8(w[i], 0, bytes));
    }
    if (getenv("REPLAY_LOOP_LOOKUP")) {
        CHECK(cuMemAlloc(&lookup, 4 << 20));
        CHECK(cuMemsetD8(lookup, 0, 4 << 20));
    }
    const char *init = getenv("REPLAY_LOOP_INIT");
    for (int pass = 0; init && pass < atoi(init); pass++)
        for (int i = 0; i < WEIGHTS; i++) {
            CUdeviceptr second = w[i] + 8;
            void *args[2] = {&second, &none};
            CHECK(cuLaunchKernel(getenv("REPLAY_LOOP_INIT_RW") ? rw : rwi, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
        }
    const char *in = getenv("REPLAY_LOOP_SMALL_IN");
    small = in ? w[atoi(in) % WEIGHTS] + bytes - 8 : act + (1 << 20);
    struct timespec kernel = {0, 1000000};
    for (uint64_t step = 0; step < STEPS; step++) {
        CUdeviceptr buf = act;
        if (fresh) {
            CHECK(cuMemAlloc(&buf, 2 << 20));
            CHECK(cuMemsetD8(buf, 0, 2 << 20));
        }
        if (lookup) {
            void *args[2] = {&lookup, &none};
            CHECK(cuLaunchKernel(rwl, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
        }
        for (int k = 0; k < WEIGHTS; k++) {
            int i = k * stride % WEIGHTS + k * stride / WEIGHTS;
            CUdeviceptr stale = w[(i + 1 + gk * (int)step) % WEIGHTS] + 16;
            void *args[3] = {&buf, &w[i], &stale}, *args1[2] = {&small, &none};
            CHECK(cuLaunchKernel(garbage && i % 2 == 0 ? rwg : rw, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
            nanosleep(&kernel, NULL);
            CHECK(cuLaunchKernel(variant ? rwv : rw, 1, 1, 1, 32, 1, 1, 0, NULL, args1, NULL));
            nanosleep(&kernel, NULL);
        }
        if (fresh) {
            uint64_t v;
            CHECK(cuMemcpyDtoH(&v, buf, sizeof v));
            if (v != WEIGHTS) {
                fprintf(stderr, "replay_loop: step %llu's buffer counted %llu, not %d\n", (unsigned long long)step,
                        (unsigned long long)v, WEIGHTS);
                return 1;
            }
            CHECK(cuMemFree(buf));
        }
    }
    const char *tail = getenv("REPLAY_LOOP_TAIL");
    const uint64_t TAIL = tail ? (uint64_t)atoi(tail) : 0;
    for (uint64_t i = 0; i < TAIL; i++) {
        void *args[2] = {&act, &none};
        CHECK(cuLaunchKernel(rwt, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
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
    if (lookup) {
        CHECK(cuMemcpyDtoH(&v, lookup, sizeof v));
        if (v != STEPS) {
            fprintf(stderr, "replay_loop: the lookup counted %llu, not %llu\n", (unsigned long long)v,
                    (unsigned long long)STEPS);
            return 1;
        }
    }
    CHECK(cuMemcpyDtoH(&v, small, sizeof v));
    if (v != STEPS * WEIGHTS) {
        fprintf(stderr, "replay_loop: the small tensor counted %llu, not %llu\n", (unsigned long long)v,
                (unsigned long long)(STEPS * WEIGHTS));
        return 1;
    }
    CHECK(cuMemcpyDtoH(&v, act, sizeof v));
    if (v != (fresh ? 0 : STEPS * WEIGHTS) + TAIL) {
        fprintf(stderr, "replay_loop: the activation counted %llu, not %llu\n", (unsigned long long)v,
                (unsigned long long)((fresh ? 0 : STEPS * WEIGHTS) + TAIL));
        return 1;
    }
    puts("replay_loop: ok");
    return 0;
}
