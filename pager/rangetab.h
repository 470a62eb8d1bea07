/* rangetab.h - what the two pagers (paging.c, stream.c) share: a table of
 * address ranges sorted by start, atomic gauges, the paged limit, the
 * stats report's lines, a timed wait.
 *
 * Contract (the table)
 *   Maps disjoint ranges [base, base + size) to an owner pointer. Owns its
 *   array (malloc); the owners are the caller's. No lock: the caller holds
 *   its own around every call. Lookup is a binary search; insert and remove
 *   move the tail (the pagers' tables hold hundreds of allocations, changed
 *   rarely, looked up at every launch).
 */
#ifndef VPAGE_PAGER_RANGETAB_H
#define VPAGE_PAGER_RANGETAB_H

#include <stddef.h>
#include <stdint.h>

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

/* Atomic gauges: raises *g to v (up) or lowers it to v (!up) if v is past it. */
#include <stdatomic.h>
void vp_gauge_move(atomic_uint_fast64_t *g, uint64_t v, int up);

/* Most bytes of paged allocations per device: VPAGE_PAGED_LIMIT, or the
 * host's RAM when it is 0. */
uint64_t vp_paged_limit(void);

/* The stats report of a pager: vp_report_begin, then per device
 * vp_report_device and vp_report_field for each counter, vp_report_end.
 * JSON or table lines, through emit. */
typedef void (*vp_emit_fn)(void *ctx, const char *fmt, ...);
void vp_report_begin(int json, vp_emit_fn emit, void *ctx, const char *mode);
void vp_report_device(int json, vp_emit_fn emit, void *ctx, int first, int dev);
void vp_report_field(int json, vp_emit_fn emit, void *ctx, const char *name, uint64_t v);
void vp_report_device_end(int json, vp_emit_fn emit, void *ctx);
void vp_report_end(int json, vp_emit_fn emit, void *ctx);

/* pthread_cond_timedwait for ns nanoseconds from now. */
#include <pthread.h>
void vp_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns);

#endif
