/* alloc.c - see alloc.h. */
#include "alloc.h"

#include "driver.h"

#define CALL(name, args) (VP_REAL(name) ? VP_REAL(name) args : CUDA_ERROR_NOT_FOUND)

CUresult vp_drv_alloc(CUdeviceptr *dptr, size_t bytes) { return CALL(cuMemAlloc_v2, (dptr, bytes)); }

CUresult vp_drv_alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int elem)
{
    return CALL(cuMemAllocPitch_v2, (dptr, pitch, width, height, elem));
}

CUresult vp_drv_alloc_managed(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    return CALL(cuMemAllocManaged, (dptr, bytes, flags));
}

CUresult vp_drv_free(CUdeviceptr dptr) { return CALL(cuMemFree_v2, (dptr)); }

CUresult vp_drv_alloc_async(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                            CUstream stream)
{
    switch (hook) {
    case VP_HOOK_cuMemAllocAsync: return CALL(cuMemAllocAsync, (dptr, bytes, stream));
    case VP_HOOK_cuMemAllocAsync_ptsz: return CALL(cuMemAllocAsync_ptsz, (dptr, bytes, stream));
    case VP_HOOK_cuMemAllocFromPoolAsync: return CALL(cuMemAllocFromPoolAsync, (dptr, bytes, pool, stream));
    case VP_HOOK_cuMemAllocFromPoolAsync_ptsz:
        return CALL(cuMemAllocFromPoolAsync_ptsz, (dptr, bytes, pool, stream));
    default: return CUDA_ERROR_NOT_SUPPORTED;
    }
}

CUresult vp_drv_free_async(int ptsz, CUdeviceptr dptr, CUstream stream)
{
    return ptsz ? CALL(cuMemFreeAsync_ptsz, (dptr, stream)) : CALL(cuMemFreeAsync, (dptr, stream));
}

CUresult vp_drv_pool_trim(CUmemoryPool pool, size_t keep) { return CALL(cuMemPoolTrimTo, (pool, keep)); }

CUresult vp_drv_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value, int set)
{
    return set ? CALL(cuMemPoolSetAttribute, (pool, attr, value)) : CALL(cuMemPoolGetAttribute, (pool, attr, value));
}

CUresult vp_drv_pool_destroy(CUmemoryPool pool) { return CALL(cuMemPoolDestroy, (pool)); }

CUresult vp_drv_array_create(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *d3, const CUDA_ARRAY_DESCRIPTOR *d2)
{
    return d3 ? CALL(cuArray3DCreate_v2, (arr, d3)) : CALL(cuArrayCreate_v2, (arr, d2));
}

CUresult vp_drv_array_destroy(CUarray arr) { return CALL(cuArrayDestroy, (arr)); }

uint64_t vp_drv_array_bytes(CUarray arr, int dev)
{
    CUDA_ARRAY_MEMORY_REQUIREMENTS req;
    if (!vp_real.cuArrayGetMemoryRequirements ||
        vp_real.cuArrayGetMemoryRequirements(&req, arr, (CUdevice)dev) != CUDA_SUCCESS)
        return 0;
    return req.size;
}

CUresult vp_drv_mem_info(size_t *free_b, size_t *total_b) { return CALL(cuMemGetInfo_v2, (free_b, total_b)); }

CUresult vp_drv_total_mem(size_t *bytes, CUdevice dev) { return CALL(cuDeviceTotalMem_v2, (bytes, dev)); }
