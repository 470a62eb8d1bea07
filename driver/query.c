/* query.c - see query.h. */
#include "query.h"

#include "driver.h"

int vp_drv_current_device(void)
{
    CUdevice d;
    if (!vp_real.cuCtxGetDevice || vp_real.cuCtxGetDevice(&d) != CUDA_SUCCESS) return -1;
    return (int)d;
}

int vp_drv_device_attr(int dev, CUdevice_attribute attr, int fallback)
{
    CUdevice d;
    int v = 0;
    if (!vp_real.cuDeviceGet || !vp_real.cuDeviceGetAttribute || vp_real.cuDeviceGet(&d, dev) != CUDA_SUCCESS ||
        vp_real.cuDeviceGetAttribute(&v, attr, d) != CUDA_SUCCESS)
        return fallback;
    return v;
}

int vp_drv_host_numa(int dev)
{
    int numa = vp_drv_device_attr(dev, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, 0);
    return numa < 0 ? 0 : numa;
}

int vp_drv_pool_usage(CUmemoryPool pool, uint64_t *reserved, uint64_t *used)
{
    cuuint64_t r = 0, u = 0;
    if (!pool || !VP_REAL(cuMemPoolGetAttribute) ||
        VP_REAL(cuMemPoolGetAttribute)(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &r) != CUDA_SUCCESS ||
        VP_REAL(cuMemPoolGetAttribute)(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &u) != CUDA_SUCCESS)
        return -1;
    *reserved = r;
    *used = u;
    return 0;
}

CUmemoryPool vp_drv_default_pool(int dev)
{
    CUmemoryPool p = NULL;
    if (!vp_real.cuDeviceGetMemPool || vp_real.cuDeviceGetMemPool(&p, (CUdevice)dev) != CUDA_SUCCESS) return NULL;
    return p;
}

int vp_drv_pool_is_default(int dev)
{
    CUmemoryPool def = NULL, cur = vp_drv_default_pool(dev);
    if (!cur || !vp_real.cuDeviceGetDefaultMemPool ||
        vp_real.cuDeviceGetDefaultMemPool(&def, (CUdevice)dev) != CUDA_SUCCESS)
        return 1;
    return cur == def;
}

int vp_drv_capturing(CUstream stream, int ptsz)
{
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    if (ptsz && !stream) stream = CU_STREAM_PER_THREAD;
    if (!vp_real.cuStreamIsCapturing || vp_real.cuStreamIsCapturing(stream, &st) != CUDA_SUCCESS) return 0;
    return st != CU_STREAM_CAPTURE_STATUS_NONE;
}

uint64_t vp_drv_graph_reserved(int dev)
{
    cuuint64_t v = 0;
    if (!vp_real.cuDeviceGetGraphMemAttribute ||
        vp_real.cuDeviceGetGraphMemAttribute((CUdevice)dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &v) !=
            CUDA_SUCCESS)
        return 0;
    return v;
}

const char *vp_drv_kernel_name(const void *handle, int is_function)
{
    const char *n = NULL;
    /* A CUkernel cast to CUfunction answers cuKernelGetName, not cuFuncGetName. */
    if (!is_function && vp_real.cuKernelGetName &&
        vp_real.cuKernelGetName(&n, (CUkernel)(uintptr_t)handle) != CUDA_SUCCESS)
        n = NULL;
    if (!n && vp_real.cuFuncGetName && vp_real.cuFuncGetName(&n, (CUfunction)(uintptr_t)handle) != CUDA_SUCCESS)
        n = NULL;
    return n ? n : "?";
}

int vp_drv_param_info(const void *handle, int is_function, size_t i, size_t *off, size_t *size)
{
    CUresult rc = CUDA_ERROR_NOT_FOUND;
    if (!is_function && vp_real.cuKernelGetParamInfo)
        rc = vp_real.cuKernelGetParamInfo((CUkernel)(uintptr_t)handle, i, off, size);
    if (rc != CUDA_SUCCESS && vp_real.cuFuncGetParamInfo)
        rc = vp_real.cuFuncGetParamInfo((CUfunction)(uintptr_t)handle, i, off, size);
    return rc == CUDA_SUCCESS ? 0 : -1;
}
