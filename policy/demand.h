/* demand.h - the demand-paging policy: what a launch wants resident, what
 * is let in, and what leaves the device first.
 *
 * Contract
 *   Pure functions over values the pager hands in: no locks, no driver
 *   calls, no state. The pager (pager/demand.h) owns the chunks and acts;
 *   these only choose. A learned policy replaces them behind the same calls.
 *
 *   Demand range: a kernel parameter gives a pointer, not an extent. A
 *   pointer at byte off of an allocation of size bytes is taken to touch the
 *   chunks from the one holding off to the end of the allocation, at most
 *   `most` bytes of them (at least the chunk holding off).
 *
 *   Next use: time is the pager's launch tick. A chunk used at ticks prev
 *   and last is expected again at last + (last - prev): programs that run
 *   in steps (denoising, decoding) touch weights once a step and
 *   activations many times a step. A chunk used once has no estimate
 *   (VP_NEXT_UNKNOWN); one more than an interval overdue is stale
 *   (VP_NEXT_STALE, the latest of all).
 *
 *   Plans (VPAGE_POLICY): lru lets every request in, evicting the least
 *   recently used chunks (measured faster on the Wan DiT, whose kernels
 *   re-read what they use: remote reads cost more than moving it);
 *   loop is an approximation of Belady's rule. Requests are let in in order of
 *   next use; a request that finds no room may evict resident chunks whose
 *   next use is later than its own, latest first, and is refused if that is
 *   not enough (it is then read from the host where it is). So a loop over
 *   more data than the cap keeps a stable part resident instead of
 *   evicting, every step, exactly what the next launches need (what LRU
 *   does).
 */
#ifndef VPAGE_POLICY_DEMAND_H
#define VPAGE_POLICY_DEMAND_H

#include <stddef.h>
#include <stdint.h>

#define VP_NEXT_UNKNOWN (UINT64_MAX - 1)
#define VP_NEXT_STALE UINT64_MAX

/* The most bytes a pointer is taken to touch on a device with cap bytes
 * (UINT64_MAX, VP_NO_CAP: none): a quarter of the cap, or no limit. Both
 * pagers. */
uint64_t vp_policy_touch_most(uint64_t cap);

/* Chunk indices [*first, *first + *count) of an allocation of size bytes
 * cut into chunk-byte pieces from its start. off < size, chunk > 0. */
void vp_policy_demand_range(uint64_t size, uint64_t off, uint64_t chunk, uint64_t most, uint64_t *first,
                            uint64_t *count);

/* Expected tick of the next use of a chunk last used at ticks prev, last
 * (prev 0: used once), seen at tick now. */
uint64_t vp_policy_next_use(uint64_t prev, uint64_t last, uint64_t now);

enum vp_policy_kind {
    VP_POLICY_LRU,  /* every request is let in; least recently used leave first */
    VP_POLICY_LOOP, /* the next-use rule above */
};

struct vp_cand {
    uint64_t next;  /* vp_policy_next_use */
    uint64_t last;  /* tick of the latest use */
    uint64_t bytes;
    void *ref;      /* the pager's handle on the chunk */
    int admit;      /* requests: set by vp_policy_plan */
};

/* Requests r[0..nr) and evictable resident chunks v[0..nv) of one device,
 * with room bytes free under its cap. Reorders both, sets r[i].admit, and
 * returns k: evict v[0..k) to make room for the admitted requests. */
size_t vp_policy_plan(enum vp_policy_kind kind, struct vp_cand *r, size_t nr, struct vp_cand *v, size_t nv,
                      uint64_t room);

/* Static placement, for a device that keeps the memory of evicted chunks
 * (the UVM driver on a card larger than the cap): a chunk let in stays, so
 * it is let in only if it fits the room and, unless it is in hot use (its
 * last two uses at most VP_HOT_GAP launches apart: activations and
 * workspaces, not weights used once a step), only while half the cap stays
 * free for chunks that are. Returns 1 to let it in. */
#define VP_HOT_GAP 256
int vp_policy_place(uint64_t prev, uint64_t last, uint64_t bytes, uint64_t room, uint64_t cap);

/* Whether the device keeps the memory of evicted chunks, judged at the
 * pager's first look: a card of total bytes more than 1.25 times the cap
 * (the UVM driver then keeps each chunk's device memory once it was
 * resident: bench/probes/uvm_keep.c). Chunks are then placed once. */
int vp_policy_keeps_memory(uint64_t total, uint64_t cap);

/* Whether an eviction that freed freed bytes by the books (room before
 * and after it, as the device tells) gave the device nothing back: less
 * than half of them showed up. The pager then stops evicting there. */
int vp_policy_eviction_futile(uint64_t room_before, uint64_t room_after, uint64_t freed);

/* A requested chunk as the pager sees it when letting it in. */
struct vp_chunk_view {
    uint64_t prev, last; /* ticks of its last two uses (prev 0: one use) */
    uint64_t bytes;
    int warm;            /* was resident before */
    int admitted;        /* vp_policy_plan admitted it */
};

enum vp_admit {
    VP_ADMIT_NO,   /* it stays on the host, read from there */
    VP_ADMIT_ROOM, /* it comes in and takes room */
    VP_ADMIT_FREE, /* it comes back into memory the driver kept for it */
};

/* Whether a requested chunk comes in, on a device with room bytes free
 * under cap whose evicted memory stays (keeps, vp_policy_keeps_memory) or
 * not. */
enum vp_admit vp_policy_admit(const struct vp_chunk_view *c, int keeps, uint64_t room, uint64_t cap);

/* Reorders v[0..n) in the kind's eviction order and returns how many of
 * them free at least need bytes (all n if they cannot). */
size_t vp_policy_victims(enum vp_policy_kind kind, struct vp_cand *v, size_t n, uint64_t need);

#endif
