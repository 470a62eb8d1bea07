/* demand.h - the demand pager (VPAGE_PAGING=demand): managed memory,
 * residency under the cap.
 *
 * Contract
 *   vp_pager_demand (pager/pager.h). cuMemAlloc_v2 allocations are paged: the
 *   driver's managed memory, preferred location the host, mapped for the
 *   device (accessed-by). Host RAM holds them; the device reads what is not
 *   resident over the bus, so a late or wrong guess costs speed, never
 *   correctness. They count against VPAGE_PAGED_LIMIT, not the cap.
 *
 *   The pager alone makes bytes resident, a chunk (VPAGE_CHUNK bytes,
 *   aligned to the allocation's start) at a time. Resident bytes count
 *   against the cap as kind "resident": reserved *before* a chunk's
 *   prefetch is issued, released only *after* its eviction has completed,
 *   so counted bytes >= bytes the pager put on the device at every instant.
 *   cuMemAllocAsync from a device's default pool is paged too, through a
 *   cache of paged allocations (pager/apool.h). Memory that cannot be paged
 *   (other pools, VMM, arrays, graph memory) still counts in full; when it needs room the pager gives up resident chunks
 *   first (its reclaim).
 *
 *   Chunk states:  HOST --launch wants it--> QUEUED --room reserved,
 *   prefetch issued--> IN --eviction issued--> OUT --completed--> HOST.
 *   A launch that finds no room leaves its chunks on the host (remote).
 *
 *   Threads: the launching thread only looks pointers up and queues chunks
 *   (its op_begin: no driver call, one short lock). One pager thread,
 *   started at the first paged allocation, issues every prefetch, advice
 *   and eviction, on a stream of its own per device. It does nothing while
 *   a stream capture is in progress (capture-unsafe calls from another
 *   thread would invalidate a global-mode capture).
 *   Locks: one mutex for the pager's state, never held across a driver
 *   call; it is the last in the lock order (core/init.c).
 *
 *   Eviction: chunks that are clean copies of weight-file bytes
 *   (books/weights.h) are made resident as read-mostly duplicates and leave
 *   by dropping the duplicate (VPAGE_CLEAN_EVICT=collapse), then a
 *   prefetch to the host that moves only pages written since; all others
 *   are prefetched back to the host (write-back).
 *
 *   The device's own view: the UVM driver keeps the device memory of pages
 *   that left the GPU until the allocation is freed (bench/probes). The
 *   pager takes device growth its books do not explain off the room, and
 *   does not evict on a card more than 1.25 times the cap, or once an
 *   eviction gave nothing back: chunks are then placed once
 *   (vp_policy_admit, policy/demand.h).
 */
#ifndef VPAGE_PAGER_DEMAND_H
#define VPAGE_PAGER_DEMAND_H

#include "pager.h"

extern const struct vp_pager_ops vp_pager_demand;

#endif
