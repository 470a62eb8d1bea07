/* apool.h - stream-ordered allocations under paging: a caching allocator
 * over paged memory.
 *
 * Contract
 *   With VPAGE_PAGING=demand or stream, cuMemAllocAsync (and _ptsz) taking
 *   from a device's default pool (PyTorch's backend:cudaMallocAsync) is
 *   served from paged allocations (vp_pager()->alloc: managed or streamed
 *   memory, in host RAM under VPAGE_PAGED_LIMIT, its resident part under
 *   the cap), as the driver's pool serves it from device memory:
 *   - a request of at most VP_APOOL_SMALL bytes is rounded up to a power of
 *     two (at least VP_APOOL_MIN) and carved from a "segment", a paged
 *     allocation of VP_APOOL_SEGMENT bytes holding blocks of one size;
 *   - a larger one is rounded up to VP_APOOL_SEGMENT and is a paged
 *     allocation of its own.
 *   So the pager sees few allocations, and a kernel touching a block
 *   touches its segment or its own allocation (pager/stream.h), never more.
 *
 *   Blocks are cached, never freed one by one (a streamed free waits for
 *   the work on it and costs driver calls). cuMemFreeAsync puts a block in
 *   the cache with the stream it was freed on and an event recorded there.
 *   A later request of the same rounded size on that stream takes it at
 *   once (stream order covers it); on another stream only once its event
 *   has completed; else a new block is made. Per-thread default streams
 *   are never taken for "that stream". A block freed while its stream is
 *   being captured has no event that means anything, and the captured
 *   graph may use it at any launch: it is held, never reused nor given
 *   back (stat async_held).
 *   The cache gives its paged memory back (a large block, or a segment
 *   whose blocks are all free; their work completed) at cuMemPoolTrimTo on
 *   the device's default pool (PyTorch's empty_cache, and its retry after
 *   an out-of-memory), and when a paged allocation is refused (the paged
 *   limit): then the request is tried once more.
 *
 *   Not here, still the driver's and counted as before (core/mem.h):
 *   cuMemAllocFromPoolAsync, any pool made current with cuDeviceSetMemPool,
 *   allocations made while a stream is captured (graph memory).
 *
 *   Locks: one mutex, after the pools' map in the lock order and before
 *   the pager's (core/init.c); never held across a driver call or a
 *   call into the pager.
 */
#ifndef VPAGE_PAGER_APOOL_H
#define VPAGE_PAGER_APOOL_H

#include <stdint.h>

#include "../common/hooks.h"
#include "../common/vp.h"

#define VP_APOOL_MIN 512u
#define VP_APOOL_SMALL (1u << 20)
#define VP_APOOL_SEGMENT (2u << 20)

/* cuMemAllocAsync on dev under paging (the caller checked the pool is the
 * default one and the stream is not being captured). ptsz: the call came
 * through a per-thread-stream symbol. CUDA_ERROR_NOT_SUPPORTED asks the
 * caller for the driver's pool instead. */
CUresult vp_apool_alloc(int dev, CUdeviceptr *dptr, size_t bytes, CUstream stream, int ptsz);

/* If dptr is a block of the cache: puts it back (see above), sets *bytes
 * to what was asked for it, returns 1. Else 0. */
int vp_apool_free(CUdeviceptr dptr, CUstream stream, int ptsz, uint64_t *bytes);

/* Gives back every cached block of dev whose work completed (waiting for
 * it) and every segment left with no block in use. */
void vp_apool_trim(int dev);

/* Bytes of dev's cache: in use (asked for; used) or held as paged memory
 * (reserved), now or at their high mark (high). */
uint64_t vp_apool_bytes(int dev, int used, int high);
/* Resets a high mark of dev's cache (used, else reserved) to its current value. */
void vp_apool_reset_high(int dev, int used);

/* The cache's fields of dev in the paging report (pager/shared.h emitter). */
void vp_apool_report(int json, vp_emit_fn emit, void *ctx, int dev);

void vp_apool_lock(void);
void vp_apool_unlock(void);
void vp_apool_reset_child(void);

#endif
