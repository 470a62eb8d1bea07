/* internal.h - what the files of the stream pager share: its terms, its
 * state and the functions one file offers another.
 *
 * Glossary (pager/stream.h has the contract)
 *   salloc    a streamed allocation: the program's address range (base),
 *             its home in host RAM (home, host-located physical memory
 *             mapped for the pager's copies), cut into pieces.
 *   piece     VPAGE_CHUNK bytes of a salloc (rounded to the driver's
 *             granularity); the unit that moves.
 *   slot      device memory of one piece's size, counted as kind
 *             "resident" from before its creation until after its release;
 *             a resident piece's address maps its slot.
 *   move      one piece coming in (copy home -> slot, remap to the slot) or
 *             going out (hash or copy back, remap to home or to nothing).
 *   round     the moves of one plan: their copies are issued, then waited
 *             for and remapped while the next round's copies run; its
 *             out-moves end first, before the next plan
 *             (VPAGE_STREAM_FREE_EARLY), its in-moves after that plan's
 *             copies are issued.
 *   fence     an operation of the program holds the allocations it touches
 *             (pending while it is issued, then its event on the ring until
 *             the device has run it): their pieces do not move meanwhile.
 *   tick      the count of operations that used streamed memory: the
 *             policy's clock (policy/stream.h).
 *
 *   Piece states:  HOST --planned in--> MOVING --copied, remapped--> DEV
 *                  DEV --planned out--> MOVING --hashed or copied back,
 *                  remapped--> HOST (bare: its address maps nothing)
 *   A bare HOST piece touched by an operation is mapped to its home by that
 *   operation's thread (MOVING meanwhile).
 *
 * Which file owns what
 *   ranges.c  the program's address ranges (arenas and holes)
 *   slots.c   slots: made, reused, given back
 *   fence.c   the program's operations: op_begin/op_end, the event ring,
 *             bare pieces mapped for an operation
 *   fit.c     the fit state: operations unfenced while all is resident
 *   plan.c    a plan: pins, the ranking (policy/stream.h), the moves
 *   moves.c   a round's copies, hashes and remaps
 *   premade.c host memory of pieces made ahead of the program's allocations
 *   thread.c  the pager thread: rounds, reclaims
 *   alloc.c   allocations, frees, the report, fork; the ops table
 *   check.c   the invariant checker (builds with -Dchecks=true)
 *
 * Locks: sp.pt.mu ("mu") guards everything not marked otherwise; the
 * ring's lock sp.ring_mu comes after it, and the trace's after both.
 */
#ifndef VPAGE_PAGER_STREAM_INTERNAL_H
#define VPAGE_PAGER_STREAM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "../../common/hooks.h"
#include "../../common/log.h"
#include "../../common/options.h"
#include "../../common/vp.h"
#include "../../policy/stream.h"
#include "../hash.h"
#include "../pager.h"
#include "../shared.h"

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
    uint32_t order;  /* of making, among streamed allocations (pager/record.h) */
    uint32_t npieces;
    struct piece pc[];
};

struct move {
    struct salloc *a;
    uint32_t i;
    int out; /* 0 in, 1 out, 2 out that failed (stays resident) */
    struct slot *slot;
    int failed;      /* remap */
    uint8_t hashing; /* its hash is being taken (partials at its index in the round's buffer) */
    uint8_t bare;    /* in: its address maps nothing now; out: it is left so */
    uint8_t early;   /* in: its address was mapped to its slot while its copy ran (VPAGE_STREAM_MAP_EARLY) */
    uint8_t have_hash, copied;
    uint64_t h[2];
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
    X(stale_left, "pieces a launch touched by a stale word alone (pager/replay.h), left on the host for it") \
    X(thin_left, "pieces a thin launch touched (pager/replay.h), left on the host for it") \
    X(bare_map_ns, "nanoseconds operations spent mapping host memory of pieces left unmapped")     \
    X(alloc_ns, "nanoseconds the program's allocations spent making streamed memory (host memory pinned, mapped)") \
    X(moves_in, "pieces brought in")                                                          \
    X(premade, "pieces whose host memory was made ahead of their allocation (VPAGE_STREAM_PREMADE)") \
    X(premade_dropped, "host memory of pieces made ahead and given back unused")                  \
    X(placed, "bytes of new allocations placed in device memory (VPAGE_STREAM_PLACE=device)") \
    X(moves_out, "pieces sent out")                                                           \
    X(pinned, "bytes of pieces pinned now (kept resident across the loop)")                    \
    X(slot_bytes, "device bytes of slots now (resident pieces and free slots)")               \
    X(remote_estimate, "bytes of pieces operations touched while not resident (read remotely, at most)") \
    X(waits, "operations that waited for a move")                                             \
    X(room_waits, "plans whose next piece to come in waited for room that pieces leaving still held (VPAGE_STREAM_RESERVE)") \
    X(wait_ns, "nanoseconds operations spent waiting for pieces and moves")                    \
    X(copy_ns, "nanoseconds the pager waited for its copies")                                  \
    X(unmap_ns, "nanoseconds the pager's threads spent unmapping and mapping pieces (summed)")  \
    X(unmap_calls, "unmap calls (neighbouring pieces moving together share one)")              \
    X(map_in_ns, "nanoseconds the pager's threads spent giving access to pieces in device memory (summed)") \
    X(mapped_early, "pieces coming in whose address was mapped to their slot while their copy ran (VPAGE_STREAM_MAP_EARLY)") \
    X(map_out_ns, "nanoseconds the pager's threads spent giving access to pieces back in host memory (summed)") \
    X(dropped_ahead, "bytes of pieces brought in ahead of use that left unused")               \
    X(rounds, "rounds of moves")                                                              \
    X(plans, "planning passes of the pager")                                                  \
    X(plan_ns, "nanoseconds the pager spent planning (the program's operations wait meanwhile)") \
    X(tmaps_known, "launches of a TMA descriptor whose address vpage saw it made for")        \
    X(tmaps_unknown, "launches of a 128-byte parameter taken for an unknown TMA descriptor")   \
    X(graph_over, "CUDA graph replays whose captured operations use more than the cap (the rest read over the bus)") \
    X(wait_timeouts, "operations that went ahead after waiting for pieces to come in")         \
    X(reclaims, "times unpageable memory took room from resident pieces")                    \
    X(refused, "streamed allocations refused (VPAGE_PAGED_LIMIT)")                            \
    X(driver_errors, "driver calls of the pager that failed")                               \
    X(fit_enters, "times everything streamed became resident and operations went unfenced (VPAGE_STREAM_FIT)") \
    X(fit_syncs, "device synchronisations after unfenced operations, before pieces could move again") \
    X(fit_sync_ns, "nanoseconds those synchronisations took")

struct stream_stats {
#define VP_X(name, doc) atomic_uint_fast64_t name;
    VP_STREAM_STATS(VP_X)
#undef VP_X
};

#define RING 4096
#define OPMAX 256
#define ROUND_BYTES (512ull << 20) /* most bytes moved each way per round */
#define ROUND_MOVES 512             /* most moves a round */
#define HSTRIDE (2 * VP_HASH_MAX_BLOCKS) /* partials of one move's hash, in u64 */

/* A round of moves: its copies are issued, then (next time round) waited
 * for and its remaps made, while the copies of the next round run. */
struct round {
    struct move m[ROUND_MOVES]; /* its out-moves first, nout of them */
    size_t n, nout;
    int dev, rc, live;
    int out_done; /* its out-moves were ended ahead of the rest (VPAGE_STREAM_FREE_EARLY) */
    CUevent ev[3];
    uint64_t *hbuf; /* the hashes' partials, HSTRIDE words a move (NULL: no hashing) */
};

struct hole {
    CUdeviceptr start;
    uint64_t len;
    int arena;
};

/* The stream pager's state: one, sp. */
struct stream_pager {
    struct vp_pager_thread pt; /* its thread and its lock, mu */
    struct vp_pool pool;       /* the helpers remaps run on */
    struct vp_allocs allocs;   /* the streamed allocations, by base */
    uint64_t tick;
    int moving_any;            /* rounds and bare maps under way */
    int global_pending;        /* operations on everything being issued */
    uint64_t all_serial;       /* the event of the latest of those, on all_dev */
    int all_dev;
    /* an operation touched every streamed allocation (a graph replay):
     * pieces leaving are mapped back at once from then on, since each such
     * operation would map every bare piece again */
    int eager_map;
    /* the last plan was held up by operations issued or in flight: their
     * ends wake the pager */
    int ops_block;
    int quiet;                 /* planning: the 'all' fence is clear (-1: not asked yet) */
    double pin_acc[VP_MAX_DEVICES];
    uint32_t pin_next;
    uint32_t next_order;       /* the next allocation's order */
    struct slot *free_slots[VP_MAX_DEVICES];
    struct hole *holes;        /* sorted by start */
    size_t nholes, capholes;
    int narenas;

    /* lock-free */
    struct stream_stats ss[VP_MAX_DEVICES];
    atomic_uint_fast64_t msgs_driver;

    pthread_mutex_t ring_mu; /* the event ring's (struct stream_ring) */

    /* the pager thread's alone */
    CUcontext ctx[VP_MAX_DEVICES];
    CUstream s_in[VP_MAX_DEVICES], s_out[VP_MAX_DEVICES];
    /* the hash kernel (pager/hash.h), its stream (high priority: it stands
     * between a touched piece and its leaving), loaded at first use */
    CUfunction hash_fn[VP_MAX_DEVICES];
    CUstream s_hash[VP_MAX_DEVICES];
    int hash_tried[VP_MAX_DEVICES];
    int ctx_dev;
    CUevent round_ev[VP_MAX_DEVICES][2][3];
    uint64_t *round_hbuf[2]; /* pinned host memory, for every device */
};

/* The event ring, under sp.ring_mu: one event per operation on streamed
 * memory, per device. Apart from sp, which has an initializer: these are
 * zero at start and stay out of the library's data (4 MiB). */
struct stream_ring {
    CUevent ev[VP_MAX_DEVICES][RING];
    uint64_t serial[VP_MAX_DEVICES][RING];
    uint64_t next[VP_MAX_DEVICES];
};

extern struct stream_pager sp;
extern struct stream_ring ring;
extern struct round rounds[2]; /* the pager thread's, in flight one at a time */

#define TAB(i) ((struct salloc *)sp.allocs.tab.r[i].owner)

/* ---- small things every file uses ---- */
static inline void count(atomic_uint_fast64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}
static inline void uncount(atomic_uint_fast64_t *c, uint64_t v)
{
    atomic_fetch_sub_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t round_up(uint64_t v, uint64_t g) { return (v + g - 1) / g * g; }
static inline uint64_t piece_off(const struct salloc *a, uint32_t i) { return (uint64_t)i * a->piece; }
static inline uint64_t piece_len(const struct salloc *a, uint32_t i)
{
    uint64_t off = piece_off(a, i);
    return a->span - off < a->piece ? a->span - off : a->piece;
}
static inline struct salloc *find_locked(CUdeviceptr a) { return vp_rangetab_find(&sp.allocs.tab, a); }
static inline int is_hot(const struct piece *p) { return vp_uses_hot(&p->u, sp.tick); }
/* Every piece of a in device memory. */
static inline int all_pieces_resident(const struct salloc *a)
{
    for (uint32_t k = 0; k < a->npieces; k++)
        if (a->pc[k].state != P_DEV) return 0;
    return 1;
}
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static inline void driver_error(const char *what, CUresult rc, int dev)
{
    count(&sp.ss[dev].driver_errors, 1);
    vp_log_limited(VP_WARN, &sp.msgs_driver, "stream: %s on device %d failed (CUresult %d)", what, dev, (int)rc);
}
/* Whether a piece leaving now is left bare (mu held). */
static inline int leave_bare_locked(void) { return vp_opt.stream_lazy_map && !sp.eager_map; }

/* ranges.c (mu not held) */
CUdeviceptr range_take(uint64_t span, uint64_t g, int *arena);
void range_give(CUdeviceptr start, uint64_t span, int arena);

/* slots.c */
struct slot *slot_get(int dev, uint64_t bytes);      /* mu not held; NULL: no room */
void slot_put_locked(int dev, struct slot *s);       /* onto dev's free list */
void give_slot(int dev, struct slot *s);             /* the same, taking mu */
void release_free_slots(int dev);                    /* mu not held */

/* fence.c */
int done(int dev, uint64_t serial);                   /* the operation's event completed */
void wait_done(int dev, uint64_t serial);
int settled_locked(const struct salloc *a);           /* no operation on a issued or in flight */
int all_settled_locked(void);                         /* nor one on everything */
int op_on_here(void);                                 /* this thread is issuing an operation */
int stream_op_begin(const struct vp_op *o);           /* the ops table's (pager/pager.h) */
void stream_op_end(CUstream stream, int per_thread);
void stream_capture(int delta);
void stream_fence_reset_child(void);

/* fit.c: the fit state (see there) */
int fit_begin(void);              /* an operation: 1 when it goes unfenced (fit_end must follow) */
int fit_end(void);                /* 1 when this thread's operation went unfenced */
int fit_here(void);               /* this thread is issuing an unfenced operation */
int fit_active(void);             /* operations go unfenced now */
uint64_t fit_ops(void);           /* operations that went unfenced */
void fit_try_enter_locked(void);  /* the pager thread, idle */
void fit_leave_locked(void);      /* something may have to move */
void fit_pager_turn_locked(void); /* the pager thread, before it plans: leaves and synchronises as needed */
void fit_quiet_locked(void);      /* a free: no unfenced work left before it */
void fit_reset_child(void);

/* plan.c (mu held) */
size_t plan_locked(int dev, struct move *m, size_t mmax, int *blocked); /* blocked: bits 1 fenced, 2 no room */

/* moves.c */
int use_device(int dev); /* makes dev current on the pager thread, with its streams; 0, or -1 */
int issue_copies(int dev, struct move *m, size_t n, CUevent ev[3], uint64_t *hbuf);
void remap(int dev, struct move *m, size_t n, CUevent ev[3], int rc, const uint64_t *hbuf, const char *what);
void make_moves(int dev, struct move *m, size_t n);
void finish_locked(int dev, struct move *m, size_t n);
void finish_moves_locked(int dev, struct move *m, size_t n); /* finish_locked, less the end of the round */
void map_ins_early(int dev, struct move *m, size_t n);      /* VPAGE_STREAM_MAP_EARLY (mu not held) */

/* premade.c: host memory of pieces made ahead (mu not held) */
void premade_want(int dev, uint64_t piece, uint64_t span); /* an allocation of span bytes in pieces of piece */
int premade_take(int dev, uint64_t len, CUmemGenericAllocationHandle *h); /* 1: *h is one */
void premade_stop(void);
void premade_lock(void); /* fork: after sp.pt.mu and the ring's */
void premade_unlock(void);
void premade_reset_child(void);

/* thread.c */
int stream_start_locked(void);                               /* starts the pager thread once (mu held) */
void round_flush_locked(struct round *r);             /* remaps and ends a round in flight (mu held) */

/* check.c: in builds with -Dchecks=true, checks the books of every piece,
 * slot and device (mu held) and stops the program on a fault; else
 * nothing. */
void stream_check_locked(const char *where);

#endif
