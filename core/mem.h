/* mem.h - device allocations under the cap.
 *
 * Contract
 *   One function per allocation family; each is what the matching shim
 *   does, with the hook id telling which exported symbol (and so which real
 *   function) was called. Each one:
 *     1. finds the device (current context, or the VMM location) and the
 *        bytes the driver will hold, estimated before the call where the
 *        driver rounds (pitch, arrays, pool growth);
 *     2. reserves them (books/account.h); if the cap would be passed it
 *        returns CUDA_ERROR_OUT_OF_MEMORY without calling the driver and
 *        prints why (at most VPAGE_WARN_MAX times);
 *     3. calls the real function with no vpage lock held;
 *     4. on success records what was counted (books/ptrmap.h) and corrects
 *        the estimate to what the driver reports; on failure gives the
 *        reservation back.
 *   cuMemAlloc_v2 goes to the pager first (vp_pager()->alloc, pager/pager.h):
 *   under VPAGE_PAGING it is paged memory, counted as its resident part;
 *   where the pager does not page it, it is counted whole as above. When
 *   memory that cannot be paged needs room, the pager's reclaim gives up
 *   resident memory for it. The calls to the driver go through driver/.
 *   Frees take the record out before the driver call and restore it if the
 *   driver refuses. Pointers and handles vpage did not count (made before
 *   vpage was loaded, or on a device past VP_MAX_DEVICES) pass through.
 *
 *   Under VPAGE_PAGING, cuMemAllocAsync from the default pool is paged
 *   instead (pager/apool.h); its blocks are not the driver's and count
 *   nothing here. Other pools are counted by their reserved bytes
 *   (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), which is what the device holds,
 *   re-read after every pool operation and before refusing anything.
 *   VMM chunks count from cuMemCreate to cuMemRelease; mapping them costs
 *   no device memory.
 */
#ifndef VPAGE_CORE_MEM_H
#define VPAGE_CORE_MEM_H

#include "../common/hooks.h"

CUresult vp_mem_alloc(CUdeviceptr *dptr, size_t bytes);
CUresult vp_mem_alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int elem);
CUresult vp_mem_alloc_managed(CUdeviceptr *dptr, size_t bytes, unsigned int flags);
CUresult vp_mem_free(CUdeviceptr dptr);

/* pool == NULL: the device's current pool (cuMemAllocAsync). */
CUresult vp_mem_alloc_async(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                            CUstream stream);
CUresult vp_mem_free_async(enum vp_hook_id hook, CUdeviceptr dptr, CUstream stream);
CUresult vp_mem_pool_trim(CUmemoryPool pool, size_t keep);
/* cuMemPoolGetAttribute (set 0) and cuMemPoolSetAttribute (set 1): the
 * driver's answer, to which, for the default pool under paging, the
 * cache's bytes are added (used and reserved, current and high; setting a
 * high mark resets the cache's too): what PyTorch's memory counters read
 * under backend:cudaMallocAsync. */
CUresult vp_mem_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value, int set);
CUresult vp_mem_pool_destroy(CUmemoryPool pool);

CUresult vp_mem_create(CUmemGenericAllocationHandle *handle, size_t bytes, const CUmemAllocationProp *prop,
                       unsigned long long flags);
CUresult vp_mem_release(CUmemGenericAllocationHandle handle);

CUresult vp_mem_array_create(enum vp_hook_id hook, CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc3,
                             const CUDA_ARRAY_DESCRIPTOR *desc2);
CUresult vp_mem_array_destroy(CUarray arr);

/* After a graph launch: re-reads the graph memory pool of the current
 * device if allocations were captured into graphs there (counted, not
 * refused: a graph launch cannot fail cleanly part-way). */
void vp_mem_graph_launched(void);

/* The capped view of memory for the program. */
CUresult vp_mem_get_info(size_t *free_b, size_t *total_b);
CUresult vp_mem_device_total(size_t *bytes, CUdevice dev);

/* Graph memory: allocations made while a stream is captured become graph
 * memory nodes, backed by a per-device graph pool when the graph is
 * launched; vpage counts that pool's reserved bytes (kind "graph"). */

/* Locks and resets for fork (core/init.c). */
void vp_mem_lock_all(void);
void vp_mem_unlock_all(void);
void vp_mem_reset_child(void);

#endif
