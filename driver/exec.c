/* exec.c - see exec.h. */
#include "exec.h"

#include "driver.h"

int vp_drv_exec_usable(void)
{
    return vp_real.cuEventCreate && vp_real.cuEventRecord && vp_real.cuEventQuery && vp_real.cuEventSynchronize &&
           vp_real.cuMemcpyDtoDAsync_v2 && vp_real.cuStreamSynchronize && vp_real.cuStreamCreate &&
           vp_real.cuDeviceGet && vp_real.cuDeviceGetAttribute && vp_real.cuDevicePrimaryCtxRetain &&
           vp_real.cuCtxSetCurrent;
}

int vp_drv_managed_usable(void)
{
    return vp_real.cuMemAdvise_v2 && vp_real.cuMemPrefetchAsync_v2 && vp_real.cuDeviceGet &&
           vp_real.cuDeviceGetAttribute && vp_real.cuDevicePrimaryCtxRetain && vp_real.cuCtxSetCurrent &&
           vp_real.cuStreamCreate && vp_real.cuStreamSynchronize && vp_real.cuMemAllocManaged;
}

int vp_drv_use_primary_ctx(CUcontext *ctx, int dev)
{
    if (!*ctx) {
        CUdevice d;
        if (vp_real.cuDeviceGet(&d, dev) != CUDA_SUCCESS || vp_real.cuDevicePrimaryCtxRetain(ctx, d) != CUDA_SUCCESS) {
            *ctx = NULL;
            return -1;
        }
    }
    return vp_real.cuCtxSetCurrent(*ctx) == CUDA_SUCCESS ? 0 : -1;
}

CUresult vp_drv_set_ctx(CUcontext ctx) { return vp_real.cuCtxSetCurrent(ctx); }

int vp_drv_capture_mode(CUstreamCaptureMode *mode)
{
    return vp_real.cuThreadExchangeStreamCaptureMode && vp_real.cuThreadExchangeStreamCaptureMode(mode) == CUDA_SUCCESS;
}

CUresult vp_drv_stream_new(CUstream *s, int high)
{
    int least = 0, greatest = 0;
    if (high && vp_real.cuStreamCreateWithPriority && vp_real.cuCtxGetStreamPriorityRange &&
        vp_real.cuCtxGetStreamPriorityRange(&least, &greatest) == CUDA_SUCCESS &&
        vp_real.cuStreamCreateWithPriority(s, CU_STREAM_NON_BLOCKING, greatest) == CUDA_SUCCESS)
        return CUDA_SUCCESS;
    return vp_real.cuStreamCreate ? vp_real.cuStreamCreate(s, CU_STREAM_NON_BLOCKING) : CUDA_ERROR_NOT_FOUND;
}

void vp_drv_stream_drop(CUstream s)
{
    if (vp_real.cuStreamDestroy_v2) vp_real.cuStreamDestroy_v2(s);
}

CUresult vp_drv_sync(CUstream s) { return vp_real.cuStreamSynchronize(s); }

CUresult vp_drv_ctx_sync(void)
{
    return vp_real.cuCtxSynchronize ? vp_real.cuCtxSynchronize() : CUDA_ERROR_NOT_FOUND;
}

CUresult vp_drv_event_new(CUevent *ev) { return vp_real.cuEventCreate(ev, CU_EVENT_DISABLE_TIMING); }

CUresult vp_drv_record(CUevent ev, CUstream s) { return vp_real.cuEventRecord(ev, s); }

CUresult vp_drv_query(CUevent ev) { return vp_real.cuEventQuery(ev); }

CUresult vp_drv_wait(CUevent ev) { return vp_real.cuEventSynchronize(ev); }

CUresult vp_drv_copy(CUdeviceptr dst, CUdeviceptr src, uint64_t n, CUstream s)
{
    return VP_REAL(cuMemcpyDtoDAsync_v2)(dst, src, n, s);
}

CUresult vp_drv_load_kernel(const char *image, const char *name, CUfunction *fn)
{
    CUmodule mod;
    if (!vp_real.cuModuleLoadData || !VP_REAL(cuModuleGetFunction) || !VP_REAL(cuLaunchKernel))
        return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = vp_real.cuModuleLoadData(&mod, image);
    return rc == CUDA_SUCCESS ? VP_REAL(cuModuleGetFunction)(fn, mod, name) : rc;
}

CUresult vp_drv_launch(CUfunction fn, unsigned blocks, unsigned threads, CUstream s, void **args)
{
    return VP_REAL(cuLaunchKernel)(fn, blocks, 1, 1, threads, 1, 1, 0, s, args, NULL);
}

CUresult vp_drv_host_alloc(void **p, size_t n)
{
    if (!vp_real.cuMemHostAlloc) return CUDA_ERROR_NOT_FOUND;
    return vp_real.cuMemHostAlloc(p, n, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
}

static CUmemLocation where(int dev, int host)
{
    CUmemLocation loc = {host ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE, host ? 0 : dev};
    return loc;
}

CUresult vp_drv_advise(CUdeviceptr p, uint64_t n, CUmem_advise advice, int dev, int host)
{
    return vp_real.cuMemAdvise_v2(p, n, advice, where(dev, host));
}

CUresult vp_drv_prefetch(CUdeviceptr p, uint64_t n, int dev, int host, CUstream s)
{
    return vp_real.cuMemPrefetchAsync_v2(p, n, where(dev, host), 0, s);
}
