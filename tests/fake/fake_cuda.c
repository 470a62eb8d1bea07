/* fake_cuda.c - a fake libcuda.so.1 for the CPU test suite.
 *
 * Implements, on host memory, the part of the driver API vpage wraps or
 * calls, with the same exported names (including _v2 and _ptsz variants)
 * and a cuGetProcAddress that, like the real one, answers one API name with
 * different symbols by version and per-thread-stream flag.
 *
 * Device memory is anonymous mmap (reserved, not committed), so tests can
 * ask for gigabytes. The fake keeps its own books: fake_cuda_used() and
 * fake_cuda_peak() are what "the device" held, the truth vpage's counts are
 * checked against. Environment: FAKE_CUDA_DEVICES (default 2),
 * FAKE_CUDA_MEM (bytes per device, default 8 GiB), FAKE_CUDA_POOL_GRANULE
 * (pool growth step, default 2 MiB).
 *
 * Kernels: cuModuleLoadData/cuLibraryLoadData take a text image
 * "name:nparams,name:nparams"; every parameter is 8 bytes. A PTX image
 * (starting ".version") stands for vpage's hash kernel "vp_hash"
 * (pager/hash.h), which runs at launch with the host reference.
 *
 * Managed memory (cuMemAllocManaged) starts on the host and costs the
 * device nothing; per 64 KiB page the fake keeps where it is: prefetch to
 * the device charges the device, prefetch to the host releases pages that
 * are only on the device (a read-mostly duplicate stays, as on the real
 * driver), and unsetting read-mostly drops duplicates. Nothing migrates on
 * its own. FAKE_CUDA_NO_MANAGED_ACCESS=1 makes devices report no
 * concurrent managed access; FAKE_CUDA_UVM_KEEPS=1 makes the device keep
 * the memory of pages that left it, as the UVM driver was seen to do
 * (bench/probes/uvm_keep.c): it stays in fake_cuda_used until the
 * allocation is freed, and only those same pages coming back reuse it.
 * FAKE_CUDA_FAIL=NAME:N makes every N-th call of a VMM or event function
 * fail (the faults section below).
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../pager/hash.h"

#undef cuGetProcAddress

#define FAKE_EXPORT __attribute__((visibility("default")))
#define MAXDEV 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ndev = -1;
static uint64_t mem_per_dev, granule;
static uint64_t used[MAXDEV], peak[MAXDEV];
static atomic_uint_fast64_t launches, graph_launches;
static _Thread_local int cur_dev = 0;
static int initialised;

struct alloc {
    uint64_t ptr, size, charged;
    int dev;
    int kind; /* 0 plain, 1 pool, 2 vmm, 3 array, 4 captured into a graph, 5 managed */
    struct pool *pool;
    struct alloc *next;
    uint8_t *pages; /* managed: per page, bit 0 on the device, bit 1 read-mostly, bit 2 memory kept */
    uint64_t kept;  /* managed: bytes of device memory kept for pages that left */
    int fd;         /* vmm: the physical memory (a memfd), mapped by cuMemMap */
};
#define MPAGE (64ull << 10)
static atomic_uint_fast64_t managed_in, managed_out, prefetch_calls;

/* Pages of managed allocation a leave the device: b bytes. mu held. */
static void managed_leave(struct alloc *a, uint64_t i, uint64_t b)
{
    a->charged -= b;
    managed_out += b;
    if (getenv("FAKE_CUDA_UVM_KEEPS")) {
        a->pages[i] |= 4;
        a->kept += b;
    } else {
        used[a->dev] -= b;
    }
}
static struct alloc *allocs;
static uint64_t next_handle = 0x1000;

struct pool {
    int dev;
    uint64_t reserved, in_use, threshold;
    uint64_t reserved_high, used_high; /* high marks, reset by setting them (to 0) */
};
static struct pool default_pool[MAXDEV];
static struct pool *current_pool[MAXDEV]; /* cuDeviceSetMemPool's; NULL: the default */

/* Stream capture, simplified: one capture at a time. Stream-ordered
 * allocations made while capturing become graph memory; querying a pool
 * while capturing invalidates the capture, as the real driver does in
 * global capture mode. */
static int capturing, capture_broken, capture_global;
/* each thread's capture interaction mode (cuThreadExchangeStreamCaptureMode):
 * during a global-mode capture, a thread not in relaxed mode that makes an
 * unsafe call (a synchronisation) gets CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
 * and the capture is invalidated, as with the real driver */
static __thread int thread_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
static atomic_int relaxed_threads;
FAKE_EXPORT int fake_cuda_relaxed_threads(void) { return atomic_load(&relaxed_threads); }
static CUresult unsafe_call(void)
{
    if (!__atomic_load_n(&capturing, __ATOMIC_ACQUIRE) || !capture_global ||
        thread_mode == CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_SUCCESS;
    __atomic_store_n(&capture_broken, 1, __ATOMIC_RELEASE);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}
FAKE_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    int old = thread_mode;
    thread_mode = (int)*mode;
    if (thread_mode == CU_STREAM_CAPTURE_MODE_RELAXED && old != CU_STREAM_CAPTURE_MODE_RELAXED)
        atomic_fetch_add(&relaxed_threads, 1);
    *mode = (CUstreamCaptureMode)old;
    return CUDA_SUCCESS;
}
static uint64_t captured_bytes, graph_reserved[MAXDEV];

struct fkernel {
    char name[320]; /* longer than vpage keeps (VP_KERNEL_NAME), as C++ templates' are */
    int nparams;
    int is_kernel; /* CUkernel (library) vs CUfunction */
    struct fkernel *kernel_of;
};

/* A fork while another thread is inside the fake must not leave mu held in
 * the child (the real driver is simply unusable after fork; the fake stays
 * usable so vpage's own fork handling can be tested). */
static void fork_lock(void) { pthread_mutex_lock(&mu); }
static void fork_unlock(void) { pthread_mutex_unlock(&mu); }
__attribute__((constructor)) static void fake_ctor(void) { pthread_atfork(fork_lock, fork_unlock, fork_unlock); }

static void setup(void)
{
    if (ndev >= 0) return;
    const char *s = getenv("FAKE_CUDA_DEVICES");
    ndev = s ? atoi(s) : 2;
    if (ndev < 1 || ndev > MAXDEV) ndev = 2;
    s = getenv("FAKE_CUDA_MEM");
    mem_per_dev = s ? strtoull(s, NULL, 0) : (8ull << 30);
    s = getenv("FAKE_CUDA_POOL_GRANULE");
    granule = s ? strtoull(s, NULL, 0) : (2ull << 20);
    for (int i = 0; i < MAXDEV; i++) default_pool[i].dev = i;
}

/* Charges the device; caller holds mu. */
static int charge(int dev, uint64_t bytes)
{
    if (used[dev] + bytes > mem_per_dev) return -1;
    used[dev] += bytes;
    if (used[dev] > peak[dev]) peak[dev] = used[dev];
    return 0;
}

static uint64_t map_mem(uint64_t size)
{
    void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? 0 : (uint64_t)(uintptr_t)p;
}

static struct alloc *take(uint64_t ptr, int kind)
{
    for (struct alloc **a = &allocs; *a; a = &(*a)->next)
        if ((*a)->ptr == ptr && (*a)->kind == kind) {
            struct alloc *x = *a;
            *a = x->next;
            return x;
        }
    return NULL;
}

static void record(uint64_t ptr, uint64_t size, uint64_t charged, int dev, int kind, struct pool *p)
{
    struct alloc *a = calloc(1, sizeof *a);
    *a = (struct alloc){ptr, size, charged, dev, kind, p, allocs, NULL, 0, -1};
    allocs = a;
}

/* ---- inspection API for tests ---- */
FAKE_EXPORT uint64_t fake_cuda_used(int dev) { pthread_mutex_lock(&mu); uint64_t v = used[dev]; pthread_mutex_unlock(&mu); return v; }
FAKE_EXPORT uint64_t fake_cuda_peak(int dev) { pthread_mutex_lock(&mu); uint64_t v = peak[dev]; pthread_mutex_unlock(&mu); return v; }
FAKE_EXPORT uint64_t fake_cuda_launches(void) { return atomic_load(&launches); }
FAKE_EXPORT uint64_t fake_cuda_graph_launches(void) { return atomic_load(&graph_launches); }

/* ---- init, devices, contexts ---- */
FAKE_EXPORT CUresult cuInit(unsigned int flags)
{
    (void)flags;
    pthread_mutex_lock(&mu);
    setup();
    initialised = 1;
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}
#define NEED_INIT() do { if (!initialised) return CUDA_ERROR_NOT_INITIALIZED; } while (0)

FAKE_EXPORT CUresult cuDriverGetVersion(int *v) { *v = 13000; return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuDeviceGetCount(int *n) { NEED_INIT(); *n = ndev; return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuDeviceGet(CUdevice *d, int ord)
{
    NEED_INIT();
    if (ord < 0 || ord >= ndev) return CUDA_ERROR_INVALID_DEVICE;
    *d = ord;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuDeviceTotalMem_v2(size_t *b, CUdevice d)
{
    NEED_INIT();
    if (d < 0 || d >= ndev) return CUDA_ERROR_INVALID_DEVICE;
    *b = mem_per_dev;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d)
{
    NEED_INIT();
    if (d < 0 || d >= ndev) return CUDA_ERROR_INVALID_DEVICE;
    *c = (CUcontext)(uintptr_t)(0x100 + d);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxSetCurrent(CUcontext c)
{
    NEED_INIT();
    cur_dev = (int)((uintptr_t)c - 0x100);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuCtxGetCurrent(CUcontext *c) { *c = (CUcontext)(uintptr_t)(0x100 + cur_dev); return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuCtxGetDevice(CUdevice *d) { NEED_INIT(); *d = cur_dev; return CUDA_SUCCESS; }
static CUresult ctx_sync(void);
FAKE_EXPORT CUresult cuCtxSynchronize(void) { return ctx_sync(); }
FAKE_EXPORT CUresult cuGetErrorString(CUresult e, const char **s)
{
    *s = e == CUDA_SUCCESS ? "no error" : e == CUDA_ERROR_OUT_OF_MEMORY ? "out of memory" : "fake error";
    return CUDA_SUCCESS;
}

/* ---- plain memory ---- */
FAKE_EXPORT CUresult cuMemGetInfo_v2(size_t *f, size_t *t)
{
    NEED_INIT();
    pthread_mutex_lock(&mu);
    *f = mem_per_dev - used[cur_dev];
    *t = mem_per_dev;
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}

static CUresult plain_alloc(CUdeviceptr *p, uint64_t size)
{
    NEED_INIT();
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&mu);
    if (charge(cur_dev, size)) { pthread_mutex_unlock(&mu); return CUDA_ERROR_OUT_OF_MEMORY; }
    uint64_t ptr = map_mem(size);
    record(ptr, size, size, cur_dev, 0, NULL);
    pthread_mutex_unlock(&mu);
    *p = ptr;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t size) { return plain_alloc(p, size); }
FAKE_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *p, size_t size, unsigned int flags)
{
    (void)flags;
    NEED_INIT();
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    uint8_t *pages = calloc((size + MPAGE - 1) / MPAGE, 1);
    uint64_t ptr = map_mem(size);
    if (!pages || !ptr) { free(pages); return CUDA_ERROR_OUT_OF_MEMORY; }
    pthread_mutex_lock(&mu);
    record(ptr, size, 0, cur_dev, 5, NULL);
    allocs->pages = pages;
    pthread_mutex_unlock(&mu);
    *p = ptr;
    return CUDA_SUCCESS;
}

/* The managed allocation holding [p, p+n), or NULL; mu held. */
static struct alloc *managed_of(uint64_t p, uint64_t n)
{
    for (struct alloc *a = allocs; a; a = a->next)
        if (a->kind == 5 && p >= a->ptr && p + n <= a->ptr + a->size) return a;
    return NULL;
}

static uint64_t page_bytes(struct alloc *a, uint64_t i)
{
    uint64_t off = i * MPAGE;
    return a->size - off < MPAGE ? a->size - off : MPAGE;
}

FAKE_EXPORT CUresult cuMemAdvise_v2(CUdeviceptr p, size_t n, CUmem_advise adv, CUmemLocation loc)
{
    (void)loc;
    NEED_INIT();
    pthread_mutex_lock(&mu);
    struct alloc *a = managed_of(p, n);
    if (!a || !n) { pthread_mutex_unlock(&mu); return CUDA_ERROR_INVALID_VALUE; }
    for (uint64_t i = (p - a->ptr) / MPAGE; i * MPAGE < p + n - a->ptr; i++) {
        if (adv == CU_MEM_ADVISE_SET_READ_MOSTLY) a->pages[i] |= 2;
        if (adv == CU_MEM_ADVISE_UNSET_READ_MOSTLY) {
            if (a->pages[i] == 3) { /* the duplicate goes; the host copy stays */
                managed_leave(a, i, page_bytes(a, i));
                a->pages[i] &= 4;
            }
            a->pages[i] &= 5;
        }
    }
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemPrefetchAsync_v2(CUdeviceptr p, size_t n, CUmemLocation loc, unsigned int flags, CUstream s)
{
    (void)flags; (void)s;
    NEED_INIT();
    atomic_fetch_add(&prefetch_calls, 1);
    pthread_mutex_lock(&mu);
    struct alloc *a = managed_of(p, n);
    if (!a || !n) { pthread_mutex_unlock(&mu); return CUDA_ERROR_INVALID_VALUE; }
    int to_dev = loc.type == CU_MEM_LOCATION_TYPE_DEVICE;
    for (uint64_t i = (p - a->ptr) / MPAGE; i * MPAGE < p + n - a->ptr; i++) {
        uint64_t b = page_bytes(a, i);
        if (to_dev && !(a->pages[i] & 1)) {
            if (a->pages[i] & 4) { /* its kept memory is reused */
                a->kept -= b;
                a->pages[i] &= ~4;
            } else if (charge(a->dev, b)) {
                pthread_mutex_unlock(&mu);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            a->charged += b;
            a->pages[i] |= 1;
            managed_in += b;
        } else if (!to_dev && (a->pages[i] & 3) == 1) { /* a read-mostly duplicate stays */
            managed_leave(a, i, b);
            a->pages[i] &= ~1;
        }
    }
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}

/* Bytes of managed [p, p+n) on the device now. */
FAKE_EXPORT uint64_t fake_cuda_resident(uint64_t p, uint64_t n)
{
    uint64_t r = 0;
    pthread_mutex_lock(&mu);
    struct alloc *a = managed_of(p, n);
    for (uint64_t i = a ? (p - a->ptr) / MPAGE : 0; a && i * MPAGE < p + n - a->ptr; i++)
        if (a->pages[i] & 1) r += page_bytes(a, i);
    pthread_mutex_unlock(&mu);
    return r;
}

FAKE_EXPORT uint64_t fake_cuda_managed_in(void) { return atomic_load(&managed_in); }
FAKE_EXPORT uint64_t fake_cuda_managed_out(void) { return atomic_load(&managed_out); }
FAKE_EXPORT uint64_t fake_cuda_prefetch_calls(void) { return atomic_load(&prefetch_calls); }

FAKE_EXPORT CUresult cuStreamCreate(CUstream *s, unsigned int flags)
{
    (void)flags;
    static atomic_uintptr_t next_stream = 0x5000;
    *s = (CUstream)atomic_fetch_add(&next_stream, 1);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamCreateWithPriority(CUstream *s, unsigned int flags, int priority)
{
    (void)priority;
    return cuStreamCreate(s, flags);
}
FAKE_EXPORT CUresult cuCtxGetStreamPriorityRange(int *least, int *greatest)
{
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream s) { (void)s; return CUDA_SUCCESS; }

/* Pinned host memory: plain host memory here. */
FAKE_EXPORT CUresult cuMemHostAlloc(void **p, size_t n, unsigned int flags)
{
    (void)flags;
    *p = calloc(1, n ? n : 1);
    return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
FAKE_EXPORT CUresult cuMemFreeHost(void *p)
{
    free(p);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice d)
{
    NEED_INIT();
    if (d < 0 || d >= ndev) return CUDA_ERROR_INVALID_DEVICE;
    *v = attr == CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS ? !getenv("FAKE_CUDA_NO_MANAGED_ACCESS") : 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *h, CUdeviceptr p)
{
    (void)p;
    memset(h, 0, sizeof *h);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned int elem)
{
    (void)elem;
    *pitch = (w + 511) / 512 * 512;
    return plain_alloc(p, (uint64_t)*pitch * h);
}

static CUresult free_any(CUdeviceptr p, int sync)
{
    NEED_INIT();
    pthread_mutex_lock(&mu);
    struct alloc *a = take(p, 0);
    if (!a) a = take(p, 1);
    if (!a) a = take(p, 4);
    if (!a) a = take(p, 5);
    if (!a) { pthread_mutex_unlock(&mu); return CUDA_ERROR_INVALID_VALUE; }
    if (a->kind == 4) {
        /* graph memory: the graph pool keeps it */
    } else if (a->kind == 1) {
        a->pool->in_use -= a->size;
        (void)sync;
    } else {
        used[a->dev] -= a->charged + a->kept;
    }
    munmap((void *)(uintptr_t)a->ptr, a->size ? a->size : 1);
    pthread_mutex_unlock(&mu);
    free(a->pages);
    free(a);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr p) { return free_any(p, 1); }

/* ---- pools ---- */
static void pool_trim(struct pool *p, uint64_t keep)
{
    uint64_t floor = p->in_use > keep ? p->in_use : keep;
    floor = (floor + granule - 1) / granule * granule;
    if (p->reserved > floor) {
        used[p->dev] -= p->reserved - floor;
        p->reserved = floor;
    }
}

static CUresult pool_alloc(CUdeviceptr *out, size_t size, struct pool *p)
{
    NEED_INIT();
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&mu);
    if (capturing) {
        captured_bytes += size;
        uint64_t ptr = map_mem(size);
        record(ptr, size, 0, p->dev, 4, NULL);
        pthread_mutex_unlock(&mu);
        *out = ptr; /* a graph allocation: backed when the graph is launched */
        return CUDA_SUCCESS;
    }
    if (p->in_use + size > p->reserved) {
        uint64_t grow = (p->in_use + size - p->reserved + granule - 1) / granule * granule;
        if (charge(p->dev, grow)) { pthread_mutex_unlock(&mu); return CUDA_ERROR_OUT_OF_MEMORY; }
        p->reserved += grow;
    }
    p->in_use += size;
    if (p->in_use > p->used_high) p->used_high = p->in_use;
    if (p->reserved > p->reserved_high) p->reserved_high = p->reserved;
    uint64_t ptr = map_mem(size);
    record(ptr, size, 0, p->dev, 1, p);
    pthread_mutex_unlock(&mu);
    *out = ptr;
    return CUDA_SUCCESS;
}

/* FAKE_CUDA_NO_POOL_QUERY=1: the pool cannot be looked up (an old driver) */
FAKE_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *p, CUdevice d)
{
    NEED_INIT();
    if (getenv("FAKE_CUDA_NO_POOL_QUERY")) return CUDA_ERROR_NOT_SUPPORTED;
    *p = (CUmemoryPool)(current_pool[d] ? current_pool[d] : &default_pool[d]);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *p, CUdevice d)
{
    NEED_INIT();
    *p = (CUmemoryPool)&default_pool[d];
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuDeviceSetMemPool(CUdevice d, CUmemoryPool p)
{
    NEED_INIT();
    current_pool[d] = (struct pool *)p;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *p, const CUmemPoolProps *props)
{
    NEED_INIT();
    struct pool *np = calloc(1, sizeof *np);
    np->dev = props->location.id;
    *p = (CUmemoryPool)np;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    struct pool *p = (struct pool *)pool;
    pthread_mutex_lock(&mu);
    used[p->dev] -= p->reserved;
    pthread_mutex_unlock(&mu);
    if (p < default_pool || p >= default_pool + MAXDEV) free(p);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    pthread_mutex_lock(&mu);
    pool_trim((struct pool *)pool, keep);
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *v)
{
    struct pool *p = (struct pool *)pool;
    pthread_mutex_lock(&mu);
    CUresult rc = CUDA_SUCCESS;
    if (capturing) capture_broken = 1;
    if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) *(cuuint64_t *)v = p->reserved;
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_CURRENT) *(cuuint64_t *)v = p->in_use;
    else if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) *(cuuint64_t *)v = p->threshold;
    else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH) *(cuuint64_t *)v = p->reserved_high;
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH) *(cuuint64_t *)v = p->used_high;
    else rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&mu);
    return rc;
}
FAKE_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *v)
{
    struct pool *p = (struct pool *)pool;
    /* a high mark may only be set to 0, which resets it to the current value */
    int high = attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH || attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH;
    if (high && *(cuuint64_t *)v) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&mu);
    CUresult rc = CUDA_SUCCESS;
    if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) p->threshold = *(cuuint64_t *)v;
    else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH) p->reserved_high = p->reserved;
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH) p->used_high = p->in_use;
    else rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&mu);
    return rc;
}
/* A stream sync releases pool memory above each pool's threshold, as the real driver does. */
FAKE_EXPORT CUresult cuStreamSynchronize(CUstream s)
{
    (void)s;
    CUresult u = unsafe_call();
    if (u != CUDA_SUCCESS) return u;
    pthread_mutex_lock(&mu);
    for (int d = 0; d < MAXDEV; d++) pool_trim(&default_pool[d], default_pool[d].threshold);
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}
static struct pool *pool_now(void) { return current_pool[cur_dev] ? current_pool[cur_dev] : &default_pool[cur_dev]; }
FAKE_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *p, size_t n, CUstream s) { (void)s; return pool_alloc(p, n, pool_now()); }
FAKE_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *p, size_t n, CUstream s) { (void)s; return pool_alloc(p, n, pool_now()); }
FAKE_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *p, size_t n, CUmemoryPool pool, CUstream s) { (void)s; return pool_alloc(p, n, (struct pool *)pool); }
FAKE_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *p, size_t n, CUmemoryPool pool, CUstream s) { (void)s; return pool_alloc(p, n, (struct pool *)pool); }
FAKE_EXPORT CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) { (void)s; return free_any(p, 0); }
FAKE_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) { (void)s; return free_any(p, 0); }

/* ---- faults ----
 * FAKE_CUDA_FAIL=NAME:N[,NAME:N...]: every N-th call of each NAME
 * (cuMemCreate, cuMemMap, cuMemUnmap, cuMemSetAccess, cuEventRecord,
 * cuEventQuery) fails with CUDA_ERROR_UNKNOWN and does nothing, as a
 * driver may under memory pressure or a reset; read at each call. */
enum { F_CREATE, F_MAP, F_UNMAP, F_ACCESS, F_RECORD, F_QUERY, F_COUNT };
static const char *const fail_names[F_COUNT] = {"cuMemCreate", "cuMemMap", "cuMemUnmap", "cuMemSetAccess",
                                                "cuEventRecord", "cuEventQuery"};
static atomic_uint_fast64_t fail_calls[F_COUNT], failed_calls;
FAKE_EXPORT uint64_t fake_cuda_failed(void) { return atomic_load(&failed_calls); }
static int injected(int which)
{
    const char *v = getenv("FAKE_CUDA_FAIL"), *p;
    size_t n = strlen(fail_names[which]);
    for (p = v; p && (p = strstr(p, fail_names[which])) && p[n] != ':'; p += n) {}
    if (!p) return 0;
    uint64_t every = strtoull(p + n + 1, NULL, 10);
    if (!every || (atomic_fetch_add(&fail_calls[which], 1) + 1) % every) return 0;
    atomic_fetch_add(&failed_calls, 1);
    return 1;
}

/* ---- VMM ---- */
/* What each mapped range of a reserved address stands on: a device's
 * memory or host memory (host-located handles). A kernel touching host
 * memory reads it over the bus: counted by fake_cuda_remote_touches. */
#define MAPPED 4096
struct mapping { uint64_t p, size; int on_host; };
static struct mapping mapped[MAPPED];
static int nmapped;
static atomic_uint_fast64_t remote_touches;
FAKE_EXPORT uint64_t fake_cuda_remote_touches(void) { return atomic_load(&remote_touches); }
/* [p, p+size) now maps handle h (0: nothing). */
static void mapped_note(uint64_t p, uint64_t size, uint64_t h)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nmapped; i++)
        if (mapped[i].p < p + size && p < mapped[i].p + mapped[i].size) mapped[i--] = mapped[--nmapped];
    int on_host = 0;
    for (struct alloc *a = allocs; a && h; a = a->next)
        if (a->ptr == h && a->kind == 2) on_host = !a->charged;
    if (h && nmapped < MAPPED) mapped[nmapped++] = (struct mapping){p, size, on_host};
    pthread_mutex_unlock(&mu);
}
static void touched(uint64_t addr)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nmapped; i++)
        if (addr >= mapped[i].p && addr < mapped[i].p + mapped[i].size && mapped[i].on_host)
            atomic_fetch_add(&remote_touches, 1);
    pthread_mutex_unlock(&mu);
}
static atomic_uint_fast64_t host_handles; /* host-located memory made and not released */
FAKE_EXPORT uint64_t fake_cuda_host_handles(void) { return atomic_load(&host_handles); }
static void check_unmap(uint64_t p, uint64_t size);
static void in_flight(uint64_t addr);
FAKE_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t size, const CUmemAllocationProp *prop, unsigned long long flags)
{
    (void)flags;
    NEED_INIT();
    if (injected(F_CREATE)) return CUDA_ERROR_UNKNOWN;
    int on_dev = prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
    if (!on_dev && prop->location.type != CU_MEM_LOCATION_TYPE_HOST_NUMA) return CUDA_ERROR_INVALID_VALUE;
    if (!size || size % (2ull << 20)) return CUDA_ERROR_INVALID_VALUE;
    int fd = memfd_create("fake-vmm", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size)) {
        if (fd >= 0) close(fd);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&mu);
    if (on_dev && charge(prop->location.id, size)) { pthread_mutex_unlock(&mu); close(fd); return CUDA_ERROR_OUT_OF_MEMORY; }
    uint64_t id = next_handle++;
    record(id, size, on_dev ? size : 0, on_dev ? prop->location.id : 0, 2, NULL);
    allocs->fd = fd;
    pthread_mutex_unlock(&mu);
    if (!on_dev) atomic_fetch_add(&host_handles, 1);
    *h = id;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    pthread_mutex_lock(&mu);
    struct alloc *a = take(h, 2);
    if (a) used[a->dev] -= a->charged;
    pthread_mutex_unlock(&mu);
    if (a && !a->charged) atomic_fetch_sub(&host_handles, 1);
    if (a) close(a->fd);
    free(a);
    return a ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
FAKE_EXPORT CUresult cuMemGetAllocationGranularity(size_t *g, const CUmemAllocationProp *prop, CUmemAllocationGranularity_flags o)
{
    (void)prop; (void)o;
    *g = 2ull << 20;
    return CUDA_SUCCESS;
}
/* Reserved ranges are inaccessible until mapped, as on the device. */
FAKE_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *p, size_t size, size_t align, CUdeviceptr addr, unsigned long long f)
{
    (void)addr; (void)f;
    if (!align) align = 2ull << 20;
    void *m = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t start = (uint64_t)(uintptr_t)m, b = (start + align - 1) / align * align;
    /* the slack around the aligned range goes now: cuMemAddressFree frees
     * the range alone, and a long run would otherwise leave two mappings a
     * reservation until the process's map count runs out */
    if (b > start) munmap(m, b - start);
    if (start + size + align > b + size) munmap((void *)(uintptr_t)(b + size), start + size + align - b - size);
    *p = b;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemAddressFree(CUdeviceptr p, size_t size) { munmap((void *)(uintptr_t)p, size); return CUDA_SUCCESS; }
/* A mapping is the handle's memfd mapped shared at the address: two
 * addresses mapping one handle see the same bytes. */
FAKE_EXPORT CUresult cuMemMap(CUdeviceptr p, size_t size, size_t off, CUmemGenericAllocationHandle h, unsigned long long f)
{
    (void)f;
    if (injected(F_MAP)) return CUDA_ERROR_UNKNOWN;
    pthread_mutex_lock(&mu);
    int fd = -1;
    for (struct alloc *a = allocs; a; a = a->next)
        if (a->ptr == h && a->kind == 2) fd = off + size <= a->size ? a->fd : -1;
    pthread_mutex_unlock(&mu);
    if (fd < 0 || off) return CUDA_ERROR_INVALID_VALUE;
    void *m = mmap((void *)(uintptr_t)p, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) return CUDA_ERROR_INVALID_VALUE;
    mapped_note(p, size, h);
    return CUDA_SUCCESS;
}
/* An unmapped address faults when touched, as on the device. */
FAKE_EXPORT CUresult cuMemUnmap(CUdeviceptr p, size_t size)
{
    if (injected(F_UNMAP)) return CUDA_ERROR_UNKNOWN;
    check_unmap(p, size);
    mapped_note(p, size, 0);
    void *m = mmap((void *)(uintptr_t)p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuMemSetAccess(CUdeviceptr p, size_t size, const CUmemAccessDesc *d, size_t n)
{
    (void)p; (void)size;
    if (injected(F_ACCESS)) return CUDA_ERROR_UNKNOWN;
    return d && n ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- events ----
 * Work runs when issued. With FAKE_CUDA_LAG_MS=n, the default stream's
 * work (the tests launch there; vpage's own streams are created ones) is
 * "in flight" for n ms: an event recorded on it completes n ms later, and
 * an unmap of an address an rw kernel touched less than n ms ago is
 * counted as a violation (fake_cuda_violations), the fault a real device
 * would take; cuCtxSynchronize returns once all of it has run. */
static atomic_uint_fast64_t events_recorded, violations;
FAKE_EXPORT uint64_t fake_cuda_events_recorded(void) { return atomic_load(&events_recorded); }
FAKE_EXPORT uint64_t fake_cuda_violations(void) { return atomic_load(&violations); }

static double fake_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double lag_s(void)
{
    const char *v = getenv("FAKE_CUDA_LAG_MS");
    return v ? atof(v) / 1000.0 : 0.0;
}

#define FLIGHT 4096
static struct { uint64_t addr; double until; } flight[FLIGHT];
static size_t flight_next;

static void in_flight(uint64_t addr)
{
    double lag = lag_s();
    if (lag <= 0) return;
    pthread_mutex_lock(&mu);
    flight[flight_next % FLIGHT].addr = addr;
    flight[flight_next % FLIGHT].until = fake_now() + lag;
    flight_next++;
    pthread_mutex_unlock(&mu);
}

static void check_unmap(uint64_t p, uint64_t size)
{
    double now = fake_now();
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < FLIGHT; i++)
        if (flight[i].until > now && flight[i].addr >= p && flight[i].addr < p + size) atomic_fetch_add(&violations, 1);
    pthread_mutex_unlock(&mu);
}

/* Every kernel in flight has run: the context synchronised (every
 * device's, in the fake; its work lags on every stream alike). */
static CUresult ctx_sync(void)
{
    CUresult u = unsafe_call();
    if (u != CUDA_SUCCESS) return u;
    double last = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < FLIGHT; i++)
        if (flight[i].until > last) last = flight[i].until;
    pthread_mutex_unlock(&mu);
    double left = last - fake_now();
    if (left > 0) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuEventCreate(CUevent *e, unsigned int flags) { (void)flags; *e = (CUevent)calloc(1, sizeof(double)); return *e ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY; }
FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent e) { free(e); return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuEventRecord(CUevent e, CUstream s)
{
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (injected(F_RECORD)) return CUDA_ERROR_UNKNOWN;
    atomic_fetch_add(&events_recorded, 1);
    int dflt = !s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
    *(volatile double *)e = fake_now() + (dflt ? lag_s() : 0.0);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuEventQuery(CUevent e)
{
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (injected(F_QUERY)) return CUDA_ERROR_UNKNOWN;
    return fake_now() >= *(volatile double *)e ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}
FAKE_EXPORT CUresult cuEventSynchronize(CUevent e)
{
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    CUresult u = unsafe_call();
    if (u != CUDA_SUCCESS) return u;
    double left = *(volatile double *)e - fake_now();
    if (left > 0) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return CUDA_SUCCESS;
}

/* ---- arrays: the fake rounds every array up to 64 KiB, as drivers pad ---- */
static uint64_t array_size(uint64_t w, uint64_t h, uint64_t d, uint64_t ch, CUarray_format f)
{
    uint64_t eb = f == CU_AD_FORMAT_FLOAT || f == CU_AD_FORMAT_UNSIGNED_INT32 || f == CU_AD_FORMAT_SIGNED_INT32 ? 4
                  : f == CU_AD_FORMAT_HALF || f == CU_AD_FORMAT_UNSIGNED_INT16 || f == CU_AD_FORMAT_SIGNED_INT16 ? 2 : 1;
    uint64_t raw = w * (h ? h : 1) * (d ? d : 1) * (ch ? ch : 1) * eb;
    return (raw + 65535) / 65536 * 65536;
}
static CUresult array_create(CUarray *a, uint64_t size)
{
    NEED_INIT();
    pthread_mutex_lock(&mu);
    if (charge(cur_dev, size)) { pthread_mutex_unlock(&mu); return CUDA_ERROR_OUT_OF_MEMORY; }
    uint64_t id = next_handle++;
    record(id, size, size, cur_dev, 3, NULL);
    pthread_mutex_unlock(&mu);
    *a = (CUarray)(uintptr_t)id;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuArrayCreate_v2(CUarray *a, const CUDA_ARRAY_DESCRIPTOR *d)
{
    return array_create(a, array_size(d->Width, d->Height, 1, d->NumChannels, d->Format));
}
FAKE_EXPORT CUresult cuArray3DCreate_v2(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    return array_create(a, array_size(d->Width, d->Height, d->Depth, d->NumChannels, d->Format));
}
FAKE_EXPORT CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *r, CUarray a, CUdevice dev)
{
    (void)dev;
    pthread_mutex_lock(&mu);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    for (struct alloc *x = allocs; x; x = x->next)
        if (x->kind == 3 && x->ptr == (uint64_t)(uintptr_t)a) {
            memset(r, 0, sizeof *r);
            r->size = x->size;
            r->alignment = 65536;
            rc = CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&mu);
    return rc;
}
FAKE_EXPORT CUresult cuArrayDestroy(CUarray a)
{
    pthread_mutex_lock(&mu);
    struct alloc *x = take((uint64_t)(uintptr_t)a, 3);
    if (x) used[x->dev] -= x->charged;
    pthread_mutex_unlock(&mu);
    free(x);
    return x ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* ---- modules, libraries, kernels ---- */
struct fimage {
    struct fkernel k[32];
    int n;
};
static struct fimage *parse_image(const char *img, int is_kernel)
{
    struct fimage *m = calloc(1, sizeof *m);
    const char *p = img;
    while (*p && m->n < 32) {
        struct fkernel *k = &m->k[m->n++];
        size_t len = strcspn(p, ":,");
        memcpy(k->name, p, len < sizeof k->name - 1 ? len : sizeof k->name - 1);
        p += len;
        if (*p == ':') k->nparams = (int)strtol(p + 1, (char **)&p, 10);
        k->is_kernel = is_kernel;
        if (*p == ',') p++;
    }
    return m;
}
static struct fkernel *find_kernel(struct fimage *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->k[i].name, name)) return &m->k[i];
    return NULL;
}
FAKE_EXPORT CUresult cuModuleLoadData(CUmodule *mod, const void *image)
{
    NEED_INIT();
    if (!strncmp(image, ".version", 8)) /* PTX: vpage's own kernel */
        image = strstr(image, ".entry vp_hash(") ? "vp_hash:3" : "";
    *mod = (CUmodule)parse_image(image, 0);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction *fn, CUmodule mod, const char *name)
{
    struct fkernel *k = find_kernel((struct fimage *)mod, name);
    if (!k) return CUDA_ERROR_NOT_FOUND;
    *fn = (CUfunction)k;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuLibraryLoadData(CUlibrary *lib, const void *code, CUjit_option *jo, void **jv, unsigned int njo,
                                       CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    (void)jo; (void)jv; (void)njo; (void)lo; (void)lv; (void)nlo;
    NEED_INIT();
    *lib = (CUlibrary)parse_image(code, 1);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuLibraryGetKernel(CUkernel *kern, CUlibrary lib, const char *name)
{
    struct fkernel *k = find_kernel((struct fimage *)lib, name);
    if (!k) return CUDA_ERROR_NOT_FOUND;
    *kern = (CUkernel)k;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuKernelGetFunction(CUfunction *fn, CUkernel kern)
{
    struct fkernel *k = (struct fkernel *)kern;
    struct fkernel *f = calloc(1, sizeof *f);
    *f = *k;
    f->is_kernel = 0;
    f->kernel_of = k;
    *fn = (CUfunction)f;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuKernelGetName(const char **name, CUkernel kern)
{
    struct fkernel *k = (struct fkernel *)kern;
    if (!k->is_kernel) return CUDA_ERROR_INVALID_HANDLE;
    *name = k->name;
    return CUDA_SUCCESS;
}
/* Like the real driver: a CUkernel passed as a CUfunction is not a function. */
FAKE_EXPORT CUresult cuFuncGetName(const char **name, CUfunction fn)
{
    struct fkernel *k = (struct fkernel *)fn;
    if (k->is_kernel) return CUDA_ERROR_INVALID_HANDLE;
    *name = k->name;
    return CUDA_SUCCESS;
}
/* Parameters are 8 bytes each; kernels named tma* take 128-byte tensor
 * maps (CUtensorMap), at offsets that are multiples of 128. */
static CUresult param_info(struct fkernel *k, size_t i, size_t *off, size_t *size)
{
    if ((int)i >= k->nparams) return CUDA_ERROR_INVALID_VALUE;
    size_t each = strncmp(k->name, "tma", 3) ? 8 : 128;
    *off = i * each;
    *size = each;
    return CUDA_SUCCESS;
}

/* Tensor maps: the address is kept scrambled, as nothing promises it is
 * stored plainly in a real one (the pager must learn it at encoding). */
#define TMAP_KEY 0x5a5a5a5a5a5a5a5aull
FAKE_EXPORT CUresult cuTensorMapEncodeTiled(CUtensorMap *m, CUtensorMapDataType t, cuuint32_t rank, void *addr,
                                            const cuuint64_t *dim, const cuuint64_t *strides, const cuuint32_t *box,
                                            const cuuint32_t *es, CUtensorMapInterleave il, CUtensorMapSwizzle sw,
                                            CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob)
{
    (void)t; (void)rank; (void)strides; (void)box; (void)es; (void)il; (void)sw; (void)l2; (void)oob;
    if (!m) return CUDA_ERROR_INVALID_VALUE;
    memset(m, 0, sizeof *m);
    uint64_t enc = ((uint64_t)(uintptr_t)addr >> 4) ^ TMAP_KEY, d0 = dim ? dim[0] : 0;
    memcpy((char *)m + 8, &enc, 8);
    memcpy((char *)m + 16, &d0, 8);
    return CUDA_SUCCESS;
}
/* A tma kernel increments the first 8 bytes each of its maps stands for. */
static void run_tma(CUfunction f, void **p)
{
    struct fkernel *k = (struct fkernel *)f;
    if (!k || !p || strncmp(k->name, "tma", 3)) return;
    for (int i = 0; i < k->nparams; i++) {
        uint64_t enc;
        memcpy(&enc, (char *)p[i] + 8, 8);
        if (enc) (*(volatile uint64_t *)(uintptr_t)((enc ^ TMAP_KEY) << 4))++; /* zeroed: no map */
    }
}
FAKE_EXPORT CUresult cuKernelGetParamInfo(CUkernel kern, size_t i, size_t *off, size_t *size)
{
    struct fkernel *k = (struct fkernel *)kern;
    if (!k->is_kernel) return CUDA_ERROR_INVALID_HANDLE;
    return param_info(k, i, off, size);
}
FAKE_EXPORT CUresult cuFuncGetParamInfo(CUfunction fn, size_t i, size_t *off, size_t *size)
{
    struct fkernel *k = (struct fkernel *)fn;
    if (k->is_kernel) return CUDA_ERROR_INVALID_HANDLE;
    return param_info(k, i, off, size);
}

/* ---- launches ---- */
/* The fake CUPTI's (fake_cupti.c) record of a launch, once it asked for
 * them (its kernel records enabled). */
static void (*_Atomic cupti_hook)(const char *kernel);
FAKE_EXPORT void fake_cuda_set_cupti(void (*fn)(const char *)) { cupti_hook = fn; }
static void cupti_launch(CUfunction fn)
{
    void (*f)(const char *) = cupti_hook;
    if (f) f(((struct fkernel *)fn)->name);
}
static CUresult launch(CUfunction f)
{
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    atomic_fetch_add(&launches, 1);
    cupti_launch(f);
    return CUDA_SUCCESS;
}
/* Kernels named rw* run at launch: each parameter is a pointer to a
 * 64-bit counter, incremented in place (a fault if it is not mapped);
 * those named rwg* leave their last parameter unread (a word a struct's
 * unused tail holds: whatever was on the stack, an old pointer as often
 * as not). */
static void run_rw(CUfunction f, void **p)
{
    struct fkernel *k = (struct fkernel *)f;
    if (!k || !p || strncmp(k->name, "rw", 2)) return;
    int n = strncmp(k->name, "rwg", 3) ? k->nparams : k->nparams - 1;
    for (int i = 0; i < n; i++) {
        uint64_t ptr = *(uint64_t *)p[i];
        if (ptr) {
            (*(volatile uint64_t *)(uintptr_t)ptr)++;
            in_flight(ptr);
            touched(ptr);
        }
    }
}
/* vp_hash(src, nwords, out): the sums in block 0's partials, zeros in the
 * other blocks'. Counted by fake_cuda_hashes. */
static atomic_uint_fast64_t hashes;
FAKE_EXPORT uint64_t fake_cuda_hashes(void) { return atomic_load(&hashes); }
static void run_hash(CUfunction f, unsigned blocks, void **p)
{
    struct fkernel *k = (struct fkernel *)f;
    if (!k || !p || strcmp(k->name, "vp_hash")) return;
    const uint64_t *src = (const uint64_t *)(uintptr_t)*(uint64_t *)p[0];
    uint64_t n = *(uint64_t *)p[1], *out = (uint64_t *)(uintptr_t)*(uint64_t *)p[2];
    vp_hash_ref(src, n, out);
    memset(out + 2, 0, (blocks - 1) * 2 * sizeof *out);
    atomic_fetch_add(&hashes, 1);
}
/* ---- graphs ----
 * A capture keeps the rw kernels launched on the captured stream (their
 * parameters' values) instead of running them; the graph it ends with is
 * its own executable graph, and a replay runs them. Other handles passed
 * to cuGraphLaunch run nothing. */
struct fgraph {
    struct fgraph *next;
    int n;
    struct { CUfunction f; uint64_t v[8]; } l[64];
};
static struct fgraph *graphs, *capture_graph;
static CUstream capture_stream;
/* Whether a launch on s is captured (kept in the graph being made). */
static int captured_launch(CUfunction f, CUstream s, void **p)
{
    pthread_mutex_lock(&mu);
    struct fgraph *g = capturing && s == capture_stream ? capture_graph : NULL;
    struct fkernel *k = (struct fkernel *)f;
    if (g && k && p && g->n < 64) {
        g->l[g->n].f = f;
        for (int i = 0; i < k->nparams && i < 8; i++) g->l[g->n].v[i] = *(uint64_t *)p[i];
        g->n++;
    }
    pthread_mutex_unlock(&mu);
    return g != NULL;
}
static void run_graph(CUgraphExec e)
{
    pthread_mutex_lock(&mu);
    struct fgraph *g = graphs;
    while (g && (CUgraphExec)g != e) g = g->next;
    pthread_mutex_unlock(&mu);
    for (int j = 0; g && j < g->n; j++) {
        void *p[8];
        for (int i = 0; i < 8; i++) p[i] = &g->l[j].v[i];
        run_rw(g->l[j].f, p);
    }
}
FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags)
{
    (void)flags;
    *e = (CUgraphExec)g;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    if (p) p->result_out = CUDA_GRAPH_INSTANTIATE_SUCCESS;
    return cuGraphInstantiateWithFlags(e, g, 0);
}
/* An executable graph is its graph: an update copies the other's launches. */
FAKE_EXPORT CUresult cuGraphExecUpdate_v2(CUgraphExec e, CUgraph g, CUgraphExecUpdateResultInfo *info)
{
    if (info) info->result = CU_GRAPH_EXEC_UPDATE_SUCCESS;
    pthread_mutex_lock(&mu);
    struct fgraph *to = graphs, *from = graphs;
    while (to && (CUgraphExec)to != e) to = to->next;
    while (from && (CUgraph)from != g) from = from->next;
    if (to && from && to != from) {
        to->n = from->n;
        memcpy(to->l, from->l, sizeof to->l);
    }
    pthread_mutex_unlock(&mu);
    return to && from ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec e) { (void)e; return CUDA_SUCCESS; }
FAKE_EXPORT CUresult cuGraphDestroy(CUgraph g) { (void)g; return CUDA_SUCCESS; }

FAKE_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sh, CUstream s, void **p, void **e)
{
    (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)sh; (void)e;
    if (captured_launch(f, s, p)) return f ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
    run_rw(f, p); run_tma(f, p); run_hash(f, gx, p); return launch(f);
}
FAKE_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sh, CUstream s, void **p, void **e)
{ (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)sh; (void)s; (void)p; (void)e; return launch(f); }
FAKE_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **p, void **e) { (void)c; (void)p; (void)e; return launch(f); }
FAKE_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **p, void **e) { (void)c; (void)p; (void)e; return launch(f); }
FAKE_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sh, CUstream s, void **p)
{ (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)sh; (void)s; (void)p; return launch(f); }
FAKE_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sh, CUstream s, void **p)
{ (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)sh; (void)s; (void)p; return launch(f); }
static CUresult graph_launch(CUgraphExec e)
{
    atomic_fetch_add(&graph_launches, 1);
    run_graph(e);
    pthread_mutex_lock(&mu);
    if (captured_bytes > graph_reserved[cur_dev]) {
        if (charge(cur_dev, captured_bytes - graph_reserved[cur_dev])) { pthread_mutex_unlock(&mu); return CUDA_ERROR_OUT_OF_MEMORY; }
        graph_reserved[cur_dev] = captured_bytes;
    }
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec g, CUstream s) { (void)s; return graph_launch(g); }
FAKE_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) { (void)s; return graph_launch(g); }
FAKE_EXPORT CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode)
{
    pthread_mutex_lock(&mu);
    capturing = 1;
    capture_stream = s;
    capture_graph = calloc(1, sizeof *capture_graph);
    capture_global = mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
    capture_broken = 0;
    captured_bytes = 0;
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph *g)
{
    (void)s;
    pthread_mutex_lock(&mu);
    capturing = 0;
    int broken = capture_broken;
    struct fgraph *made = capture_graph;
    capture_graph = NULL;
    if (made && !broken) {
        made->next = graphs;
        graphs = made;
    }
    pthread_mutex_unlock(&mu);
    *g = made && !broken ? (CUgraph)made : (CUgraph)(uintptr_t)0x6a;
    if (broken) free(made);
    return broken ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *st)
{
    (void)s;
    *st = capturing ? (capture_broken ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE)
                    : CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}
FAKE_EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice d, CUgraphMem_attribute attr, void *v)
{
    if (attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&mu);
    *(cuuint64_t *)v = graph_reserved[d];
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}

/* ---- copies and memsets: device memory is host memory here ---- */
#define CPY(name, P, body) FAKE_EXPORT CUresult name P { NEED_INIT(); body; return CUDA_SUCCESS; }
CPY(cuMemcpyHtoD_v2, (CUdeviceptr d, const void *s, size_t n), memcpy((void *)(uintptr_t)d, s, n))
CPY(cuMemcpyHtoD_v2_ptds, (CUdeviceptr d, const void *s, size_t n), memcpy((void *)(uintptr_t)d, s, n))
CPY(cuMemcpyHtoDAsync_v2, (CUdeviceptr d, const void *s, size_t n, CUstream st), (void)st; memcpy((void *)(uintptr_t)d, s, n))
CPY(cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr d, const void *s, size_t n, CUstream st), (void)st; memcpy((void *)(uintptr_t)d, s, n))
CPY(cuMemcpy, (CUdeviceptr d, CUdeviceptr s, size_t n), memcpy((void *)(uintptr_t)d, (void *)(uintptr_t)s, n))
CPY(cuMemcpy_ptds, (CUdeviceptr d, CUdeviceptr s, size_t n), memcpy((void *)(uintptr_t)d, (void *)(uintptr_t)s, n))
CPY(cuMemcpyAsync, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st), (void)st; memcpy((void *)(uintptr_t)d, (void *)(uintptr_t)s, n))
CPY(cuMemcpyAsync_ptsz, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st), (void)st; memcpy((void *)(uintptr_t)d, (void *)(uintptr_t)s, n))
CPY(cuMemcpyDtoD_v2, (CUdeviceptr d, CUdeviceptr s, size_t n), memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n))
/* FAKE_CUDA_FAIL_COPY_EVERY=n: every n-th copy on a created stream (the
 * pager's own) fails, doing nothing; read at each copy */
static atomic_uint_fast64_t stream_copies;
static int copy_fails(CUstream st)
{
    const char *v = getenv("FAKE_CUDA_FAIL_COPY_EVERY");
    if (!v || !st || st == CU_STREAM_LEGACY || st == CU_STREAM_PER_THREAD) return 0;
    uint64_t every = strtoull(v, NULL, 10);
    return every && (atomic_fetch_add(&stream_copies, 1) + 1) % every == 0;
}
FAKE_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
{
    NEED_INIT();
    if (copy_fails(st)) return CUDA_ERROR_UNKNOWN;
    memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n);
    return CUDA_SUCCESS;
}
CPY(cuMemsetD8_v2, (CUdeviceptr d, unsigned char v, size_t n), memset((void *)(uintptr_t)d, v, n))
CPY(cuMemcpyDtoH_v2, (void *d, CUdeviceptr s, size_t n), memcpy(d, (void *)(uintptr_t)s, n))
CPY(cuMemcpyDtoHAsync_v2, (void *d, CUdeviceptr s, size_t n, CUstream st), (void)st; memcpy(d, (void *)(uintptr_t)s, n))
CPY(cuMemsetD32Async, (CUdeviceptr d, unsigned int v, size_t n, CUstream st),
    (void)st; for (size_t i = 0; i < n; i++) ((unsigned int *)(uintptr_t)d)[i] = v)

FAKE_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *c)
{
    NEED_INIT();
    const uint8_t *src = c->srcMemoryType == CU_MEMORYTYPE_HOST ? c->srcHost : (const void *)(uintptr_t)c->srcDevice;
    uint8_t *dst = c->dstMemoryType == CU_MEMORYTYPE_HOST ? c->dstHost : (void *)(uintptr_t)c->dstDevice;
    for (size_t r = 0; r < c->Height; r++)
        memcpy(dst + (c->dstY + r) * c->dstPitch + c->dstXInBytes, src + (c->srcY + r) * c->srcPitch + c->srcXInBytes,
               c->WidthInBytes);
    return CUDA_SUCCESS;
}
CPY(cuMemcpyPeer, (CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n),
    (void)dc; (void)sc; memcpy((void *)(uintptr_t)d, (void *)(uintptr_t)s, n))

/* ---- cuGetProcAddress: API name + version + flags -> exported symbol ---- */
FAKE_EXPORT CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, cuuint64_t flags);
FAKE_EXPORT CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, cuuint64_t flags, CUdriverProcAddressQueryResult *st);

struct entry {
    const char *api;
    int minver; /* first version served by this symbol */
    int ptsz;   /* served for CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM */
    void *fn;
};
#define E(api, ver, pt, fn) {api, ver, pt, (void *)fn}
static const struct entry entries[] = {
    E("cuInit", 2000, 0, cuInit), E("cuDriverGetVersion", 2020, 0, cuDriverGetVersion),
    E("cuDeviceGetCount", 2000, 0, cuDeviceGetCount), E("cuDeviceGet", 2000, 0, cuDeviceGet),
    E("cuDeviceTotalMem", 3020, 0, cuDeviceTotalMem_v2), E("cuDevicePrimaryCtxRetain", 7000, 0, cuDevicePrimaryCtxRetain),
    E("cuCtxSetCurrent", 4000, 0, cuCtxSetCurrent), E("cuCtxGetCurrent", 4000, 0, cuCtxGetCurrent),
    E("cuCtxGetDevice", 2000, 0, cuCtxGetDevice), E("cuCtxSynchronize", 2000, 0, cuCtxSynchronize),
    E("cuGetErrorString", 6000, 0, cuGetErrorString),
    E("cuMemGetInfo", 3020, 0, cuMemGetInfo_v2), E("cuMemAlloc", 3020, 0, cuMemAlloc_v2),
    E("cuMemAllocPitch", 3020, 0, cuMemAllocPitch_v2), E("cuMemFree", 3020, 0, cuMemFree_v2),
    E("cuMemAllocManaged", 6000, 0, cuMemAllocManaged),
    E("cuMemAdvise", 12020, 0, cuMemAdvise_v2), E("cuMemPrefetchAsync", 12020, 0, cuMemPrefetchAsync_v2),
    E("cuStreamCreate", 2000, 0, cuStreamCreate), E("cuStreamCreateWithPriority", 5050, 0, cuStreamCreateWithPriority),
    E("cuCtxGetStreamPriorityRange", 5050, 0, cuCtxGetStreamPriorityRange), E("cuMemHostAlloc", 3020, 0, cuMemHostAlloc),
    E("cuMemFreeHost", 2000, 0, cuMemFreeHost), E("cuStreamDestroy", 4000, 0, cuStreamDestroy_v2), E("cuDeviceGetAttribute", 2000, 0, cuDeviceGetAttribute),
    E("cuIpcGetMemHandle", 4010, 0, cuIpcGetMemHandle),
    E("cuDeviceGetMemPool", 11020, 0, cuDeviceGetMemPool),
    E("cuDeviceGetDefaultMemPool", 11020, 0, cuDeviceGetDefaultMemPool), E("cuDeviceSetMemPool", 11020, 0, cuDeviceSetMemPool), E("cuMemPoolCreate", 11020, 0, cuMemPoolCreate),
    E("cuMemPoolDestroy", 11020, 0, cuMemPoolDestroy), E("cuMemPoolTrimTo", 11020, 0, cuMemPoolTrimTo),
    E("cuMemPoolGetAttribute", 11020, 0, cuMemPoolGetAttribute), E("cuMemPoolSetAttribute", 11020, 0, cuMemPoolSetAttribute),
    E("cuStreamSynchronize", 2000, 0, cuStreamSynchronize),
    E("cuMemAllocAsync", 11020, 0, cuMemAllocAsync), E("cuMemAllocAsync", 11020, 1, cuMemAllocAsync_ptsz),
    E("cuMemAllocFromPoolAsync", 11020, 0, cuMemAllocFromPoolAsync),
    E("cuMemAllocFromPoolAsync", 11020, 1, cuMemAllocFromPoolAsync_ptsz),
    E("cuMemFreeAsync", 11020, 0, cuMemFreeAsync), E("cuMemFreeAsync", 11020, 1, cuMemFreeAsync_ptsz),
    E("cuMemCreate", 10020, 0, cuMemCreate), E("cuMemRelease", 10020, 0, cuMemRelease),
    E("cuMemAddressReserve", 10020, 0, cuMemAddressReserve), E("cuMemAddressFree", 10020, 0, cuMemAddressFree),
    E("cuMemMap", 10020, 0, cuMemMap), E("cuMemUnmap", 10020, 0, cuMemUnmap),
    E("cuArrayCreate", 3020, 0, cuArrayCreate_v2), E("cuArray3DCreate", 3020, 0, cuArray3DCreate_v2),
    E("cuArrayDestroy", 2000, 0, cuArrayDestroy), E("cuArrayGetMemoryRequirements", 11060, 0, cuArrayGetMemoryRequirements),
    E("cuModuleLoadData", 2000, 0, cuModuleLoadData), E("cuModuleGetFunction", 2000, 0, cuModuleGetFunction),
    E("cuLibraryLoadData", 12000, 0, cuLibraryLoadData), E("cuLibraryGetKernel", 12000, 0, cuLibraryGetKernel),
    E("cuKernelGetFunction", 12000, 0, cuKernelGetFunction), E("cuKernelGetName", 12030, 0, cuKernelGetName),
    E("cuFuncGetName", 12030, 0, cuFuncGetName), E("cuKernelGetParamInfo", 12040, 0, cuKernelGetParamInfo),
    E("cuFuncGetParamInfo", 12040, 0, cuFuncGetParamInfo),
    E("cuLaunchKernel", 4000, 0, cuLaunchKernel), E("cuLaunchKernel", 7000, 1, cuLaunchKernel_ptsz),
    E("cuLaunchKernelEx", 11060, 0, cuLaunchKernelEx), E("cuLaunchKernelEx", 11060, 1, cuLaunchKernelEx_ptsz),
    E("cuLaunchCooperativeKernel", 9000, 0, cuLaunchCooperativeKernel),
    E("cuLaunchCooperativeKernel", 9000, 1, cuLaunchCooperativeKernel_ptsz),
    E("cuGraphLaunch", 10000, 0, cuGraphLaunch), E("cuGraphLaunch", 10000, 1, cuGraphLaunch_ptsz),
    E("cuStreamBeginCapture", 10010, 0, cuStreamBeginCapture_v2), E("cuStreamEndCapture", 10000, 0, cuStreamEndCapture),
    E("cuStreamIsCapturing", 10000, 0, cuStreamIsCapturing),
    E("cuGraphInstantiate", 12000, 0, cuGraphInstantiateWithFlags),
    E("cuGraphInstantiateWithFlags", 11040, 0, cuGraphInstantiateWithFlags),
    E("cuGraphInstantiateWithParams", 12000, 0, cuGraphInstantiateWithParams),
    E("cuGraphExecUpdate", 12000, 0, cuGraphExecUpdate_v2), E("cuGraphExecDestroy", 10000, 0, cuGraphExecDestroy), E("cuGraphDestroy", 10000, 0, cuGraphDestroy),
    E("cuMemcpyHtoD", 3020, 0, cuMemcpyHtoD_v2), E("cuMemcpyHtoD", 7000, 1, cuMemcpyHtoD_v2_ptds),
    E("cuMemcpyHtoDAsync", 3020, 0, cuMemcpyHtoDAsync_v2), E("cuMemcpyHtoDAsync", 7000, 1, cuMemcpyHtoDAsync_v2_ptsz),
    E("cuMemcpy", 4000, 0, cuMemcpy), E("cuMemcpy", 7000, 1, cuMemcpy_ptds),
    E("cuMemcpyAsync", 4000, 0, cuMemcpyAsync), E("cuMemcpyAsync", 7000, 1, cuMemcpyAsync_ptsz),
    E("cuMemcpyDtoD", 3020, 0, cuMemcpyDtoD_v2), E("cuMemcpyDtoDAsync", 3020, 0, cuMemcpyDtoDAsync_v2),
    E("cuMemsetD8", 3020, 0, cuMemsetD8_v2), E("cuMemcpyDtoH", 3020, 0, cuMemcpyDtoH_v2),
    E("cuTensorMapEncodeTiled", 12000, 0, cuTensorMapEncodeTiled),
    E("cuMemcpyDtoHAsync", 3020, 0, cuMemcpyDtoHAsync_v2), E("cuMemSetAccess", 10020, 0, cuMemSetAccess),
    E("cuMemGetAllocationGranularity", 10020, 0, cuMemGetAllocationGranularity),
    E("cuEventCreate", 2000, 0, cuEventCreate), E("cuEventRecord", 2000, 0, cuEventRecord),
    E("cuEventQuery", 2000, 0, cuEventQuery), E("cuEventSynchronize", 2000, 0, cuEventSynchronize),
    E("cuThreadExchangeStreamCaptureMode", 10010, 0, cuThreadExchangeStreamCaptureMode), E("cuMemsetD32Async", 3020, 0, cuMemsetD32Async),
    E("cuMemcpy2D", 3020, 0, cuMemcpy2D_v2), E("cuMemcpyPeer", 4000, 0, cuMemcpyPeer),
    E("cuDeviceGetGraphMemAttribute", 11040, 0, cuDeviceGetGraphMemAttribute),
    E("cuGetProcAddress", 11030, 0, cuGetProcAddress), E("cuGetProcAddress", 12000, 0, cuGetProcAddress_v2),
};

static CUresult lookup(const char *sym, void **pfn, int ver, cuuint64_t flags)
{
    const struct entry *best = NULL;
    int want_pt = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    for (size_t i = 0; i < sizeof entries / sizeof *entries; i++) {
        const struct entry *e = &entries[i];
        if (strcmp(e->api, sym) || e->minver > ver) continue;
        if (e->ptsz && !want_pt) continue;
        if (!best || e->minver > best->minver || (e->ptsz && !best->ptsz)) best = e;
    }
    *pfn = best ? best->fn : NULL;
    return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

FAKE_EXPORT CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, cuuint64_t flags)
{
    return lookup(sym, pfn, ver, flags);
}

FAKE_EXPORT CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, cuuint64_t flags,
                                         CUdriverProcAddressQueryResult *st)
{
    CUresult rc = lookup(sym, pfn, ver, flags);
    if (st) *st = rc == CUDA_SUCCESS ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return rc;
}

/* For tests: the fake's own function for an API name, bypassing vpage. */
FAKE_EXPORT void *fake_cuda_sym(const char *api)
{
    void *fn = NULL;
    lookup(api, &fn, 13000, 0);
    return fn;
}
