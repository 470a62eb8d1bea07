/* driver.c - see driver.h. */
#define _GNU_SOURCE
#include "driver.h"

#include <dlfcn.h>
#include <string.h>

#include "../common/log.h"
#include "../common/options.h"

struct vp_real vp_real;

static void *driver_base;

int vp_driver_open(void)
{
    void *h = dlopen(vp_opt.libcuda, RTLD_NOW);
    if (!h) {
        vp_warn("cannot load the driver %s (VPAGE_LIBCUDA): %s", vp_opt.libcuda, dlerror());
        return -1;
    }
#define VP_X(ret, name, params, args) vp_real.name = (vp_pfn_##name)vp_dlsym_real(h, #name);
    VP_HOOKS(VP_X)
#undef VP_X
#define VP_X(ret, name, params) vp_real.name = (vp_pfn_##name)vp_dlsym_real(h, #name);
    VP_DRIVER_USES(VP_X)
#undef VP_X
    Dl_info di;
    if (!vp_real.cuInit || !dladdr((void *)vp_real.cuInit, &di)) {
        vp_warn("%s does not export cuInit: not a CUDA driver", vp_opt.libcuda);
        memset(&vp_real, 0, sizeof vp_real);
        return -1;
    }
    driver_base = di.dli_fbase;
    vp_info("driver %s loaded from %s", vp_opt.libcuda, di.dli_fname);
    return 0;
}

int vp_driver_owns(const void *addr)
{
    Dl_info di;
    return driver_base && dladdr(addr, &di) && di.dli_fbase == driver_base;
}

int vp_drv_current_device(void)
{
    CUdevice d;
    if (!vp_real.cuCtxGetDevice || vp_real.cuCtxGetDevice(&d) != CUDA_SUCCESS) return -1;
    return (int)d;
}

int vp_drv_pool_usage(CUmemoryPool pool, uint64_t *reserved, uint64_t *used)
{
    cuuint64_t r = 0, u = 0;
    if (!pool || !vp_real.cuMemPoolGetAttribute ||
        vp_real.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &r) != CUDA_SUCCESS ||
        vp_real.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &u) != CUDA_SUCCESS)
        return -1;
    *reserved = r;
    *used = u;
    return 0;
}

CUmemoryPool vp_drv_default_pool(int dev)
{
    CUmemoryPool p = NULL;
    if (!vp_real.cuDeviceGetMemPool || vp_real.cuDeviceGetMemPool(&p, (CUdevice)dev) != CUDA_SUCCESS)
        return NULL;
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
