/* stream.c - see stream.h. */
#define _GNU_SOURCE
#include "stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/options.h"
#include "../common/trace.h"
#include "../interpose/driver.h"
#include "../policy/demand.h"
#include "../policy/stream.h"
#include "account.h"
#include "apool.h"
#include "hash.h"
#include "shared.h"

enum piece_state { P_HOST, P_DEV, P_MOVING };

struct slot {
    CUmemGenericAllocationHandle h;
    CUdeviceptr va; /* the pager's own mapping of the slot */
    uint64_t bytes;
    struct slot *next;
};

struct piece {
    CUmemGenericAllocationHandle host; /* home: host-located physical memory */
    struct slot *slot;                 /* device memory while resident */
    struct vp_uses u;                  /* when operations used it (policy/stream.h) */
    uint8_t state;                     /* enum piece_state */
    uint8_t dirty;                     /* an operation touched it while resident */
    uint8_t hashed;                    /* hash is that of its host memory (pager/hash.h) */
    uint8_t bare;                      /* not resident and its address maps nothing (VPAGE_STREAM_LAZY_MAP) */
    uint8_t pinned, pin_asked, requested;
    uint8_t ahead;     /* came in before any launch asked for it */
    uint8_t ahead_cls; /* the class it ranked in then (enum vp_stream_class) */
    uint32_t pin_seq;  /* order of pinning */
    uint64_t ahead_at; /* tick when it last came in ahead of use (0: never) */
    uint64_t hash[2];
};

struct salloc {
    CUdeviceptr base; /* the program's address: host memory or slots */
    CUdeviceptr home; /* the host memory, always mapped, for the pager's copies */
    uint64_t size, span, piece;
    int dev;
    int arena;   /* the reservation its program range was carved from */
    int pending; /* operations on it being issued */
    int busy;    /* in the pager's hands */
    int gone;
    int ev_dev;
    uint64_t serial; /* event of the latest operation on it (0: none) */
    int still;       /* planning: no operation on it is issued or in flight (-1: not asked) */
    uint32_t npieces;
    struct piece pc[];
};

#define VP_STREAM_STATS(X)                                                                   \
    X(streamed, "bytes of streamed allocations now")                                          \
    X(streamed_peak, "most bytes of streamed allocations at once")                            \
    X(bytes_in, "bytes copied to the device")                                                 \
    X(bytes_ahead, "bytes brought in before an operation asked for them (VPAGE_STREAM_AHEAD)")  \
    X(bytes_writeback, "bytes copied back to the host when leaving")                          \
    X(bytes_dropped, "bytes that left without a copy (untouched since they came in)")         \
    X(bytes_unchanged, "bytes operations touched that left without a copy: their hash had not changed") \
    X(hashes, "pieces hashed on the device (coming in, and leaving after operations touched them)") \
    X(bare_maps, "pieces left unmapped that an operation touched: their host memory was mapped for it") \
    X(bare_map_ns, "nanoseconds operations spent mapping host memory of pieces left unmapped")     \
    X(moves_in, "pieces brought in")                                                          \
    X(placed, "bytes of new allocations placed in device memory (VPAGE_STREAM_PLACE=device)") \
    X(moves_out, "pieces sent out")                                                           \
    X(pinned, "bytes of pieces pinned now (kept resident across the loop)")                    \
    X(slot_bytes, "device bytes of slots now (resident pieces and free slots)")               \
    X(remote_estimate, "bytes of pieces operations touched while not resident (read remotely, at most)") \
    X(waits, "operations that waited for a move")                                             \
    X(wait_ns, "nanoseconds operations spent waiting for pieces and moves")                    \
    X(copy_ns, "nanoseconds the pager waited for its copies")                                  \
    X(unmap_ns, "nanoseconds the pager's threads spent unmapping and mapping pieces (summed)")                                \
    X(unmap_calls, "unmap calls (neighbouring pieces moving together share one)")              \
    X(map_in_ns, "nanoseconds the pager's threads spent giving access to pieces in device memory (summed)")                \
    X(map_out_ns, "nanoseconds the pager's threads spent giving access to pieces back in host memory (summed)")            \
    X(dropped_ahead, "bytes of pieces brought in ahead of use that left unused")               \
    X(rounds, "rounds of moves")                                                              \
    X(plans, "planning passes of the pager")                                                  \
    X(plan_ns, "nanoseconds the pager spent planning (the program's operations wait meanwhile)") \
    X(tmaps_known, "launches of a TMA descriptor whose address vpage saw it made for")        \
    X(tmaps_unknown, "launches of a 128-byte parameter taken for an unknown TMA descriptor")   \
    X(wait_timeouts, "operations that went ahead after waiting for pieces to come in")         \
    X(reclaims, "times unpageable memory took room from resident pieces")                    \
    X(refused, "streamed allocations refused (VPAGE_PAGED_LIMIT)")                            \
    X(driver_errors, "driver calls of the pager that failed")

struct stream_stats {
#define VP_X(name, doc) atomic_uint_fast64_t name;
    VP_STREAM_STATS(VP_X)
#undef VP_X
};

#define RING 4096
#define OPMAX 256
#define ROUND_BYTES (512ull << 20) /* most bytes moved each way per round */
#define ROUND_MOVES 512             /* most moves a round */

static struct vp_pager_thread pt = VP_PAGER_THREAD_INIT;
static struct vp_pool pool = VP_POOL_INIT; /* the pager's helpers for remaps */
static struct vp_rangetab tab; /* the streamed allocations, by base */
#define TAB(i) ((struct salloc *)tab.r[i].owner)
static uint64_t tick;
static int moving_any, global_pending;
static uint64_t all_serial;
static int all_dev;
static double pin_acc[VP_MAX_DEVICES];
static uint32_t pin_next;
static struct slot *free_slots[VP_MAX_DEVICES];

static atomic_int nstream;
static atomic_uint_fast64_t lo_addr = UINT64_MAX, hi_addr;
static struct stream_stats ss[VP_MAX_DEVICES];
static atomic_uint_fast64_t msgs_driver;

/* the event ring: one event per operation on streamed memory, per device */
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static CUevent ring_ev[VP_MAX_DEVICES][RING];
static uint64_t ring_serial[VP_MAX_DEVICES][RING];
static uint64_t next_serial[VP_MAX_DEVICES];

/* per thread: the allocations of the operation being issued */
static __thread struct {
    struct salloc *a[OPMAX];
    int n, all, on;
    int progress; /* its uses may change the plan: the pager is woken after it */
} op;
/* an operation touched every streamed allocation (a graph replay): pieces
 * leaving are mapped back at once from then on, since each such operation
 * would map every bare piece again (mu) */
static int eager_map;

/* Whether a piece leaving now is left bare (mu held). */
static int leave_bare_locked(void) { return vp_opt.stream_lazy_map && !eager_map; }

/* the pager's last plan was held up by operations issued or in flight:
 * their ends wake it */
static int ops_block;

/* pager thread only */
static CUcontext ctx[VP_MAX_DEVICES];
static CUstream s_in[VP_MAX_DEVICES], s_out[VP_MAX_DEVICES];
/* the hash kernel (pager/hash.h), its stream (high priority: it stands
 * between a touched piece and its leaving), loaded at first use */
static CUfunction hash_fn[VP_MAX_DEVICES];
static CUstream s_hash[VP_MAX_DEVICES];
static int hash_tried[VP_MAX_DEVICES];
#define HSTRIDE (2 * VP_HASH_MAX_BLOCKS) /* partials of one move's hash, in u64 */
static int ctx_dev = -1;

int vp_stream_on(void) { return vp_opt.paging == VP_PAGING_STREAM; }

void vp_stream_note_tmap(uint32_t known, uint32_t unknown)
{
    int d = vp_drv_current_device();
    if (d < 0 || d >= VP_MAX_DEVICES) d = 0;
    atomic_fetch_add_explicit(&ss[d].tmaps_known, known, memory_order_relaxed);
    atomic_fetch_add_explicit(&ss[d].tmaps_unknown, unknown, memory_order_relaxed);
}

static void count(atomic_uint_fast64_t *c, uint64_t v) { atomic_fetch_add_explicit(c, v, memory_order_relaxed); }
static void uncount(atomic_uint_fast64_t *c, uint64_t v) { atomic_fetch_sub_explicit(c, v, memory_order_relaxed); }


static uint64_t round_up(uint64_t v, uint64_t g) { return (v + g - 1) / g * g; }

static uint64_t piece_off(const struct salloc *a, uint32_t i) { return (uint64_t)i * a->piece; }

static uint64_t piece_len(const struct salloc *a, uint32_t i)
{
    uint64_t off = piece_off(a, i);
    return a->span - off < a->piece ? a->span - off : a->piece;
}

static void driver_error(const char *what, CUresult rc, int dev)
{
    count(&ss[dev].driver_errors, 1);
    vp_log_limited(VP_WARN, &msgs_driver, "stream: %s on device %d failed (CUresult %d)", what, dev, (int)rc);
}

/* ---- the table (mu held) ---- */

static struct salloc *find_locked(CUdeviceptr a) { return vp_rangetab_find(&tab, a); }

static int insert_locked(struct salloc *p) { return vp_rangetab_insert(&tab, p->base, p->size, p); }

static void remove_locked(struct salloc *p) { vp_rangetab_remove(&tab, p->base); }

/* ---- the program's address ranges ----
 * Carved first-fit out of large reservations ("arenas"), so allocations
 * made one after another (a model's weights) are neighbours, and pieces of
 * neighbouring allocations moving together are unmapped with one call.
 * Holes merge only within one arena: a mapping may not span two. */

#define ARENA_BYTES (64ull << 30)
#define MAX_ARENAS 64

struct hole {
    CUdeviceptr start;
    uint64_t len;
    int arena;
};

static struct hole *holes; /* sorted by start */
static size_t nholes, capholes;
static int narenas;

static int hole_insert_locked(CUdeviceptr start, uint64_t len, int arena)
{
    size_t i = 0;
    while (i < nholes && holes[i].start < start) i++;
    int left = i > 0 && holes[i - 1].arena == arena && holes[i - 1].start + holes[i - 1].len == start;
    int right = i < nholes && holes[i].arena == arena && start + len == holes[i].start;
    if (left && right) {
        holes[i - 1].len += len + holes[i].len;
        memmove(&holes[i], &holes[i + 1], (nholes - i - 1) * sizeof *holes);
        nholes--;
        return 0;
    }
    if (left) {
        holes[i - 1].len += len;
        return 0;
    }
    if (right) {
        holes[i].start = start;
        holes[i].len += len;
        return 0;
    }
    if (nholes == capholes) {
        size_t nc = capholes ? capholes * 2 : 64;
        struct hole *nh = realloc(holes, nc * sizeof *nh);
        if (!nh) return -1;
        holes = nh;
        capholes = nc;
    }
    memmove(&holes[i + 1], &holes[i], (nholes - i) * sizeof *holes);
    holes[i] = (struct hole){start, len, arena};
    nholes++;
    return 0;
}

/* A range of span bytes (a multiple of g), or 0 (reported) if none. */
static CUdeviceptr range_take(uint64_t span, uint64_t g, int *arena)
{
    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&pt.mu);
        for (size_t i = 0; i < nholes; i++)
            if (holes[i].len >= span) {
                CUdeviceptr p = holes[i].start;
                *arena = holes[i].arena;
                holes[i].start += span;
                holes[i].len -= span;
                if (!holes[i].len) {
                    memmove(&holes[i], &holes[i + 1], (nholes - i - 1) * sizeof *holes);
                    nholes--;
                }
                pthread_mutex_unlock(&pt.mu);
                return p;
            }
        int id = narenas;
        pthread_mutex_unlock(&pt.mu);
        if (id >= MAX_ARENAS) break;
        uint64_t len = span > ARENA_BYTES ? round_up(span, g) : ARENA_BYTES;
        CUdeviceptr base = 0;
        if (vp_real.cuMemAddressReserve(&base, len, g, 0, 0) != CUDA_SUCCESS) {
            len = span; /* no room for an arena: one of its own */
            if (vp_real.cuMemAddressReserve(&base, len, g, 0, 0) != CUDA_SUCCESS) break;
        }
        pthread_mutex_lock(&pt.mu);
        id = narenas++;
        int bad = hole_insert_locked(base, len, id);
        pthread_mutex_unlock(&pt.mu);
        if (bad) break;
    }
    return 0;
}

static void range_give(CUdeviceptr start, uint64_t span, int arena)
{
    pthread_mutex_lock(&pt.mu);
    hole_insert_locked(start, span, arena); /* out of memory: the range is lost, not reused */
    pthread_mutex_unlock(&pt.mu);
}

/* ---- the driver ---- */

static CUmemAccessDesc access_for(int dev)
{
    CUmemAccessDesc d;
    memset(&d, 0, sizeof d);
    d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.location.id = dev;
    d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return d;
}

static CUmemAllocationProp prop_for(int dev, int host)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = host ? CU_MEM_LOCATION_TYPE_HOST_NUMA : CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = dev;
    if (host) {
        CUdevice d;
        int numa = 0;
        if (vp_real.cuDeviceGet(&d, dev) != CUDA_SUCCESS ||
            vp_real.cuDeviceGetAttribute(&numa, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, d) != CUDA_SUCCESS || numa < 0)
            numa = 0;
        p.location.id = numa;
    }
    return p;
}

static CUresult allow(CUdeviceptr va, uint64_t len, int dev)
{
    CUmemAccessDesc acc = access_for(dev);
    return vp_real.cuMemSetAccess(va, len, &acc, 1);
}

/* Maps handle h at va (len bytes) for dev. */
static CUresult map_at(CUdeviceptr va, uint64_t len, CUmemGenericAllocationHandle h, int dev)
{
    CUresult rc = vp_real.cuMemMap(va, len, 0, h, 0);
    if (rc != CUDA_SUCCESS) return rc;
    rc = allow(va, len, dev);
    if (rc != CUDA_SUCCESS) vp_real.cuMemUnmap(va, len);
    return rc;
}

static int use_device(int dev)
{
    if (dev == ctx_dev) return 0;
    if (vp_use_primary_ctx(&ctx[dev], dev)) return -1;
    if (!s_in[dev] && vp_real.cuStreamCreate(&s_in[dev], CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) return -1;
    if (!s_out[dev] && vp_real.cuStreamCreate(&s_out[dev], CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) return -1;
    ctx_dev = dev;
    return 0;
}

/* Gives a slot's device memory back, and its bytes to the cap (mu not held). */
static void slot_destroy(int dev, struct slot *s)
{
    vp_real.cuMemUnmap(s->va, s->bytes);
    vp_real.cuMemAddressFree(s->va, s->bytes);
    vp_real.cuMemRelease(s->h);
    vp_acct_release(dev, VP_KIND_resident, s->bytes);
    uncount(&ss[dev].slot_bytes, s->bytes);
    free(s);
}

/* Puts a slot on dev's free list, for the next piece of its size (mu held). */
static void slot_put_locked(int dev, struct slot *s)
{
    s->next = free_slots[dev];
    free_slots[dev] = s;
}

/* slot_put_locked, taking mu. */
static void give_slot(int dev, struct slot *s)
{
    pthread_mutex_lock(&pt.mu);
    slot_put_locked(dev, s);
    pthread_mutex_unlock(&pt.mu);
}

/* A slot of bytes on dev: a free one of that size, or a new one (its bytes
 * reserved under the cap first; free slots of other sizes are released
 * for room). Pager thread, mu not held. NULL when there is no room. */
static struct slot *slot_get(int dev, uint64_t bytes)
{
    pthread_mutex_lock(&pt.mu);
    for (struct slot **pp = &free_slots[dev]; *pp; pp = &(*pp)->next)
        if ((*pp)->bytes == bytes) {
            struct slot *s = *pp;
            *pp = s->next;
            pthread_mutex_unlock(&pt.mu);
            return s;
        }
    pthread_mutex_unlock(&pt.mu);
    while (vp_acct_reserve(dev, VP_KIND_resident, bytes)) {
        pthread_mutex_lock(&pt.mu);
        struct slot *s = free_slots[dev];
        if (s) free_slots[dev] = s->next;
        pthread_mutex_unlock(&pt.mu);
        if (!s) return NULL;
        slot_destroy(dev, s);
    }
    struct slot *s = calloc(1, sizeof *s);
    CUmemAllocationProp p = prop_for(dev, 0);
    CUresult rc = s ? vp_real.cuMemCreate(&s->h, bytes, &p, 0) : CUDA_ERROR_OUT_OF_MEMORY;
    if (rc == CUDA_SUCCESS) {
        rc = vp_real.cuMemAddressReserve(&s->va, bytes, 0, 0, 0);
        if (rc == CUDA_SUCCESS && (rc = map_at(s->va, bytes, s->h, dev)) != CUDA_SUCCESS)
            vp_real.cuMemAddressFree(s->va, bytes);
        if (rc != CUDA_SUCCESS) vp_real.cuMemRelease(s->h);
    }
    if (rc != CUDA_SUCCESS) {
        if (s) driver_error("creating device memory for a piece", rc, dev);
        free(s);
        vp_acct_release(dev, VP_KIND_resident, bytes);
        return NULL;
    }
    s->bytes = bytes;
    count(&ss[dev].slot_bytes, bytes);
    return s;
}

/* Releases every free slot of dev (mu not held). */
static void release_free_slots(int dev)
{
    pthread_mutex_lock(&pt.mu);
    struct slot *s = free_slots[dev];
    free_slots[dev] = NULL;
    pthread_mutex_unlock(&pt.mu);
    while (s) {
        struct slot *next = s->next;
        slot_destroy(dev, s);
        s = next;
    }
}

/* ---- the event ring ---- */

/* Records an event after the operation just issued on stream; returns its
 * serial, or 0 when none could be recorded (the stream was then waited
 * for: the operation is complete). */
static uint64_t record(int dev, CUstream stream)
{
    pthread_mutex_lock(&ring_mu);
    uint64_t s = ++next_serial[dev];
    size_t i = s % RING;
    CUresult rc = CUDA_SUCCESS;
    if (!ring_ev[dev][i]) rc = vp_real.cuEventCreate(&ring_ev[dev][i], CU_EVENT_DISABLE_TIMING);
    /* an event is re-recorded only once the operation it stood for is done */
    else if (ring_serial[dev][i] && vp_real.cuEventQuery(ring_ev[dev][i]) != CUDA_SUCCESS)
        rc = vp_real.cuEventSynchronize(ring_ev[dev][i]);
    if (rc == CUDA_SUCCESS) rc = vp_real.cuEventRecord(ring_ev[dev][i], stream);
    ring_serial[dev][i] = rc == CUDA_SUCCESS ? s : 0;
    pthread_mutex_unlock(&ring_mu);
    if (rc == CUDA_SUCCESS) return s;
    vp_real.cuStreamSynchronize(stream);
    return 0;
}

/* True when the operation of serial s on dev has completed. */
static int done(int dev, uint64_t s)
{
    if (!s) return 1;
    pthread_mutex_lock(&ring_mu);
    size_t i = s % RING;
    int r = ring_serial[dev][i] != s || vp_real.cuEventQuery(ring_ev[dev][i]) == CUDA_SUCCESS;
    pthread_mutex_unlock(&ring_mu);
    return r;
}

/* ---- the program's operations ---- */

static void wait_locked(void) { vp_cond_wait_ns(&pt.done_cv, &pt.mu, 2000000); }

static int is_hot(const struct piece *p);

/* No operation on a is being issued or runs on the device. mu held. */
static int settled_locked(const struct salloc *a) { return !a->pending && done(a->ev_dev, a->serial); }

/* Nor one on everything (a graph replay). mu held. */
static int all_settled_locked(void) { return !global_pending && done(all_dev, all_serial); }

/* Whether operations on dev's streamed memory are being issued or still
 * run on the device: their ends let pieces move. mu held. */
static int ops_in_flight_locked(int dev)
{
    if (!all_settled_locked()) return 1;
    for (size_t i = 0; i < tab.n; i++)
        if (!TAB(i)->gone && TAB(i)->dev == dev && !settled_locked(TAB(i))) return 1;
    return 0;
}

static int has_moving_locked(void)
{
    if (op.all) return moving_any > 0;
    for (int i = 0; i < op.n; i++)
        if (op.a[i]->busy) return 1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The trace's line of the operation being issued (mu held). */
static void trace_op(int dev, uint64_t t, const char *what, double waited_s)
{
    char list[640];
    size_t o = 0;
    list[0] = '\0';
    if (op.all) snprintf(list, sizeof list, "\tall");
    for (int i = 0; i < op.n && !op.all && o + 24 < sizeof list; i++) {
        int w = snprintf(list + o, sizeof list - o, "\t%#llx", (unsigned long long)op.a[i]->base);
        if (w < 0) break;
        o += (size_t)w;
    }
    vp_trace("op", "\t%d\t%llu\t%s\t%llu%s", dev, (unsigned long long)t, what ? what : "?",
             (unsigned long long)(waited_s * 1e6), list);
}

/* A piece an operation may touch (no move of it is under way). */
static void touch(struct piece *p)
{
    if (p->state == P_DEV) p->dirty = 1;
    else p->hashed = 0;
}

/* Maps the host memory of up to 64 bare pieces of the operation's
 * allocations (all of them for op.all), on the calling thread: they are
 * marked moving meanwhile, so neither the pager nor another operation
 * touches them. Returns how many there were. mu held (dropped meanwhile). */
static int map_bare_locked(void)
{
    struct {
        struct salloc *a;
        uint32_t k;
    } b[64];
    int nb = 0;
    size_t na = op.all ? tab.n : (size_t)op.n;
    for (size_t i = 0; i < na && nb < 64; i++) {
        struct salloc *a = op.all ? TAB(i) : op.a[i];
        for (uint32_t k = 0; k < a->npieces && nb < 64; k++)
            if (a->pc[k].state == P_HOST && a->pc[k].bare) {
                a->pc[k].state = P_MOVING;
                a->busy++;
                b[nb].a = a;
                b[nb++].k = k;
            }
    }
    if (!nb) return 0;
    moving_any++;
    pthread_mutex_unlock(&pt.mu);
    double t0 = now_s();
    /* relaxed: another thread may be capturing in global mode */
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    int swapped = vp_real.cuThreadExchangeStreamCaptureMode &&
                  vp_real.cuThreadExchangeStreamCaptureMode(&mode) == CUDA_SUCCESS;
    int ok[64];
    for (int j = 0; j < nb; j++) {
        struct salloc *a = b[j].a;
        uint64_t off = piece_off(a, b[j].k), len = piece_len(a, b[j].k);
        ok[j] = map_at(a->base + off, len, a->pc[b[j].k].host, a->dev) == CUDA_SUCCESS;
        if (!ok[j]) {
            driver_error("mapping a piece's host memory", CUDA_ERROR_UNKNOWN, a->dev);
            vp_error("stream: piece at %#llx of device %d could not be mapped; kernels touching it will fault",
                     (unsigned long long)(a->base + off), a->dev);
        }
    }
    if (swapped) vp_real.cuThreadExchangeStreamCaptureMode(&mode);
    uint64_t ns = (uint64_t)((now_s() - t0) * 1e9);
    pthread_mutex_lock(&pt.mu);
    for (int j = 0; j < nb; j++) {
        struct salloc *a = b[j].a;
        struct piece *p = &a->pc[b[j].k];
        p->state = P_HOST;
        p->bare = !ok[j];
        a->busy--;
        count(&ss[a->dev].bare_maps, 1);
        if (vp_trace_on())
            vp_trace("map", "\t%d\t%#llx\t%u\t%llu\t%llu", a->dev, (unsigned long long)a->base, b[j].k,
                     (unsigned long long)piece_len(a, b[j].k), (unsigned long long)(ns / 1000 / (uint64_t)nb));
    }
    count(&ss[b[0].a->dev].bare_map_ns, ns);
    moving_any--;
    pthread_cond_broadcast(&pt.done_cv);
    return nb;
}

/* captures this thread began and has not ended: its operations are
 * recorded into a graph, not run (a replay fences everything) */
static __thread int capturing_here;

int vp_stream_op_begin(const uint64_t *ptrs, size_t n, int all, int use, const char *what)
{
    if (!atomic_load_explicit(&nstream, memory_order_relaxed) || capturing_here) return 0;
    pthread_mutex_lock(&pt.mu);
    op.n = 0;
    op.all = all;
    op.progress = 0;
    uint64_t t = use ? ++tick : tick;
    int want = 0;
    for (size_t j = 0; j < n; j++) {
        struct salloc *a = find_locked(ptrs[j]);
        if (!a || a->gone) continue;
        int seen = 0;
        for (int i = 0; i < op.n; i++) seen |= op.a[i] == a;
        if (!seen) {
            if (op.n == OPMAX) op.all = 1; /* too many to track one by one */
            else op.a[op.n++] = a;
        }
        if (!use) continue;
        uint64_t cap = vp_cap_of(a->dev), first, cnt;
        vp_policy_demand_range(a->span, ptrs[j] - a->base, a->piece, cap == VP_NO_CAP ? UINT64_MAX : cap / 4,
                               &first, &cnt);
        for (uint64_t i = first; i < first + cnt; i++) {
            struct piece *p = &a->pc[i];
            if (p->u.last == t) continue;
            if (vp_uses_note(&p->u, t) && !p->pinned) p->pin_asked = 1;
            /* a use of a piece that is neither pinned nor hot moves its
             * rank (what streams through): the pager plans again after
             * the operation; uses of pinned and hot pieces change nothing
             * it would do, and a loop that fits is not planned at all */
            if (p->pin_asked || (!p->pinned && !is_hot(p))) op.progress = 1;
            /* needed now, until the operation is issued: ranked first, and
             * not sent out meanwhile (its last use already says "later") */
            p->requested = 1;
            if (p->state != P_DEV) {
                count(&ss[a->dev].remote_estimate, piece_len(a, (uint32_t)i));
                want = 1;
            }
        }
    }
    if (!op.n && !op.all) {
        pthread_mutex_unlock(&pt.mu);
        return 0;
    }
    /* wait for the pieces wanted to come in (the pager clears requests it
     * will not serve), then for every move of what is touched to end.
     * While another thread captures nothing is planned: no piece comes, so
     * the operation does not wait for them (it is still fenced) */
    if (want && !atomic_load(&pt.capturing)) pthread_cond_signal(&pt.work_cv);
    double start = now_s(), until = start + VP_STREAM_WAIT_MS / 1000.0;
    int waited = 0, timed_out = 0, was_busy = 0;
    while (want && !pt.stopping && !atomic_load(&pt.capturing)) {
        want = 0;
        for (int i = 0; i < op.n && !want; i++)
            for (uint32_t k = 0; k < op.a[i]->npieces && !want; k++)
                want = op.a[i]->pc[k].requested && op.a[i]->pc[k].state != P_DEV;
        if (!want) break;
        double now = now_s();
        if (now > until) {
            /* the room they need may be held by pieces of operations still
             * running: waiting on costs the device nothing, while a kernel
             * reading its memory over the bus may read it hundreds of
             * times. Without such operations the pager is not serving this
             * one: it goes ahead */
            int busy = ops_in_flight_locked(op.a[0]->dev);
            /* (once they ended, the pager gets one more period) */
            if (now - start > VP_STREAM_WAIT_MAX_MS / 1000.0 || (!busy && !was_busy)) {
                timed_out = 1;
                break;
            }
            was_busy = busy;
            until = now + VP_STREAM_WAIT_MS / 1000.0;
        }
        waited = 1;
        wait_locked();
    }
    /* then the pieces left unmapped get their host memory mapped, and
     * moves that began meanwhile are waited for again */
    do {
        while (has_moving_locked() && !pt.stopping) {
            waited = 1;
            wait_locked();
        }
    } while (!pt.stopping && map_bare_locked());
    if (op.all && leave_bare_locked()) {
        eager_map = 1;
        vp_log(VP_INFO, "stream: an operation touches every streamed allocation (a graph replay): pieces leaving "
                        "the device get their host memory mapped back from now on");
    }
    int dev = op.n ? op.a[0]->dev : 0;
    double waited_s = waited ? now_s() - start : 0;
    if (waited) {
        count(&ss[dev].waits, 1);
        count(&ss[dev].wait_ns, (uint64_t)(waited_s * 1e9));
    }
    if (timed_out) count(&ss[dev].wait_timeouts, 1);
    if (vp_trace_on()) trace_op(dev, use ? t : 0, what, waited_s);
    /* what it touches: resident pieces are dirty, and the host memory of
     * the others may change under their hashes */
    for (int i = 0; i < op.n; i++) {
        struct salloc *a = op.a[i];
        a->pending++;
        for (uint32_t k = 0; k < a->npieces; k++) touch(&a->pc[k]);
    }
    if (op.all) {
        global_pending++;
        for (size_t i = 0; i < tab.n; i++)
            for (uint32_t k = 0; k < TAB(i)->npieces; k++) touch(&TAB(i)->pc[k]);
    }
    op.on = 1;
    pthread_mutex_unlock(&pt.mu);
    return 1;
}

void vp_stream_op_end(CUstream stream, int per_thread)
{
    if (!op.on) return;
    if (per_thread && !stream) stream = CU_STREAM_PER_THREAD;
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES) dev = 0;
    uint64_t s = record(dev, stream);
    pthread_mutex_lock(&pt.mu);
    for (int i = 0; i < op.n; i++) {
        struct salloc *a = op.a[i];
        a->pending--;
        a->serial = s;
        a->ev_dev = dev;
        for (uint32_t k = 0; k < a->npieces; k++) a->pc[k].requested = 0; /* served, or gone ahead */
    }
    if (op.all) {
        global_pending--;
        all_serial = s;
        all_dev = dev;
    }
    if (op.progress || ops_block) pthread_cond_signal(&pt.work_cv);
    op.on = 0;
    op.n = 0;
    pthread_mutex_unlock(&pt.mu);
}

void vp_stream_capture(int delta)
{
    if (delta > 0) capturing_here++;
    else if (capturing_here > 0) capturing_here--;
    vp_pager_thread_capture(&pt, delta);
}

/* ---- the pager's moves ---- */

struct move {
    struct salloc *a;
    uint32_t i;
    int out; /* 0 in, 1 out, 2 out that failed (stays resident) */
    struct slot *slot;
    int failed; /* remap */
    uint8_t hashing; /* its hash is being taken (partials at its index in the round's buffer) */
    uint8_t bare;    /* in: its address maps nothing now; out: it is left so */
    uint8_t have_hash, copied;
    uint64_t h[2];
};

/* The program's address of a move's piece. */
static CUdeviceptr move_va(const struct move *m) { return m->a->base + piece_off(m->a, m->i); }

/* Orders moves by direction, then address. */
static int by_place(const void *x, const void *y)
{
    const struct move *a = x, *b = y;
    if (a->out != b->out) return a->out < b->out ? -1 : 1;
    if (a->bare != b->bare) return a->bare < b->bare ? -1 : 1;
    return move_va(a) < move_va(b) ? -1 : move_va(a) > move_va(b);
}

/* Gives an in-move's slot back to the free list (its move failed). */
static void unslot(int dev, struct move *m)
{
    give_slot(dev, m->slot);
    m->slot = NULL;
}

/* Whether dev's hash kernel is loaded (loads it the first time; the
 * device is current). Pager thread. */
static int hash_ready(int dev)
{
    if (!vp_opt.stream_hash) return 0;
    if (!hash_tried[dev]) {
        hash_tried[dev] = 1;
        CUmodule mod;
        CUresult rc = CUDA_ERROR_NOT_SUPPORTED;
        if (vp_real.cuModuleLoadData && vp_real.cuModuleGetFunction && vp_real.cuLaunchKernel &&
            (rc = vp_real.cuModuleLoadData(&mod, vp_hash_ptx)) == CUDA_SUCCESS &&
            (rc = vp_real.cuModuleGetFunction(&hash_fn[dev], mod, "vp_hash")) == CUDA_SUCCESS) {
            int least = 0, greatest = 0;
            if (!vp_real.cuStreamCreateWithPriority || !vp_real.cuCtxGetStreamPriorityRange ||
                vp_real.cuCtxGetStreamPriorityRange(&least, &greatest) != CUDA_SUCCESS ||
                vp_real.cuStreamCreateWithPriority(&s_hash[dev], CU_STREAM_NON_BLOCKING, greatest) != CUDA_SUCCESS)
                rc = vp_real.cuStreamCreate(&s_hash[dev], CU_STREAM_NON_BLOCKING);
        }
        if (rc != CUDA_SUCCESS) {
            hash_fn[dev] = NULL;
            s_hash[dev] = NULL;
            vp_log(VP_WARN, "stream: the hash kernel could not be loaded on device %d (CUresult %d); every piece "
                            "operations touched is copied back when it leaves", dev, (int)rc);
        }
    }
    return hash_fn[dev] != NULL;
}

/* Starts the hash of len bytes at src (device memory) into out (pinned
 * host memory, HSTRIDE words) on stream s. */
static CUresult launch_hash(int dev, CUdeviceptr src, uint64_t len, uint64_t *out, CUstream s)
{
    uint64_t n = len / 8;
    CUdeviceptr o = (CUdeviceptr)(uintptr_t)out;
    void *args[3] = {&src, &n, &o};
    CUresult rc = vp_real.cuLaunchKernel(hash_fn[dev], vp_hash_blocks(n), 1, 1, VP_HASH_THREADS, 1, 1, 0, s, args, NULL);
    if (rc == CUDA_SUCCESS) count(&ss[dev].hashes, 1);
    return rc;
}

/* Copies out-move m's slot back to its host memory on dev's out stream. */
static CUresult copy_back(int dev, struct move *m)
{
    struct salloc *a = m->a;
    CUresult rc = vp_real.cuMemcpyDtoDAsync_v2(a->home + piece_off(a, m->i), m->slot->va, piece_len(a, m->i),
                                               s_out[dev]);
    m->copied = rc == CUDA_SUCCESS;
    return rc;
}

/* Issues the copies of the moves m[0..n) (pieces marked P_MOVING, their
 * allocations busy) on dev's two streams, both directions at once, and
 * records ev[0..2] after them (in, out, hashes). With hbuf (pinned host
 * memory, HSTRIDE words a move) and the hash kernel loaded: a piece coming
 * in whose hash is not known is hashed after its copy, and a touched piece
 * leaving is hashed instead of copied (remap copies it if it changed).
 * mu not held. Returns 0, or -1 when nothing was issued (every move then
 * fails softly: out ones stay, in ones do not come). */
static int issue_copies(int dev, struct move *m, size_t n, CUevent ev[3], uint64_t *hbuf)
{
    if (use_device(dev)) {
        driver_error("making the device current", CUDA_ERROR_INVALID_CONTEXT, dev);
        for (size_t j = 0; j < n; j++) {
            if (m[j].out) m[j].out = 2;
            else m[j].slot = NULL;
        }
        return -1;
    }
    int hashes = hbuf && hash_ready(dev);
    for (size_t j = 0; j < n; j++) {
        struct salloc *a = m[j].a;
        struct piece *p = &a->pc[m[j].i];
        uint64_t off = piece_off(a, m[j].i), len = piece_len(a, m[j].i);
        CUresult rc = CUDA_SUCCESS;
        m[j].hashing = m[j].have_hash = m[j].copied = 0;
        if (m[j].out) {
            /* a touched piece: hashed now, copied in remap if it changed */
            if (p->dirty && hashes)
                m[j].hashing = launch_hash(dev, m[j].slot->va, len, hbuf + j * HSTRIDE, s_hash[dev]) == CUDA_SUCCESS;
            if (p->dirty && !m[j].hashing) rc = copy_back(dev, &m[j]);
        } else {
            m[j].slot = slot_get(dev, len);
            if (m[j].slot) rc = vp_real.cuMemcpyDtoDAsync_v2(m[j].slot->va, a->home + off, len, s_in[dev]);
            if (m[j].slot && rc == CUDA_SUCCESS && hashes && !p->hashed)
                m[j].hashing = launch_hash(dev, m[j].slot->va, len, hbuf + j * HSTRIDE, s_in[dev]) == CUDA_SUCCESS;
        }
        if (rc != CUDA_SUCCESS) {
            driver_error("copying a piece", rc, dev);
            if (m[j].out) m[j].out = 2; /* stays resident */
            else unslot(dev, &m[j]);
        }
    }
    CUstream st[3] = {s_in[dev], s_out[dev], s_hash[dev]};
    for (int k = 0; k < 3; k++) {
        if (!st[k]) { /* no hash stream: nothing on it */
            ev[k] = NULL;
            continue;
        }
        if (!ev[k] || vp_real.cuEventRecord(ev[k], st[k]) != CUDA_SUCCESS) {
            /* no event: wait here */
            if (vp_real.cuStreamSynchronize(st[k]) != CUDA_SUCCESS) return -2;
            ev[k] = NULL;
        }
    }
    return 0;
}

/* After the hashes of m[0..n) (hbuf, as issue_copies took them): a leaving
 * piece whose hash is the one of its host memory leaves without a copy;
 * one that changed, or whose host memory's hash is not known, is copied
 * back now and waited for (if that fails, it stays resident). mu not held. */
static void settle_hashes(int dev, struct move *m, size_t n, const uint64_t *hbuf)
{
    int copies = 0;
    for (size_t j = 0; j < n; j++) {
        if (!m[j].hashing) continue;
        struct piece *p = &m[j].a->pc[m[j].i];
        vp_hash_combine(hbuf + j * HSTRIDE, vp_hash_blocks(piece_len(m[j].a, m[j].i) / 8), m[j].h);
        m[j].have_hash = 1;
        if (m[j].out != 1 || (p->hashed && p->hash[0] == m[j].h[0] && p->hash[1] == m[j].h[1])) continue;
        if (copy_back(dev, &m[j]) != CUDA_SUCCESS) {
            driver_error("copying a piece", CUDA_ERROR_UNKNOWN, dev);
            m[j].out = 2;
        } else
            copies = 1;
    }
    if (!copies || vp_real.cuStreamSynchronize(s_out[dev]) == CUDA_SUCCESS) return;
    driver_error("waiting for the copies of pieces", CUDA_ERROR_UNKNOWN, dev);
    for (size_t j = 0; j < n; j++)
        if (m[j].out == 1 && m[j].copied) m[j].out = 2;
}

/* The runs of a round's moves to remap: run k is m[runs[2k]..runs[2k+1]). */
struct remap_job {
    int dev;
    struct move *m;
    size_t *runs;
    size_t nruns;
};

/* Remaps run k of job: neighbouring pieces moving the same way. Each run
 * touches only its own moves; stats are atomic. A helper or the pager
 * thread, mu not held. */
static void remap_run(void *arg, size_t k)
{
    struct remap_job *job = arg;
    struct move *m = job->m;
    int dev = job->dev;
    size_t j = job->runs[2 * k], e = job->runs[2 * k + 1];
    if (vp_real.cuCtxSetCurrent(ctx[dev]) != CUDA_SUCCESS) {
        for (size_t q = j; q < e; q++) m[q].failed = 2; /* nothing was touched */
        driver_error("making the device current for a remap", CUDA_ERROR_INVALID_CONTEXT, dev);
        return;
    }
    CUdeviceptr first = move_va(&m[j]);
    uint64_t span = move_va(&m[e - 1]) + piece_len(m[e - 1].a, m[e - 1].i) - first;
    /* a bare in-move has nothing to unmap; a bare out-move maps nothing */
    int unmap = !(m[j].bare && !m[j].out), map = !(m[j].bare && m[j].out);
    double u0 = now_s();
    int whole = unmap && e - j > 1 && vp_real.cuMemUnmap(first, span) == CUDA_SUCCESS;
    if (unmap) count(&ss[dev].unmap_calls, 1);
    int mapped = 1;
    for (size_t q = j; q < e; q++) {
        struct salloc *a = m[q].a;
        uint64_t off = piece_off(a, m[q].i), len = piece_len(a, m[q].i);
        CUresult r = CUDA_SUCCESS;
        if (unmap && !whole) {
            if (e - j > 1) count(&ss[dev].unmap_calls, 1);
            r = vp_real.cuMemUnmap(a->base + off, len);
        }
        if (r == CUDA_SUCCESS && map)
            r = vp_real.cuMemMap(a->base + off, len, 0, m[q].out ? a->pc[m[q].i].host : m[q].slot->h, 0);
        if (r != CUDA_SUCCESS) {
            mapped = 0;
            m[q].failed = 1;
        }
    }
    double u1 = now_s();
    count(&ss[dev].unmap_ns, (uint64_t)((u1 - u0) * 1e9));
    /* access: for the run at once, else a piece at a time */
    if (map && (!mapped || allow(first, span, dev) != CUDA_SUCCESS))
        for (size_t q = j; q < e; q++)
            if (!m[q].failed && allow(move_va(&m[q]), piece_len(m[q].a, m[q].i), dev) != CUDA_SUCCESS) {
                vp_real.cuMemUnmap(move_va(&m[q]), piece_len(m[q].a, m[q].i));
                m[q].failed = 1;
            }
    count(m[j].out ? &ss[dev].map_out_ns : &ss[dev].map_in_ns, (uint64_t)((now_s() - u1) * 1e9));
    for (size_t q = j; q < e; q++) {
        if (!m[q].failed) continue;
        struct salloc *a = m[q].a;
        uint64_t off = piece_off(a, m[q].i), len = piece_len(a, m[q].i);
        if (m[q].failed == 1) {
            driver_error("remapping a piece", CUDA_ERROR_UNKNOWN, dev);
            /* put back what was there: the data it holds is current (a
             * bare piece coming in stays bare) */
            CUmemGenericAllocationHandle back = m[q].out ? m[q].slot->h : a->pc[m[q].i].host;
            vp_real.cuMemUnmap(a->base + off, len);
            if ((!m[q].bare || m[q].out) && map_at(a->base + off, len, back, dev) != CUDA_SUCCESS)
                vp_error("stream: piece at %#llx of device %d could not be mapped again; kernels touching it "
                         "will fault", (unsigned long long)(a->base + off), dev);
        }
        if (m[q].out) m[q].out = 2;
        else unslot(dev, &m[q]);
    }
}

/* Waits for the copies of m[0..n) (issue_copies returned rc), then moves
 * the program's addresses to the other memory. mu not held. */
static void remap(int dev, struct move *m, size_t n, CUevent ev[3], int rc, const uint64_t *hbuf)
{
    double t0 = now_s();
    CUresult r = CUDA_SUCCESS;
    for (int k = 0; k < 3 && rc == 0 && r == CUDA_SUCCESS; k++)
        if (ev[k]) r = vp_real.cuEventSynchronize(ev[k]);
    if (rc == -2 || r != CUDA_SUCCESS) {
        driver_error("waiting for the copies of pieces", r, dev);
        for (size_t j = 0; j < n; j++) {
            m[j].hashing = 0;
            if (m[j].out == 1) m[j].out = 2;
            if (!m[j].out && m[j].slot) unslot(dev, &m[j]);
        }
    }
    if (hbuf) settle_hashes(dev, m, n, hbuf);
    double t1 = now_s();
    count(&ss[dev].copy_ns, (uint64_t)((t1 - t0) * 1e9));
    /* neighbouring pieces moving the same way (of one allocation, or of
     * neighbouring allocations of one arena) are unmapped with one call
     * and given access with one call. The driver may refuse a range over
     * several mappings: then one call a piece. The runs are remapped on
     * the pager's helpers at once (remap_run) */
    qsort(m, n, sizeof *m, by_place);
    size_t runs[2 * ROUND_MOVES];
    struct remap_job job = {dev, m, runs, 0};
    for (size_t j = 0; j < n;) {
        size_t e = j + 1;
        if (m[j].out == 2 || (!m[j].out && !m[j].slot)) {
            j = e;
            continue;
        }
        while (e < n && m[e].out == m[j].out && m[e].bare == m[j].bare && (m[e].out || m[e].slot) &&
               m[e].a->arena == m[j].a->arena &&
               move_va(&m[e]) == move_va(&m[e - 1]) + piece_len(m[e - 1].a, m[e - 1].i))
            e++;
        runs[2 * job.nruns] = j;
        runs[2 * job.nruns + 1] = e;
        job.nruns++;
        j = e;
    }
    vp_pool_run(&pool, job.nruns, remap_run, &job);
    if (vp_trace_on())
        vp_trace("round", "\t%d\t%zu\t%llu\t%llu", dev, n, (unsigned long long)((t1 - t0) * 1e6),
                 (unsigned long long)((now_s() - t1) * 1e6));
}

/* Copies, then remaps, with no overlap (reclaims). */
static void make_moves(int dev, struct move *m, size_t n)
{
    CUevent none[3] = {NULL, NULL, NULL};
    int rc = issue_copies(dev, m, n, none, NULL);
    remap(dev, m, n, none, rc, NULL);
}

/* The budget of pieces on dev: the cap less everything counted that is not
 * a slot. */
static uint64_t budget_of(int dev)
{
    uint64_t cap = vp_cap_of(dev);
    if (cap == VP_NO_CAP) return UINT64_MAX / 4;
    uint64_t other = vp_acct_get(dev, VP_KIND_COUNT).cur - vp_acct_get(dev, VP_KIND_resident).cur;
    return cap > other ? cap - other : 0;
}

static int is_hot(const struct piece *p) { return vp_uses_hot(&p->u, tick); }

/* Planning: whether the 'all' fence is clear (-1: not asked yet). */
static int quiet;

/* Whether a's pieces may move now: no operation on it (or on everything)
 * is being issued or in flight. Asks the events once a plan; an
 * allocation held up by operations makes their ends wake the pager. mu
 * held. */
static int may_move_locked(struct salloc *a)
{
    if (a->still < 0) {
        if (quiet < 0) quiet = all_settled_locked();
        a->still = quiet && !a->busy && settled_locked(a);
        if (!a->still && !a->busy) ops_block = 1;
    }
    return a->still;
}

/* One planning round for dev: decides pins, the wanted set, and picks the
 * moves that can be made now (into m, at most mmax). mu held. */
static size_t plan_locked(int dev, struct move *m, size_t mmax, int *blocked)
{
    size_t np = 0, placed = 0; /* pieces used; placed (resident, never used) */
    uint64_t hot = 0, cold = 0, pinned = 0, held = 0, piece = 0;
    for (size_t i = 0; i < tab.n; i++) {
        struct salloc *a = TAB(i);
        if (a->dev != dev || a->gone) continue;
        piece = a->piece;
        for (uint32_t k = 0; k < a->npieces; k++) {
            struct piece *p = &a->pc[k];
            uint64_t len = piece_len(a, k);
            if (p->state != P_HOST) held += len;
            if (!p->u.visit) {
                placed += p->state == P_DEV;
                continue;
            }
            np++;
            if (is_hot(p)) hot += len;
            else cold += len;
            if (p->pinned) pinned += len;
        }
    }
    if (!np) return 0;
    uint64_t budget = budget_of(dev);
    /* the window holds what streams through; when little must stream
     * (the overflow past the budget is small) a small window does */
    uint64_t window = vp_stream_window(budget, piece, vp_opt.stream_window), over = hot + cold > budget ? hot + cold - budget : 0;
    if (over + 4 * piece < window) window = over + 4 * piece;
    /* everything fits beside the hot pieces: all of it is pinned and no
     * window is kept; else the window is kept free of pins */
    uint64_t keep_free = hot + cold <= budget ? 0 : window;
    uint64_t pin_room = budget > hot + keep_free ? budget - hot - keep_free : 0;
    /* hot pieces came to need the room: the latest pinned are unpinned */
    while (pinned > pin_room) {
        struct piece *latest = NULL;
        struct salloc *of = NULL;
        uint32_t at = 0;
        uint64_t len = 0;
        for (size_t i = 0; i < tab.n; i++)
            for (uint32_t k = 0; TAB(i)->dev == dev && !TAB(i)->gone && k < TAB(i)->npieces; k++)
                if (TAB(i)->pc[k].pinned && (!latest || TAB(i)->pc[k].pin_seq > latest->pin_seq)) {
                    latest = &TAB(i)->pc[k];
                    of = TAB(i);
                    at = k;
                    len = piece_len(TAB(i), k);
                }
        if (!latest) break;
        latest->pinned = 0;
        if (vp_trace_on())
            vp_trace("unpin", "\t%d\t%#llx\t%u\t%llu", dev, (unsigned long long)of->base, at, (unsigned long long)len);
        pinned -= len;
        uncount(&ss[dev].pinned, len);
    }
    struct vp_spc *c = malloc((np + placed) * sizeof *c);
    struct move *refs = malloc((np + placed) * sizeof *refs);
    if (!c || !refs) {
        free(c);
        free(refs);
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < tab.n; i++) {
        struct salloc *a = TAB(i);
        if (a->dev != dev || a->gone) continue;
        for (uint32_t k = 0; k < a->npieces; k++) {
            struct piece *p = &a->pc[k];
            uint64_t len = piece_len(a, k);
            if (!p->u.visit && p->state != P_DEV) continue;
            if (!p->u.visit) {
                /* placed at its allocation and not used yet: it keeps the
                 * room only what is wanted does not need (ranked last) */
                refs[n] = (struct move){.a = a, .i = k};
                c[n] = (struct vp_spc){.key = VP_NEXT_STALE, .bytes = len, .ref = &refs[n], .cls = VP_SC_NEXT};
                n++;
                continue;
            }
            if (!vp_opt.stream_ahead) p->pin_asked = 0; /* demand paging pins nothing */
            if (p->pin_asked && !p->pinned) {
                p->pin_asked = 0;
                if (!is_hot(p) && vp_stream_pin(&pin_acc[dev], len, pinned, pin_room, cold)) {
                    p->pinned = 1;
                    p->pin_seq = ++pin_next;
                    pinned += len;
                    count(&ss[dev].pinned, len);
                    if (vp_trace_on())
                        vp_trace("pin", "\t%d\t%#llx\t%u\t%llu", dev, (unsigned long long)a->base, k,
                                 (unsigned long long)len);
                }
            }
            refs[n] = (struct move){.a = a, .i = k};
            c[n].bytes = len;
            c[n].ref = &refs[n];
            c[n].want = 0;
            if (p->requested) {
                c[n].cls = VP_SC_NOW;
                c[n].key = p->u.last;
            } else if (!vp_opt.stream_ahead) {
                /* demand paging: then what is resident, most recently used
                 * first; the rest does not come in */
                c[n].cls = VP_SC_NEXT;
                c[n].key = p->state == P_HOST ? VP_NEXT_STALE : vp_stream_guess_key(tick, p->u.last);
            } else if (is_hot(p)) {
                c[n].cls = VP_SC_HOT;
                c[n].key = p->u.last;
            } else if (p->pinned) {
                c[n].cls = VP_SC_PIN;
                c[n].key = p->pin_seq;
            } else {
                c[n].cls = VP_SC_NEXT;
                /* within a visit (more of its uses are coming), then by
                 * the next visit, then what the loop does not predict;
                 * last, a piece that came in ahead and left before any
                 * use: its prediction was wrong (a weight's gap from its
                 * initialising kernel to its first use, say), and brought
                 * in ahead again it could be pushed out again, over and
                 * over, before its use; it comes when asked for */
                uint64_t next = vp_uses_next(&p->u, tick);
                c[n].key = vp_uses_visiting(&p->u, tick)              ? tick + 1
                           : p->state == P_HOST && p->ahead_at > p->u.last ? VP_NEXT_STALE
                           : next >= VP_NEXT_UNKNOWN                    ? vp_stream_guess_key(tick, p->u.last)
                                                                        : next;
            }
            n++;
        }
    }
    /* which allocations may move now (no operation issued or in flight):
     * asked of the events only for the allocations of candidate moves,
     * each at most once a plan (the program's launches wait for mu) */
    quiet = -1;
    for (size_t i = 0; i < tab.n; i++) TAB(i)->still = -1;
    /* the wanted set is ranked on the whole budget, so that it does not
     * change as operations come and go; pieces that cannot move yet are
     * skipped below (they hold their room until they can) */
    vp_stream_desire(c, n, budget);
    /* room for new slots: the budget less what pieces hold */
    uint64_t room = budget > held ? budget - held : 0;
    size_t nm = 0;
    uint64_t out_bytes = 0, in_bytes = 0;
    /* out: resident and not wanted, latest next use first (the end of the
     * ranking); in: wanted and not resident, soonest first, while there is
     * room (what goes out now makes room for the next round) */
    for (size_t j = n; j-- > 0 && nm < mmax && out_bytes < ROUND_BYTES;) {
        struct move *r = c[j].ref;
        struct piece *p = &r->a->pc[r->i];
        if (c[j].want || p->state != P_DEV) continue;
        if (!may_move_locked(r->a)) {
            *blocked = 1;
            continue;
        }
        m[nm++] = (struct move){.a = r->a, .i = r->i, .out = 1, .slot = p->slot, .bare = leave_bare_locked()};
        p->state = P_MOVING;
        out_bytes += c[j].bytes;
    }
    for (size_t j = 0; j < n && nm < mmax && in_bytes < ROUND_BYTES; j++) {
        struct move *r = c[j].ref;
        struct piece *p = &r->a->pc[r->i];
        if (!c[j].want) {
            p->requested = 0; /* not served: the launch need not wait */
            continue;
        }
        /* ahead of use only what the loop predicts (and never with
         * VPAGE_STREAM_AHEAD=off) */
        int predicted = vp_opt.stream_ahead && (c[j].cls != VP_SC_NEXT || c[j].key < VP_KEY_GUESS);
        if (p->state != P_HOST || (!p->requested && !predicted)) continue;
        if (c[j].bytes > room) {
            *blocked = 1;
            break;
        }
        if (!may_move_locked(r->a)) {
            *blocked = 1;
            continue;
        }
        m[nm++] = (struct move){.a = r->a, .i = r->i, .bare = p->bare};
        p->ahead = !p->requested;
        if (p->ahead) {
            p->ahead_at = tick;
            p->ahead_cls = c[j].cls;
        }
        p->state = P_MOVING;
        room -= c[j].bytes;
        in_bytes += c[j].bytes;
    }
    for (size_t j = 0; j < nm; j++) m[j].a->busy++;
    free(c);
    free(refs);
    if (nm && vp_trace_on())
        vp_trace("plan", "\t%d\t%llu\t%llu\t%llu\t%llu\t%llu", dev, (unsigned long long)budget,
                 (unsigned long long)hot, (unsigned long long)cold, (unsigned long long)pinned,
                 (unsigned long long)keep_free);
    return nm;
}

/* Ends the moves m[0..n). mu held. */
static void finish_locked(int dev, struct move *m, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        struct salloc *a = m[j].a;
        struct piece *p = &a->pc[m[j].i];
        uint64_t len = piece_len(a, m[j].i);
        /* the hash taken is that of its host memory once it left (copied
         * or unchanged) or came in; not if it stayed (its host memory may
         * be older than the slot) */
        if (m[j].have_hash && (m[j].out == 1 || (!m[j].out && m[j].slot))) {
            memcpy(p->hash, m[j].h, sizeof p->hash);
            p->hashed = 1;
        }
        if (m[j].out == 1) {
            if (vp_trace_on())
                vp_trace("out", "\t%d\t%#llx\t%u\t%llu\t%d", dev, (unsigned long long)a->base, m[j].i,
                         (unsigned long long)len, m[j].copied);
            /* host memory written without a hash taken of it: not known */
            if (m[j].copied && !m[j].have_hash) p->hashed = 0;
            count(m[j].copied ? &ss[dev].bytes_writeback
                  : p->dirty  ? &ss[dev].bytes_unchanged
                              : &ss[dev].bytes_dropped,
                  len);
            if (!p->dirty && p->ahead) count(&ss[dev].dropped_ahead, len);
            count(&ss[dev].moves_out, 1);
            p->bare = m[j].bare;
            slot_put_locked(dev, m[j].slot);
            p->slot = NULL;
            p->state = P_HOST;
        } else if (m[j].out == 2) {
            p->state = P_DEV; /* did not leave: still dirty if it was */
            a->busy--;
            continue;
        } else if (m[j].slot) {
            if (vp_trace_on())
                vp_trace("in", "\t%d\t%#llx\t%u\t%llu\t%d\t%llu\t%d", dev, (unsigned long long)a->base, m[j].i,
                         (unsigned long long)len, p->ahead, (unsigned long long)(p->ahead ? p->ahead_at : 0),
                         p->ahead ? p->ahead_cls : -1);
            count(&ss[dev].bytes_in, len);
            if (p->ahead) count(&ss[dev].bytes_ahead, len);
            count(&ss[dev].moves_in, 1);
            p->bare = 0;
            p->slot = m[j].slot;
            p->state = P_DEV;
        } else {
            p->state = P_HOST;
            p->requested = 0;
        }
        p->dirty = 0;
        a->busy--;
    }
    if (n) moving_any--;
    count(&ss[dev].rounds, 1);
    pthread_cond_broadcast(&pt.done_cv);
}

/* Sends out resident pieces of dev until want bytes are free under the
 * cap or nothing more can leave. mu held. */
static void reclaim_locked(int dev, uint64_t want)
{
    count(&ss[dev].reclaims, 1);
    for (;;) {
        pthread_mutex_unlock(&pt.mu);
        release_free_slots(dev);
        pthread_mutex_lock(&pt.mu);
        uint64_t cap = vp_cap_of(dev), total = vp_acct_get(dev, VP_KIND_COUNT).cur;
        if (cap == VP_NO_CAP || (cap > total && cap - total >= want)) return;
        struct move m[64];
        size_t nm = 0;
        for (size_t i = 0; i < tab.n && nm < 64; i++) {
            struct salloc *a = TAB(i);
            if (a->dev != dev || a->gone || a->pending || global_pending) continue;
            pthread_mutex_unlock(&pt.mu);
            int ok = done(a->ev_dev, a->serial) && done(all_dev, all_serial);
            pthread_mutex_lock(&pt.mu);
            if (!ok || a->gone || a->pending) continue;
            for (uint32_t k = 0; k < a->npieces && nm < 64; k++)
                if (a->pc[k].state == P_DEV) {
                    a->pc[k].state = P_MOVING;
                    a->busy++;
                    m[nm++] = (struct move){.a = a, .i = k, .out = 1, .slot = a->pc[k].slot,
                                            .bare = leave_bare_locked()};
                }
        }
        if (!nm) return;
        moving_any++;
        pthread_mutex_unlock(&pt.mu);
        make_moves(dev, m, nm);
        pthread_mutex_lock(&pt.mu);
        finish_locked(dev, m, nm);
    }
}

/* A round of moves: its copies are issued, then (next time round) waited
 * for and its remaps made, while the copies of the next round run. */
struct round {
    struct move m[ROUND_MOVES];
    size_t n;
    int dev, rc, live;
    CUevent ev[3];
    uint64_t *hbuf; /* the hashes' partials, HSTRIDE words a move (NULL: no hashing) */
};

static CUevent round_ev[VP_MAX_DEVICES][2][3];
static uint64_t *round_hbuf[2]; /* pinned host memory, for every device */

/* Round slot k's hash buffer, made the first time (a device is current). */
static uint64_t *hash_buffer(int k)
{
    if (!round_hbuf[k] && vp_opt.stream_hash && vp_real.cuMemHostAlloc) {
        void *p = NULL;
        if (vp_real.cuMemHostAlloc(&p, ROUND_MOVES * HSTRIDE * sizeof(uint64_t),
                                   CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP) == CUDA_SUCCESS)
            round_hbuf[k] = p;
    }
    return round_hbuf[k];
}

/* Waits for round r's copies, remaps and ends it. mu held. */
static void flush_locked(struct round *r)
{
    if (!r->live) return;
    pthread_mutex_unlock(&pt.mu);
    remap(r->dev, r->m, r->n, r->ev, r->rc, r->hbuf);
    pthread_mutex_lock(&pt.mu);
    finish_locked(r->dev, r->m, r->n);
    r->live = 0;
}

static void *pager_main(void *arg)
{
    (void)arg;
    vp_pager_thread_enter();
    static struct round rounds[2];
    int cur = 0;
    pthread_mutex_lock(&pt.mu);
    while (!pt.stopping) {
        if (vp_pager_thread_reclaim_asked_locked(&pt)) {
            flush_locked(&rounds[cur ^ 1]);
            for (int d = 0; d < VP_MAX_DEVICES; d++)
                if (pt.reclaim_want[d]) {
                    uint64_t w = pt.reclaim_want[d];
                    pt.reclaim_want[d] = 0;
                    reclaim_locked(d, w);
                }
            vp_pager_thread_reclaimed_locked(&pt);
        }
        struct round *r = &rounds[cur], *prev = &rounds[cur ^ 1];
        int blocked = 0;
        /* while a stream is captured nothing new is planned (the capturing
         * thread's operations are not seen); a round in flight is finished,
         * so that other threads' operations waiting for its moves go on
         * (this thread is in relaxed capture mode: its synchronisations
         * and remaps neither fail nor invalidate the capture) */
        int capt = atomic_load(&pt.capturing) > 0;
        r->n = 0;
        ops_block = 0;
        if (!capt)
            for (int d = 0; d < VP_MAX_DEVICES && !r->n && !pt.stopping; d++) {
                if (prev->live && prev->dev != d) continue; /* one device at a time in flight */
                double p0 = now_s();
                r->n = plan_locked(d, r->m, sizeof r->m / sizeof *r->m, &blocked);
                r->dev = d;
                if (atomic_load_explicit(&ss[d].streamed, memory_order_relaxed)) {
                    count(&ss[d].plans, 1);
                    count(&ss[d].plan_ns, (uint64_t)((now_s() - p0) * 1e9));
                }
            }
        if (r->n) {
            moving_any++;
            int d = r->dev, slot = cur;
            pthread_mutex_unlock(&pt.mu);
            for (int k = 0; k < 3; k++) {
                if (!round_ev[d][slot][k] && use_device(d) == 0)
                    vp_real.cuEventCreate(&round_ev[d][slot][k], CU_EVENT_DISABLE_TIMING);
                r->ev[k] = round_ev[d][slot][k];
            }
            r->hbuf = use_device(d) == 0 ? hash_buffer(slot) : NULL;
            r->rc = issue_copies(d, r->m, r->n, r->ev, r->hbuf);
            pthread_mutex_lock(&pt.mu);
            r->live = 1;
        }
        int had_prev = prev->live;
        flush_locked(prev);
        if (r->live) {
            cur ^= 1;
            continue;
        }
        if (had_prev || pt.stopping) continue;
        vp_cond_wait_ns(&pt.work_cv, &pt.mu, blocked ? 500000 : 50000000);
    }
    flush_locked(&rounds[cur ^ 1]);
    pthread_mutex_unlock(&pt.mu);
    return NULL;
}

static int start_locked(void)
{
    pool.want = (int)vp_opt.stream_threads;
    pool.enter = vp_pager_thread_enter;
    return vp_pager_thread_start_locked(&pt, pager_main, "vpage-stream",
                                        "stream: cannot start the pager thread; allocations are not streamed");
}

/* ---- allocation ---- */

static int have_driver(void)
{
    return vp_real.cuMemCreate && vp_real.cuMemRelease && vp_real.cuMemAddressReserve && vp_real.cuMemAddressFree &&
           vp_real.cuMemMap && vp_real.cuMemUnmap && vp_real.cuMemSetAccess &&
           vp_real.cuMemGetAllocationGranularity && vp_real.cuEventCreate && vp_real.cuEventRecord &&
           vp_real.cuEventQuery && vp_real.cuEventSynchronize && vp_real.cuMemcpyDtoDAsync_v2 &&
           vp_real.cuStreamSynchronize && vp_real.cuStreamCreate && vp_real.cuDeviceGet &&
           vp_real.cuDeviceGetAttribute && vp_real.cuDevicePrimaryCtxRetain && vp_real.cuCtxSetCurrent;
}

/* The granularity both kinds of memory accept on dev (0: unknown). */
static uint64_t granularity(int dev)
{
    static atomic_uint_fast64_t gran[VP_MAX_DEVICES];
    uint64_t g = atomic_load(&gran[dev]);
    if (g) return g;
    size_t gd = 0, gh = 0;
    CUmemAllocationProp pd = prop_for(dev, 0), ph = prop_for(dev, 1);
    if (vp_real.cuMemGetAllocationGranularity(&gd, &pd, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS ||
        vp_real.cuMemGetAllocationGranularity(&gh, &ph, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS ||
        !gd || !gh)
        return 0;
    g = gd > gh ? gd : gh;
    atomic_store(&gran[dev], g);
    return g;
}

static void undo_alloc(struct salloc *a, uint32_t made)
{
    for (uint32_t i = 0; i < made; i++) {
        vp_real.cuMemUnmap(a->base + piece_off(a, i), piece_len(a, i));
        vp_real.cuMemUnmap(a->home + piece_off(a, i), piece_len(a, i));
        vp_real.cuMemRelease(a->pc[i].host);
    }
    if (a->home) vp_real.cuMemAddressFree(a->home, a->span);
    if (a->base) range_give(a->base, a->span, a->arena);
}


CUresult vp_stream_alloc(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes)
{
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES || !bytes || !dptr || !have_driver()) return CUDA_ERROR_NOT_SUPPORTED;
    uint64_t g = granularity(dev);
    if (!g) {
        static atomic_int said;
        if (!atomic_exchange(&said, 1))
            vp_warn("stream: the driver gives no granularity for host-located memory on device %d; allocations "
                    "there are not streamed", dev);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    uint64_t span = round_up(bytes, g), piece = round_up(vp_opt.chunk, g);
    if (vp_paged_take(&ss[dev].streamed, span, dev, hook, &ss[dev].refused)) return CUDA_ERROR_OUT_OF_MEMORY;
    uint32_t np = (uint32_t)((span + piece - 1) / piece);
    struct salloc *a = calloc(1, sizeof *a + (size_t)np * sizeof(struct piece));
    pthread_mutex_lock(&pt.mu);
    int ok = a && start_locked() == 0;
    pthread_mutex_unlock(&pt.mu);
    CUresult rc = ok ? CUDA_SUCCESS : CUDA_ERROR_NOT_SUPPORTED;
    uint32_t made = 0;
    if (ok) {
        a->size = bytes;
        a->span = span;
        a->piece = piece;
        a->dev = dev;
        a->npieces = np;
        /* the program's range from an arena, the home range of its own */
        a->base = range_take(span, g, &a->arena);
        rc = a->base ? vp_real.cuMemAddressReserve(&a->home, span, g, 0, 0) : CUDA_ERROR_OUT_OF_MEMORY;
        if (rc != CUDA_SUCCESS) a->home = 0;
        CUmemAllocationProp ph = prop_for(dev, 1);
        int place = vp_opt.stream_place == VP_PLACE_DEVICE;
        for (; rc == CUDA_SUCCESS && made < np; made++) {
            uint64_t off = piece_off(a, made), len = piece_len(a, made);
            rc = vp_real.cuMemCreate(&a->pc[made].host, len, &ph, 0);
            if (rc != CUDA_SUCCESS) break;
            /* VPAGE_STREAM_PLACE=device: the piece starts in a slot while
             * the cap has room (its bytes are undefined, as cuMemAlloc's
             * are: nothing to copy) */
            struct slot *sl = place ? slot_get(dev, len) : NULL;
            place = sl != NULL;
            if ((rc = map_at(a->base + off, len, sl ? sl->h : a->pc[made].host, dev)) == CUDA_SUCCESS &&
                (rc = map_at(a->home + off, len, a->pc[made].host, dev)) != CUDA_SUCCESS)
                vp_real.cuMemUnmap(a->base + off, len);
            if (rc != CUDA_SUCCESS) {
                if (sl) give_slot(dev, sl);
                vp_real.cuMemRelease(a->pc[made].host);
                break;
            }
            if (sl) {
                a->pc[made].slot = sl;
                a->pc[made].state = P_DEV;
                count(&ss[dev].placed, len);
            }
        }
        if (rc != CUDA_SUCCESS) {
            for (uint32_t i = 0; i < made; i++)
                if (a->pc[i].slot) give_slot(dev, a->pc[i].slot);
            undo_alloc(a, made);
            driver_error("building a streamed allocation", rc, dev);
            rc = rc == CUDA_ERROR_OUT_OF_MEMORY ? rc : CUDA_ERROR_NOT_SUPPORTED;
        }
    }
    if (rc == CUDA_SUCCESS) {
        pthread_mutex_lock(&pt.mu);
        if (insert_locked(a)) rc = CUDA_ERROR_OUT_OF_MEMORY;
        pthread_mutex_unlock(&pt.mu);
        if (rc != CUDA_SUCCESS) undo_alloc(a, made);
    }
    if (rc != CUDA_SUCCESS) {
        free(a);
        atomic_fetch_sub(&ss[dev].streamed, span);
        return rc;
    }
    *dptr = a->base;
    if (vp_trace_on())
        vp_trace("alloc", "\t%d\t%#llx\t%llu\t%u\t%llu", dev, (unsigned long long)a->base,
                 (unsigned long long)bytes, np, (unsigned long long)piece);
    vp_gauge_move(&ss[dev].streamed_peak, atomic_load(&ss[dev].streamed), 1);
    vp_gauge_move(&lo_addr, a->base, 0);
    vp_gauge_move(&hi_addr, a->base + bytes, 1);
    atomic_fetch_add(&nstream, 1);
    return CUDA_SUCCESS;
}

/* Waits until the operation of serial s on dev has completed. */
static void wait_done(int dev, uint64_t s)
{
    if (!s) return;
    pthread_mutex_lock(&ring_mu);
    size_t i = s % RING;
    if (ring_serial[dev][i] == s) vp_real.cuEventSynchronize(ring_ev[dev][i]);
    pthread_mutex_unlock(&ring_mu);
}

int vp_stream_free(CUdeviceptr dptr, CUresult *rc, uint64_t *size)
{
    if (!atomic_load_explicit(&nstream, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&pt.mu);
    struct salloc *a = find_locked(dptr);
    if (!a || a->base != dptr || a->gone) {
        pthread_mutex_unlock(&pt.mu);
        return 0;
    }
    a->gone = 1;
    while (a->busy || a->pending) pthread_cond_wait(&pt.done_cv, &pt.mu);
    remove_locked(a);
    pthread_mutex_unlock(&pt.mu);
    /* the program's work on it ends before its memory goes, as with cuMemFree */
    int dev = a->dev;
    wait_done(a->ev_dev, a->serial);
    wait_done(all_dev, all_serial);
    for (uint32_t i = 0; i < a->npieces; i++)
        if (a->pc[i].pinned) uncount(&ss[dev].pinned, piece_len(a, i));
    undo_alloc(a, a->npieces);
    pthread_mutex_lock(&pt.mu);
    for (uint32_t i = 0; i < a->npieces; i++) /* the slots serve other pieces */
        if (a->pc[i].slot) slot_put_locked(dev, a->pc[i].slot);
    atomic_fetch_sub(&nstream, 1);
    pthread_mutex_unlock(&pt.mu);
    /* the device's last streamed allocation: its free slots serve nothing */
    if (atomic_fetch_sub(&ss[dev].streamed, a->span) == a->span) release_free_slots(dev);
    *size = a->size;
    if (vp_trace_on()) vp_trace("free", "\t%d\t%#llx", dev, (unsigned long long)a->base);
    free(a);
    *rc = CUDA_SUCCESS;
    return 1;
}

int vp_stream_owns(CUdeviceptr p)
{
    if (!atomic_load_explicit(&nstream, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&pt.mu);
    int r = find_locked(p) != NULL;
    pthread_mutex_unlock(&pt.mu);
    return r;
}

int vp_stream_span(uint64_t *lo, uint64_t *hi)
{
    if (!atomic_load_explicit(&nstream, memory_order_relaxed)) return 0;
    *lo = atomic_load_explicit(&lo_addr, memory_order_relaxed);
    *hi = atomic_load_explicit(&hi_addr, memory_order_relaxed);
    return 1;
}

int vp_stream_reclaim(int dev, int kind, uint64_t bytes)
{
    if (!atomic_load(&nstream) || op.on) return -1; /* op.on: the pager would wait for this thread's operation */
    return vp_pager_thread_reclaim(&pt, dev, kind, bytes);
}

void vp_stream_report(int json, void (*emit)(void *ctx, const char *fmt, ...), void *ctx_)
{
    vp_report_begin(json, emit, ctx_, "stream");
    int first = 1;
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        if (!atomic_load(&ss[d].streamed_peak)) continue;
        vp_report_device(json, emit, ctx_, first, d);
#define VP_X(name, doc) vp_report_field(json, emit, ctx_, #name, atomic_load(&ss[d].name));
        VP_STREAM_STATS(VP_X)
#undef VP_X
        vp_apool_report(json, emit, ctx_, d);
        vp_report_device_end(json, emit, ctx_);
        first = 0;
    }
    vp_report_end(json, emit, ctx_);
}

void vp_stream_shutdown(void)
{
    vp_pager_thread_stop(&pt);
    vp_pool_stop(&pool);
}

void vp_stream_lock(void)
{
    pthread_mutex_lock(&pt.mu);
    pthread_mutex_lock(&ring_mu);
}

void vp_stream_unlock(void)
{
    pthread_mutex_unlock(&ring_mu);
    pthread_mutex_unlock(&pt.mu);
}

void vp_stream_reset_child(void)
{
    vp_pager_thread_reset_child(&pt);
    vp_pool_reset_child(&pool);
    pthread_mutex_init(&ring_mu, NULL);
    vp_rangetab_forget(&tab);
    moving_any = global_pending = eager_map = 0;
    all_serial = 0;
    memset(free_slots, 0, sizeof free_slots);
    memset(ring_ev, 0, sizeof ring_ev);
    memset(ring_serial, 0, sizeof ring_serial);
    memset(ctx, 0, sizeof ctx);
    memset(s_in, 0, sizeof s_in);
    memset(s_out, 0, sizeof s_out);
    memset(round_ev, 0, sizeof round_ev);
    memset(round_hbuf, 0, sizeof round_hbuf); /* the parent's pinned memory */
    memset(hash_fn, 0, sizeof hash_fn);
    memset(hash_tried, 0, sizeof hash_tried);
    memset(s_hash, 0, sizeof s_hash);
    holes = NULL; /* the parent's address ranges: not ours to hand out */
    nholes = capholes = 0;
    narenas = 0;
    ctx_dev = -1;
    op.n = op.on = op.all = 0;
    atomic_store(&nstream, 0);
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
#define VP_X(name, doc) atomic_store(&ss[d].name, 0);
        VP_STREAM_STATS(VP_X)
#undef VP_X
    }
}
