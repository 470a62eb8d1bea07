/* vmm.c - see vmm.h. */
#include "vmm.h"

#include <string.h>

#include "driver.h"
#include "exec.h"
#include "query.h"

int vp_drv_vmm_usable(void)
{
    return vp_real.cuMemCreate && vp_real.cuMemRelease && vp_real.cuMemAddressReserve && vp_real.cuMemAddressFree &&
           vp_real.cuMemMap && vp_real.cuMemUnmap && vp_real.cuMemSetAccess &&
           vp_real.cuMemGetAllocationGranularity && vp_drv_exec_usable();
}

CUresult vp_drv_reserve(CUdeviceptr *va, uint64_t len, uint64_t align)
{
    return vp_real.cuMemAddressReserve(va, len, align, 0, 0);
}

CUresult vp_drv_unreserve(CUdeviceptr va, uint64_t len) { return vp_real.cuMemAddressFree(va, len); }

static CUmemAllocationProp prop_for(int dev, int host)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = host ? CU_MEM_LOCATION_TYPE_HOST_NUMA : CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = host ? vp_drv_host_numa(dev) : dev;
    return p;
}

CUresult vp_drv_create_on(CUmemGenericAllocationHandle *h, uint64_t bytes, int dev, int host)
{
    CUmemAllocationProp p = prop_for(dev, host);
    return VP_REAL(cuMemCreate)(h, bytes, &p, 0);
}

CUresult vp_drv_create(CUmemGenericAllocationHandle *h, size_t bytes, const CUmemAllocationProp *prop,
                       unsigned long long flags)
{
    return VP_REAL(cuMemCreate) ? VP_REAL(cuMemCreate)(h, bytes, prop, flags) : CUDA_ERROR_NOT_FOUND;
}

CUresult vp_drv_release(CUmemGenericAllocationHandle h)
{
    return VP_REAL(cuMemRelease) ? VP_REAL(cuMemRelease)(h) : CUDA_ERROR_NOT_FOUND;
}

CUresult vp_drv_map(CUdeviceptr va, uint64_t len, CUmemGenericAllocationHandle h)
{
    return vp_real.cuMemMap(va, len, 0, h, 0);
}

CUresult vp_drv_allow(CUdeviceptr va, uint64_t len, int dev)
{
    CUmemAccessDesc d;
    memset(&d, 0, sizeof d);
    d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.location.id = dev;
    d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return vp_real.cuMemSetAccess(va, len, &d, 1);
}

CUresult vp_drv_map_for(CUdeviceptr va, uint64_t len, CUmemGenericAllocationHandle h, int dev)
{
    CUresult rc = vp_drv_map(va, len, h);
    if (rc != CUDA_SUCCESS) return rc;
    rc = vp_drv_allow(va, len, dev);
    if (rc != CUDA_SUCCESS) vp_drv_unmap(va, len);
    return rc;
}

CUresult vp_drv_unmap(CUdeviceptr va, uint64_t len) { return vp_real.cuMemUnmap(va, len); }

uint64_t vp_drv_granularity(int dev)
{
    size_t gd = 0, gh = 0;
    CUmemAllocationProp pd = prop_for(dev, 0), ph = prop_for(dev, 1);
    if (vp_real.cuMemGetAllocationGranularity(&gd, &pd, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS ||
        vp_real.cuMemGetAllocationGranularity(&gh, &ph, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS ||
        !gd || !gh)
        return 0;
    return gd > gh ? gd : gh;
}
