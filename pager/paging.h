/* paging.h - paged device memory: managed backing, residency under the cap.
 *
 * Contract
 *   With VPAGE_PAGING=demand, cuMemAlloc_v2 allocations are paged: the
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
 *   first (vp_pager_reclaim).
 *
 *   Chunk states:  HOST --launch wants it--> QUEUED --room reserved,
 *   prefetch issued--> IN --eviction issued--> OUT --completed--> HOST.
 *   A launch that finds no room leaves its chunks on the host (remote).
 *
 *   Threads: the launching thread only looks pointers up and queues chunks
 *   (vp_pager_launch: no driver call, one short lock). One pager thread,
 *   started at the first paged allocation, issues every prefetch, advice
 *   and eviction, on a stream of its own per device. It does nothing while
 *   a stream capture is in progress (capture-unsafe calls from another
 *   thread would invalidate a global-mode capture).
 *   Locks: one mutex for the pager's state, never held across a driver
 *   call; it is the last in the lock order (common/init.c).
 *
 *   Eviction: chunks that are clean copies of weight-file bytes
 *   (pager/weights.h) are made resident as read-mostly duplicates and leave
 *   by dropping the duplicate (VPAGE_CLEAN_EVICT=collapse), then a
 *   prefetch to the host that moves only pages written since; all others
 *   are prefetched back to the host (write-back).
 *
 *   The device's own view: the UVM driver keeps the device memory of pages
 *   that left the GPU until the allocation is freed (bench/probes). The
 *   pager takes device growth its books do not explain off the room, and
 *   does not evict on a card more than 1.25 times the cap, or once an
 *   eviction gave nothing back: chunks are then placed once
 *   (vp_policy_place).
 */
#ifndef VPAGE_PAGER_PAGING_H
#define VPAGE_PAGER_PAGING_H

#include <stdint.h>

#include "../interpose/hooks.h"
#include "account.h"
#include "../interpose/registry.h"

/* True when VPAGE_PAGING asks for paging (demand or stream; stream
 * allocations are handed to pager/stream.h). */
int vp_paging_on(void);

/* A paged allocation, for cuMemAlloc_v2 under paging (hook: that entry
 * point's stats are kept here, and a refusal names it) or for the
 * stream-ordered cache (VP_HOOK_cuMemAllocAsync: pager/apool.h keeps its
 * own stats; VP_HOOK_COUNT: the same, and a refusal by the paged limit is
 * not said). Returns the driver's or vpage's result; a device that cannot
 * page (no concurrent managed access) gets a plain allocation from the
 * caller instead: CUDA_ERROR_NOT_SUPPORTED asks for that. */
CUresult vp_pager_alloc(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes);

/* If dptr is a paged allocation: frees it, sets *rc, returns 1. Else 0.
 * hook: the one it was allocated for. */
int vp_pager_free(CUdeviceptr dptr, CUresult *rc, enum vp_hook_id hook);

/* True when p lies inside a paged allocation. */
int vp_pager_owns(CUdeviceptr p);

/* A kernel launch with its parameters (the kernelParams array, or the
 * packed buffer of CU_LAUNCH_PARAM_BUFFER_POINTER in extra), before it is
 * issued. Returns 1 when vp_pager_op_end must follow the launch (streamed
 * memory, pager/stream.h). */
int vp_pager_launch(struct vp_kernel *k, void **params, void **extra);

/* Around a copy or memset (ptrs: the device addresses it carries) or a
 * graph replay (all): see vp_stream_op_begin. */
int vp_pager_op_begin(const uint64_t *ptrs, size_t n, int all);
void vp_pager_op_end(CUstream stream, int per_thread);

/* Stream capture begun (+1) or ended (-1) somewhere in the process. */
void vp_pager_capture(int delta);

/* Makes room for bytes of unpageable memory of kind on dev by evicting
 * resident chunks, and reserves those bytes under the cap for the caller
 * before the pager can fill the room again. Returns 0 when they are
 * reserved, -1 when not (nothing to give, or not enough). */
int vp_pager_reclaim(int dev, enum vp_kind kind, uint64_t bytes);

/* Stats: a JSON object, or table lines. */
void vp_pager_report(int json, void (*emit)(void *ctx, const char *fmt, ...), void *ctx);

/* Stops the pager thread (at exit). */
void vp_pager_shutdown(void);

/* Fork: lock/unlock in the parent; the child forgets every paged
 * allocation (they were the parent's) and has no pager thread. */
void vp_pager_lock(void);
void vp_pager_unlock(void);
void vp_pager_reset_child(void);

#endif
