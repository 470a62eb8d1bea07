/* demand.h - the demand-paging policy: what a launch wants resident, and
 * what leaves the device first.
 *
 * Contract
 *   Pure functions over values the pager hands in: no locks, no driver
 *   calls, no state. The pager (pager/paging.h) owns the chunks and acts;
 *   these only choose. A later learned policy replaces them behind the same
 *   calls.
 *
 *   Demand range: a kernel parameter gives a pointer, not an extent. A
 *   pointer at byte off of an allocation of size bytes is taken to touch the
 *   chunks from the one holding off to the end of the allocation, at most
 *   `most` bytes of them (at least the chunk holding off).
 *
 *   Victims: least recently used first. Chunks used at or after `protect`
 *   (the launch that asked for room) are never chosen, so a launch never
 *   evicts what it itself wants.
 */
#ifndef VPAGE_POLICY_DEMAND_H
#define VPAGE_POLICY_DEMAND_H

#include <stddef.h>
#include <stdint.h>

/* Chunk indices [*first, *first + *count) of an allocation of size bytes
 * cut into chunk-byte pieces from its start. off < size, chunk > 0. */
void vp_policy_demand_range(uint64_t size, uint64_t off, uint64_t chunk, uint64_t most, uint64_t *first,
                            uint64_t *count);

struct vp_victim {
    uint64_t last_use; /* launch tick of the chunk's last use */
    uint64_t bytes;
    void *ref;         /* the pager's handle on the chunk */
};

/* Reorders c[0..n) so that the chunks to evict come first, and returns how
 * many of them free at least need bytes; fewer (all that may go) when
 * protected chunks keep the total short of need. */
size_t vp_policy_victims(struct vp_victim *c, size_t n, uint64_t need, uint64_t protect);

#endif
