/* internal.h - what the files of the demand pager share: its terms, its
 * state and the functions one file offers another.
 *
 * Glossary (pager/demand.h has the contract)
 *   paged     a paged allocation: managed memory at home on the host,
 *             cut into chunks of VPAGE_CHUNK bytes from its start.
 *   chunk     the unit the pager prefetches to the device and evicts.
 *   request   a chunk a launch touched while on the host, queued for the
 *             pager thread.
 *   tick      the count of launches that used paged memory: the policy's
 *             clock (policy/demand.h).
 *
 * Which file owns what
 *   thread.c  the pager thread: requests served (room made by eviction,
 *             chunks let in), reclaims, the device's own view of its room
 *   alloc.c   allocations, frees, launches, the report, fork; the ops table
 *
 * Locks: dp.pt.mu ("mu") guards everything not marked otherwise.
 */
#ifndef VPAGE_PAGER_DEMAND_INTERNAL_H
#define VPAGE_PAGER_DEMAND_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "../../common/hooks.h"
#include "../../common/log.h"
#include "../../common/options.h"
#include "../../common/vp.h"
#include "../../policy/demand.h"
#include "../pager.h"
#include "../shared.h"

enum chunk_state { C_HOST, C_QUEUED, C_IN, C_OUT };

struct chunk {
    uint64_t last_use; /* launch tick of the latest use */
    uint64_t prev_use; /* and of the one before (0: none) */
    uint8_t state;     /* enum chunk_state */
    uint8_t dup;       /* resident as a read-mostly duplicate (pager thread only) */
    uint8_t warm;      /* was resident: the UVM driver may still hold its device memory */
};

struct paged {
    CUdeviceptr base;
    uint64_t size;
    int dev;
    int busy;          /* chunks of it in the pager thread's hands */
    int gone;          /* being freed */
    uint32_t nchunks;
    struct chunk ch[];
};

struct req {
    struct paged *p;   /* NULL: purged by a free */
    uint32_t ci;
};

/* Per-device counters for the stats dump. */
#define VP_PAGE_STATS(X)                                                             \
    X(paged, "bytes of paged allocations now")                                        \
    X(paged_peak, "most bytes of paged allocations at once")                          \
    X(bytes_in, "bytes prefetched to the device")                                     \
    X(bytes_writeback, "bytes evicted by copying back to the host")                   \
    X(bytes_collapsed, "bytes evicted by dropping a read-mostly duplicate")           \
    X(evictions, "chunks evicted")                                                    \
    X(prefetch_calls, "prefetch calls issued to the driver")                          \
    X(remote_estimate, "bytes of chunks launches touched while not resident (read remotely, at most)") \
    X(queue_drops, "chunks not queued because the queue was full")                   \
    X(reclaims, "times unpageable memory took room from resident chunks")             \
    X(refused, "paged allocations refused (VPAGE_PAGED_LIMIT)")                       \
    X(driver_errors, "prefetch or advice calls the driver refused")                  \
    X(unbooked_peak, "most device bytes in use beyond vpage's books (the UVM driver keeps memory of evicted chunks); they shrink the room") \
    X(evictions_stopped, "1 when the pager does not evict on this device: the card is larger than the cap, or an eviction gave no memory back (chunks are then placed once, hot ones first)")

struct page_stats {
#define VP_X(name, doc) atomic_uint_fast64_t name;
    VP_PAGE_STATS(VP_X)
#undef VP_X
};

#define QCAP 8192

/* The demand pager's state: one, dp. */
struct demand_pager {
    struct vp_pager_thread pt; /* its thread and its lock, mu */
    struct vp_allocs allocs;   /* the paged allocations, by base */
    size_t qhead, qlen;
    uint64_t tick;

    /* lock-free */
    atomic_schar can_page[VP_MAX_DEVICES]; /* 0 unknown, 1 yes, -1 no */
    struct page_stats ps[VP_MAX_DEVICES];
    atomic_uint_fast64_t msgs_driver;
    _Atomic(CUstream) alloc_stream[VP_MAX_DEVICES]; /* for placing new allocations */

    /* the pager thread's alone */
    CUcontext ctx[VP_MAX_DEVICES];
    CUstream stream[VP_MAX_DEVICES];
    int ctx_dev;
    uint64_t start_used[VP_MAX_DEVICES], start_counted[VP_MAX_DEVICES];
    int have_start[VP_MAX_DEVICES];
    int keeps[VP_MAX_DEVICES]; /* evicting gives this device no memory back */
};

extern struct demand_pager dp;
extern struct req queue[QCAP]; /* requests for the pager thread (mu); zero at start, apart from dp's data */

static inline CUdeviceptr chunk_addr(const struct paged *p, uint32_t ci) { return p->base + (uint64_t)ci * vp_opt.chunk; }
static inline uint64_t chunk_bytes(const struct paged *p, uint32_t ci)
{
    uint64_t off = (uint64_t)ci * vp_opt.chunk;
    return p->size - off < vp_opt.chunk ? p->size - off : vp_opt.chunk;
}
static inline void count(atomic_uint_fast64_t *c, uint64_t v) { atomic_fetch_add_explicit(c, v, memory_order_relaxed); }
#define TAB(i) ((struct paged *)dp.allocs.tab.r[i].owner)
static inline struct paged *find_locked(CUdeviceptr a) { return vp_rangetab_find(&dp.allocs.tab, a); }
static inline void driver_error(const char *what, CUresult rc, int dev)
{
    count(&dp.ps[dev].driver_errors, 1);
    vp_log_limited(VP_WARN, &dp.msgs_driver, "pager: %s on device %d failed (CUresult %d); the data stays correct, "
                   "it is read from the host instead", what, dev, (int)rc);
}

/* thread.c */
int demand_start_locked(void); /* starts the pager thread once (mu held) */
/* Managed-memory advice for dev. */
CUresult demand_advise(CUdeviceptr a, uint64_t n, CUmem_advise what, int dev);

#endif
