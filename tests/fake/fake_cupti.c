/* fake_cupti.c - a fake libcupti.so.13 for the CPU suite: the activity
 * calls vpage uses (driver/cupti.h), and records of the fake driver's
 * kernel launches.
 *
 * Enabling kernel records hands fake_cupti_launch to the fake driver
 * (fake_cuda_set_cupti), which calls it at each kernel launch. Once kernel and external-
 * correlation records are enabled, a launch made while an external id is
 * pushed on its thread gets an external-correlation record (that id, a new
 * correlation id) and then a kernel record (the same correlation id, start
 * now, end FAKE_CUPTI_KERNEL_NS later, default 1000), with the real
 * records' layouts (CUpti_ActivityExternalCorrelation, the fields of
 * CUpti_ActivityKernel4..10 vpage reads). Records fill buffers the client
 * hands over (cuptiActivityRegisterCallbacks) and come back to it when a
 * buffer is full or at cuptiActivityFlushAll. FAKE_CUPTI_BUSY=1 makes
 * registering fail, as when another tool holds CUPTI.
 *
 * FAKE_CUPTI_RUNTIME=1 stands for a launch through the CUDA runtime, as
 * PyTorch's are: the runtime's API call begins before the driver-level
 * hook pushes its id, so no external-correlation record comes; instead,
 * once runtime API records are enabled (cuptiActivityEnableRuntimeApi for
 * the launch's cbid, or the RUNTIME kind), a runtime API record
 * (CUpti_ActivityAPI: cbid 211, cudaLaunchKernel; from the push, on the
 * clock of cuptiGetTimestamp, to the launch; threadId as pthread_self)
 * shares the kernel record's correlation id.
 *
 * Kernel records carry the kernel's name (a pointer to the fake driver's
 * copy); FAKE_CUPTI_RW_NS gives kernels named rw* a time of their own,
 * FAKE_CUPTI_RWL_NS those named rwl* (a lookup: shorter than a read of
 * what it points at) one of theirs.
 * FAKE_CUPTI_NAMES_ONLY=1 gives kernel records alone, neither
 * external-correlation nor runtime records, as PyTorch's launches under
 * CUDA 13 got on an H100.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_EXPORT __attribute__((visibility("default")))
#define REC 256 /* bytes a record takes in a buffer here */

typedef void (*req_fn)(uint8_t **buf, size_t *size, size_t *max_records);
typedef void (*done_fn)(void *ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static req_fn req;
static done_fn done;
static int kernels_on, corr_on, runtime_on;
static uint32_t next_corr;
static uint8_t *buf;
static size_t size, used;
static __thread uint64_t stack[16];
static __thread int depth;
static __thread uint64_t pushed_at; /* the runtime call's start, in runtime mode */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

FAKE_EXPORT int cuptiGetTimestamp(uint64_t *t)
{
    *t = now_ns();
    return 0;
}

FAKE_EXPORT int cuptiActivityRegisterCallbacks(req_fn r, done_fn d)
{
    if (getenv("FAKE_CUPTI_BUSY")) return 1; /* CUPTI_ERROR_INVALID_PARAMETER, say */
    req = r;
    done = d;
    return 0;
}

FAKE_EXPORT void fake_cupti_launch(const char *kernel);

FAKE_EXPORT int cuptiActivityEnable(int kind)
{
    if (kind == 10) {
        void (*set)(void (*)(const char *)) =
            (void (*)(void (*)(const char *)))dlsym(RTLD_DEFAULT, "fake_cuda_set_cupti");
        if (set) set(fake_cupti_launch);
        kernels_on = 1;
    }
    if (kind == 39) corr_on = 1;
    if (kind == 5) runtime_on = 1;
    return 0;
}

FAKE_EXPORT int cuptiActivityEnableRuntimeApi(unsigned cbid, uint8_t on)
{
    if (cbid == 211) runtime_on = on;
    return 0;
}

FAKE_EXPORT int cuptiActivityEnableDriverApi(unsigned cbid, uint8_t on) { (void)cbid, (void)on; return 0; }

FAKE_EXPORT int cuptiActivityPushExternalCorrelationId(int kind, uint64_t id)
{
    if (kind != 3 || depth == 16) return 1;
    pushed_at = now_ns() - 1;
    stack[depth++] = id;
    return 0;
}

FAKE_EXPORT int cuptiActivityPopExternalCorrelationId(int kind, uint64_t *last)
{
    if (kind != 3 || !depth) return 1;
    if (last) *last = stack[depth - 1];
    depth--;
    return 0;
}

FAKE_EXPORT int cuptiActivityGetNextRecord(uint8_t *b, size_t valid, void **rec)
{
    size_t off = *rec ? (size_t)((uint8_t *)*rec - b) + REC : 0;
    if (off + REC > valid) return 12; /* CUPTI_ERROR_MAX_LIMIT_REACHED */
    *rec = b + off;
    return 0;
}

FAKE_EXPORT int cuptiGetResultString(int rc, const char **s)
{
    *s = rc ? "fake CUPTI error" : "no error";
    return 0;
}

/* Hands the buffer back. mu held (dropped meanwhile). */
static void deliver_locked(void)
{
    uint8_t *b = buf;
    size_t s = size, v = used;
    buf = NULL;
    used = size = 0;
    if (!b) return;
    pthread_mutex_unlock(&mu);
    done(NULL, 0, b, s, v);
    pthread_mutex_lock(&mu);
}

FAKE_EXPORT int cuptiActivityFlushAll(uint32_t flag)
{
    (void)flag;
    pthread_mutex_lock(&mu);
    if (done) deliver_locked();
    pthread_mutex_unlock(&mu);
    return 0;
}

/* Room for one record. mu held. */
static uint8_t *slot_locked(void)
{
    if (buf && used + REC > size) deliver_locked();
    if (!buf) {
        size_t max = 0;
        req(&buf, &size, &max);
        used = 0;
        if (!buf || size < REC) return NULL;
    }
    uint8_t *r = buf + used;
    memset(r, 0, REC);
    used += REC;
    return r;
}

static void put32(uint8_t *r, size_t off, uint32_t v) { memcpy(r + off, &v, 4); }
static void put64(uint8_t *r, size_t off, uint64_t v) { memcpy(r + off, &v, 8); }

FAKE_EXPORT void fake_cupti_launch(const char *kernel)
{
    const char *ns = getenv("FAKE_CUPTI_KERNEL_NS"), *rw = getenv("FAKE_CUPTI_RW_NS"), *rwl = getenv("FAKE_CUPTI_RWL_NS");
    uint64_t dur = ns ? strtoull(ns, NULL, 10) : 1000, now = now_ns();
    if (rw && kernel && !strncmp(kernel, "rw", 2)) dur = strtoull(rw, NULL, 10);
    if (rwl && kernel && !strncmp(kernel, "rwl", 3)) dur = strtoull(rwl, NULL, 10);
    int runtime = getenv("FAKE_CUPTI_RUNTIME") != NULL, names_only = getenv("FAKE_CUPTI_NAMES_ONLY") != NULL;
    pthread_mutex_lock(&mu);
    if (req && done && kernels_on) {
        uint32_t corr = ++next_corr;
        uint8_t *r;
        if (names_only) {
            /* kernel records alone */
        } else if (runtime && runtime_on && depth && (r = slot_locked())) {
            put32(r, 0, 5);
            put32(r, 4, 211);
            put64(r, 8, pushed_at);
            put64(r, 16, now + 1);
            put32(r, 28, (uint32_t)pthread_self());
            put32(r, 32, corr);
        } else if (!runtime && corr_on && depth && (r = slot_locked())) {
            put32(r, 0, 39);
            put32(r, 4, 3);
            put64(r, 8, stack[depth - 1]);
            put32(r, 16, corr);
        }
        if ((r = slot_locked())) {
            put32(r, 0, 10);
            put64(r, 16, now);
            put64(r, 24, now + dur);
            put32(r, 92, corr);
            put64(r, 104, (uint64_t)(uintptr_t)kernel); /* the fake driver's kernel: lives as long as its module */
        }
    }
    pthread_mutex_unlock(&mu);
}
