/* shared.h - what the two pagers (demand.c, stream/) share: a table of
 * address ranges sorted by start, the skeleton of a pager thread, atomic
 * gauges, the paged limit, the stats report's lines, a timed wait.
 *
 * Contract (the table)
 *   Maps disjoint ranges [base, base + size) to an owner pointer. Owns its
 *   array (malloc); the owners are the caller's. No lock: the caller holds
 *   its own around every call. Lookup is a binary search; insert and remove
 *   move the tail (the pagers' tables hold hundreds of allocations, changed
 *   rarely, looked up at every launch).
 */
#ifndef VPAGE_PAGER_SHARED_H
#define VPAGE_PAGER_SHARED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/hooks.h"
#include "../common/vp.h"

struct vp_range {
    uint64_t base, size;
    void *owner;
};

struct vp_rangetab {
    struct vp_range *r; /* n of them, by base */
    size_t n, cap;
};

/* The owner of the range holding a, or NULL. */
void *vp_rangetab_find(const struct vp_rangetab *t, uint64_t a);

/* Adds a range (disjoint from the others). Returns 0, or -1 when out of
 * host memory (nothing is added). */
int vp_rangetab_insert(struct vp_rangetab *t, uint64_t base, uint64_t size, void *owner);

/* Removes the range that starts at base, if any. */
void vp_rangetab_remove(struct vp_rangetab *t, uint64_t base);

/* Forgets every range without freeing (a child after fork: the array may be
 * the parent's, in the middle of a change). */
void vp_rangetab_forget(struct vp_rangetab *t);

/* The allocations of a pager: their table (under the pager's mutex), and
 * their count and span, read without a lock (the launch hook's fast way
 * out). */
struct vp_allocs {
    struct vp_rangetab tab;
    atomic_int n;
    atomic_uint_fast64_t lo, hi;
};
#define VP_ALLOCS_INIT {.lo = UINT64_MAX}

/* [*lo, *hi) covers every allocation; 0 when there is none. */
int vp_allocs_span(struct vp_allocs *s, uint64_t *lo, uint64_t *hi);

/* True when a lies in one of them (takes mu). */
int vp_allocs_owns(struct vp_allocs *s, pthread_mutex_t *mu, uint64_t a);

/* Adds [base, base + size) to the table (mu held). Returns 0, or -1 when
 * out of host memory (nothing added). */
int vp_allocs_insert_locked(struct vp_allocs *s, uint64_t base, uint64_t size, void *owner);

/* Takes the one at base out of the table (mu held); it stops counting. The
 * span only grows: an address past every allocation costs a lookup. */
void vp_allocs_remove_locked(struct vp_allocs *s, uint64_t base);

/* The child after fork: none are its own. */
void vp_allocs_forget(struct vp_allocs *s);

/* Atomic gauges: raises *g to v (up) or lowers it to v (!up) if v is past it. */
void vp_gauge_move(atomic_uint_fast64_t *g, uint64_t v, int up);

/* Most bytes of paged allocations per device: VPAGE_PAGED_LIMIT, or the
 * host's RAM when it is 0. */
uint64_t vp_paged_limit(void);

/* Takes bytes of the paged limit: adds them to *paged, unless that would
 * pass the limit; then counts the refusal in *refused and says why, naming
 * hook's entry point and dev (hook VP_HOOK_COUNT: a quiet try, neither
 * counted nor said). Returns 0, or -1 when refused. */
int vp_paged_take(atomic_uint_fast64_t *paged, uint64_t bytes, int dev, enum vp_hook_id hook,
                  atomic_uint_fast64_t *refused);

/* The stats report of a pager: vp_report_begin, then per device
 * vp_report_device and vp_report_field for each counter, vp_report_end.
 * JSON or table lines, through emit. */
void vp_report_begin(int json, vp_emit_fn emit, void *ctx, const char *mode);
void vp_report_device(int json, vp_emit_fn emit, void *ctx, int first, int dev);
void vp_report_field(int json, vp_emit_fn emit, void *ctx, const char *name, uint64_t v);
void vp_report_device_end(int json, vp_emit_fn emit, void *ctx);
void vp_report_end(int json, vp_emit_fn emit, void *ctx);

/* pthread_cond_timedwait for ns nanoseconds from now. */
void vp_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns);

/* A pager thread: its mutex (the pager's only lock, last in the lock
 * order), the condition it waits for work on and the one others wait for
 * its work on, whether it runs, the room asked of it for unpageable memory
 * (reclaim_want, per device, and the callers waiting for it), and
 * how many stream captures are in progress (nothing moves meanwhile). The
 * pager owns what its mutex protects; these calls only start, stop and
 * talk to the thread. */
struct vp_reclaim_req; /* a caller of vp_pager_thread_reclaim, waiting */
struct vp_pager_thread {
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    pthread_t thread;
    int started, stopping;
    uint64_t reclaim_want[VP_MAX_DEVICES];
    struct vp_reclaim_req *reqs;
    atomic_int capturing;
};
#define VP_PAGER_THREAD_INIT {.mu = PTHREAD_MUTEX_INITIALIZER, .work_cv = PTHREAD_COND_INITIALIZER, \
                              .done_cv = PTHREAD_COND_INITIALIZER}

/* Starts fn as the thread named name, once (mu held). Returns 0, or -1
 * after logging fail. */
int vp_pager_thread_start_locked(struct vp_pager_thread *t, void *(*fn)(void *), const char *name, const char *fail);

/* First call of a pager thread: blocks every signal (they are the
 * program's), and puts the thread in relaxed stream-capture mode, so its
 * synchronisations neither fail nor invalidate a capture the program makes
 * in global mode meanwhile (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED broke a
 * PyTorch graph capture on the H100). */
void vp_pager_thread_enter(void);

/* Stops the thread and waits for it (mu not held). */
void vp_pager_thread_stop(struct vp_pager_thread *t);

/* A stream capture begun (+1) or ended (-1); the thread is woken when the
 * last one ends. */
void vp_pager_thread_capture(struct vp_pager_thread *t, int delta);

/* Asks the thread for bytes of room on dev and waits for its next reclaim
 * pass (mu not held). At the end of that pass, before the thread can fill
 * the room again, the bytes are reserved under the cap as kind for the
 * caller (vp_acct_reserve). Returns 0 when they were, -1 if not or if
 * nothing can be asked (no resident bytes, a capture in progress, the
 * thread not running). */
int vp_pager_thread_reclaim(struct vp_pager_thread *t, int dev, int kind, uint64_t bytes);

/* True when a reclaim is asked of the thread (mu held). */
int vp_pager_thread_reclaim_asked_locked(const struct vp_pager_thread *t);

/* Ends a reclaim pass: makes the reservations of the callers of
 * vp_pager_thread_reclaim and wakes them (mu held). */
void vp_pager_thread_reclaimed_locked(struct vp_pager_thread *t);

/* The child after fork: the parent's thread is not here; the mutex,
 * held by the fork handler, is made anew. */
void vp_pager_thread_reset_child(struct vp_pager_thread *t);

#include "pool.h"

#endif
