/* account.h - counted device bytes per device, and the cap.
 *
 * Contract
 *   Owns, per device, the total of counted bytes and one gauge per kind of
 *   memory (VP_MEM_KINDS), each with its peak. The cap of a device is
 *   vp_cap_of(dev) (common/options.h).
 *
 *   Invariant: total(dev) <= cap(dev) at every instant for bytes added with
 *   vp_acct_reserve. A reservation is one compare-and-swap on the total, so
 *   concurrent reservations never pass the cap together, and no lock is held
 *   across the driver call that follows it. vp_acct_force adds bytes without
 *   checking (for memory that the driver already holds, such as a pool that
 *   grew by more than asked); the caller then brings the total back under the
 *   cap or reports why it could not.
 *   Totals are unsigned and never wrap: a release larger than the gauge is a
 *   bug, reported once and clamped to zero.
 *
 *   Lock-free (C11 atomics); safe from any thread and after fork.
 */
#ifndef VPAGE_PAGER_ACCOUNT_H
#define VPAGE_PAGER_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

/*  X(kind, description) */
#define VP_MEM_KINDS(X)                                                 \
    X(alloc, "cuMemAlloc, cuMemAllocPitch")                              \
    X(pool, "stream-ordered pools, reserved bytes")                      \
    X(vmm, "cuMemCreate, device-located")                                \
    X(managed, "cuMemAllocManaged")                                      \
    X(array, "CUDA arrays")                                              \
    X(graph, "graph memory nodes, reserved bytes")                       \
    X(resident, "paged memory the pager made resident")

enum vp_kind {
#define VP_X(kind, desc) VP_KIND_##kind,
    VP_MEM_KINDS(VP_X)
#undef VP_X
    VP_KIND_COUNT
};

struct vp_gauge_view {
    uint64_t cur, peak;
};

/* Adds bytes to dev's total if total + bytes <= cap. Returns 0 on success,
 * -1 when the cap would be passed (nothing is added). dev must be in range. */
int vp_acct_reserve(int dev, enum vp_kind kind, uint64_t bytes);

/* Adds bytes with no cap check (see contract). */
void vp_acct_force(int dev, enum vp_kind kind, uint64_t bytes);

/* Removes bytes added before. */
void vp_acct_release(int dev, enum vp_kind kind, uint64_t bytes);

/* Reads. kind == VP_KIND_COUNT reads the total. */
struct vp_gauge_view vp_acct_get(int dev, enum vp_kind kind);

/* Room under dev's cap: the cap less every counted byte (0 when past
 * it), VP_NO_CAP when dev has no cap. The one place that says it. */
uint64_t vp_acct_room(int dev);

/* What the pager may hold resident on dev: the cap less every counted
 * byte that is not kind resident, VP_NO_CAP when dev has no cap. */
uint64_t vp_acct_budget(int dev);

/* Highest device ordinal that ever held counted bytes, -1 if none. */
int vp_acct_max_device(void);

/* Kind names for stats ("alloc", ...) and descriptions. */
const char *vp_kind_name(enum vp_kind kind);
const char *vp_kind_desc(enum vp_kind kind);

/* Forgets every count (in a child after fork: the parent's device memory is
 * not the child's). */
void vp_acct_reset(void);

#endif
