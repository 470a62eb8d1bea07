/* alloc.h - the program's allocation families, passed through to the
 * driver for the books (core/mem.h).
 *
 * Contract
 *   Each helper is the real entry point of one family, called with the
 *   program's own arguments: the books reserve before and record after;
 *   nothing here counts. A missing real function answers
 *   CUDA_ERROR_NOT_FOUND.
 */
#ifndef VPAGE_DRIVER_ALLOC_H
#define VPAGE_DRIVER_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/hooks.h"

CUresult vp_drv_alloc(CUdeviceptr *dptr, size_t bytes);
CUresult vp_drv_alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int elem);
CUresult vp_drv_alloc_managed(CUdeviceptr *dptr, size_t bytes, unsigned int flags);
CUresult vp_drv_free(CUdeviceptr dptr);

/* The stream-ordered allocation of the entry point hook (cuMemAllocAsync,
 * cuMemAllocFromPoolAsync and their _ptsz symbols), and its free. */
CUresult vp_drv_alloc_async(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                            CUstream stream);
CUresult vp_drv_free_async(int ptsz, CUdeviceptr dptr, CUstream stream);
CUresult vp_drv_pool_trim(CUmemoryPool pool, size_t keep);
/* cuMemPoolSetAttribute (set 1) or cuMemPoolGetAttribute (set 0). */
CUresult vp_drv_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value, int set);
CUresult vp_drv_pool_destroy(CUmemoryPool pool);

/* A CUDA array from its 3D descriptor, else its 2D one. */
CUresult vp_drv_array_create(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *d3, const CUDA_ARRAY_DESCRIPTOR *d2);
CUresult vp_drv_array_destroy(CUarray arr);
/* Device bytes the driver says arr holds on dev, or 0 when it cannot say. */
uint64_t vp_drv_array_bytes(CUarray arr, int dev);

/* The device's own free and total memory, and its total. */
CUresult vp_drv_mem_info(size_t *free_b, size_t *total_b);
CUresult vp_drv_total_mem(size_t *bytes, CUdevice dev);

#endif
