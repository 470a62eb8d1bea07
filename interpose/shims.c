/* shims.c - the exported driver symbols.
 *
 * Each shim makes sure vpage is initialised, then hands the call to the
 * books (core/mem.h: allocations), the pager (pager/pager.h: operations
 * on paged memory), the registry (kernel handles, launches) or straight
 * to the real function (vp_real, driver/driver.h). cuGetProcAddress and cuGetProcAddress_v2 live in
 * dlsym.c with the rest of the lookup logic.
 */
#include "../books/registry.h"
#include "../books/weights.h"
#include "../common/log.h"
#include "../common/stats.h"
#include "../common/vp.h"
#include "../core/init.h"
#include "../core/mem.h"
#include "../driver/driver.h"
#include "../pager/graphs.h"
#include "../pager/launch.h"
#include "../pager/pager.h"
#include "hooks.h"

/* Every shim starts here: NOT_INITIALIZED without a driver, like a program
 * that has none; the refusal for a bad VPAGE_CAP for allocations. */
#define ENTER(name)                                                         \
    vp_stat_call(VP_HOOK_##name);                                           \
    if (vp_unlikely(vp_init() != 0)) return CUDA_ERROR_NOT_INITIALIZED;     \
    if (vp_unlikely(!vp_real.name)) return CUDA_ERROR_NOT_FOUND
#define ENTER_ALLOC(name)                                                   \
    ENTER(name);                                                            \
    if (vp_unlikely(vp_refused())) return CUDA_ERROR_OUT_OF_MEMORY

VP_EXPORT CUresult cuInit(unsigned int flags)
{
    ENTER(cuInit);
    if (vp_refused()) {
        vp_log_always("cuInit refused: %s", vp_refused_why());
        return CUDA_ERROR_INVALID_VALUE;
    }
    return vp_real.cuInit(flags);
}

VP_EXPORT CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b)
{
    ENTER(cuMemGetInfo_v2);
    return vp_mem_get_info(free_b, total_b);
}

VP_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    ENTER(cuDeviceTotalMem_v2);
    return vp_mem_device_total(bytes, dev);
}

VP_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    ENTER_ALLOC(cuMemAlloc_v2);
    return vp_mem_alloc(dptr, bytes);
}

VP_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                      unsigned int elem)
{
    ENTER_ALLOC(cuMemAllocPitch_v2);
    return vp_mem_alloc_pitch(dptr, pitch, width, height, elem);
}

VP_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    ENTER(cuMemFree_v2);
    return vp_mem_free(dptr);
}

VP_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    ENTER_ALLOC(cuMemAllocManaged);
    return vp_mem_alloc_managed(dptr, bytes, flags);
}

VP_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytes, CUstream stream)
{
    ENTER_ALLOC(cuMemAllocAsync);
    return vp_mem_alloc_async(VP_HOOK_cuMemAllocAsync, dptr, bytes, NULL, stream);
}

VP_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUstream stream)
{
    ENTER_ALLOC(cuMemAllocAsync_ptsz);
    return vp_mem_alloc_async(VP_HOOK_cuMemAllocAsync_ptsz, dptr, bytes, NULL, stream);
}

VP_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream)
{
    ENTER_ALLOC(cuMemAllocFromPoolAsync);
    return vp_mem_alloc_async(VP_HOOK_cuMemAllocFromPoolAsync, dptr, bytes, pool, stream);
}

VP_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                                                CUstream stream)
{
    ENTER_ALLOC(cuMemAllocFromPoolAsync_ptsz);
    return vp_mem_alloc_async(VP_HOOK_cuMemAllocFromPoolAsync_ptsz, dptr, bytes, pool, stream);
}

VP_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream)
{
    ENTER(cuMemFreeAsync);
    return vp_mem_free_async(VP_HOOK_cuMemFreeAsync, dptr, stream);
}

VP_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream)
{
    ENTER(cuMemFreeAsync_ptsz);
    return vp_mem_free_async(VP_HOOK_cuMemFreeAsync_ptsz, dptr, stream);
}

VP_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    ENTER(cuMemPoolTrimTo);
    return vp_mem_pool_trim(pool, keep);
}

VP_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    ENTER(cuMemPoolGetAttribute);
    return vp_mem_pool_attribute(pool, attr, value, 0);
}

VP_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    ENTER(cuMemPoolSetAttribute);
    return vp_mem_pool_attribute(pool, attr, value, 1);
}

VP_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    ENTER(cuMemPoolDestroy);
    return vp_mem_pool_destroy(pool);
}

VP_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t bytes, const CUmemAllocationProp *prop,
                               unsigned long long flags)
{
    ENTER_ALLOC(cuMemCreate);
    return vp_mem_create(handle, bytes, prop, flags);
}

VP_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    ENTER(cuMemRelease);
    return vp_mem_release(handle);
}

VP_EXPORT CUresult cuArrayCreate_v2(CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    ENTER_ALLOC(cuArrayCreate_v2);
    return vp_mem_array_create(VP_HOOK_cuArrayCreate_v2, arr, NULL, desc);
}

VP_EXPORT CUresult cuArray3DCreate_v2(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    ENTER_ALLOC(cuArray3DCreate_v2);
    return vp_mem_array_create(VP_HOOK_cuArray3DCreate_v2, arr, desc, NULL);
}

VP_EXPORT CUresult cuArrayDestroy(CUarray arr)
{
    ENTER(cuArrayDestroy);
    return vp_mem_array_destroy(arr);
}

/* ---- copies and memsets: provenance of device bytes (books/weights.h) ----
 * Before the copy is issued the destination stops being a clean copy of
 * anything; after a host-to-device copy out of a weight-file mapping it is
 * one again. Unified copies (cuMemcpy*) may go any way: only a source that
 * lies in a tracked mapping counts as the file's. */

/* HOST: 1 when src is host memory by contract (HtoD), 0 for unified copies */
/* Streamed memory (pager/stream.h) must not move while a copy is issued
 * or in flight: the addresses a copy carries are handed to the pager
 * before it is issued, and its stream after. STREAM_OF is the stream a
 * copy runs on; PT: 1 for per-thread-stream symbols. */
#define OP_BEGIN(a, b) uint64_t vp_ops_[2] = {(uint64_t)(a), (uint64_t)(b)}; \
    int vp_op_ = vp_pager_op_begin(vp_ops_, 2, 0, "copy")
#define OP_END(stream, pt) if (vp_op_) vp_pager()->op_end((stream), (pt))

/* HOST: 1 when src is host memory by contract (HtoD), 0 for unified copies */
#define COPY_FROM_HOST(name, PARAMS, ARGS, HOST, STREAM_OF, PT)             \
    VP_EXPORT CUresult name PARAMS                                          \
    {                                                                       \
        ENTER(name);                                                        \
        OP_BEGIN(dst, HOST ? 0 : (uint64_t)(uintptr_t)src);                 \
        CUresult rc = vp_real.name ARGS;                                    \
        OP_END(STREAM_OF, PT);                                              \
        if (vp_weights_active()) {                                          \
            if (rc == CUDA_SUCCESS) vp_weights_copied(dst, (const void *)(uintptr_t)src, n, HOST); \
            else vp_weights_written(dst, n);                                \
        }                                                                   \
        return rc;                                                          \
    }
#define WRITES(name, PARAMS, ARGS, UNIT, SRC, STREAM_OF, PT)                \
    VP_EXPORT CUresult name PARAMS                                          \
    {                                                                       \
        ENTER(name);                                                        \
        vp_weights_written(dst, n * (UNIT));                                \
        OP_BEGIN(dst, SRC);                                                 \
        CUresult rc = vp_real.name ARGS;                                    \
        OP_END(STREAM_OF, PT);                                              \
        return rc;                                                          \
    }
#define READS(name, PARAMS, ARGS, STREAM_OF, PT)                            \
    VP_EXPORT CUresult name PARAMS                                          \
    {                                                                       \
        ENTER(name);                                                        \
        OP_BEGIN(src, 0);                                                   \
        CUresult rc = vp_real.name ARGS;                                    \
        OP_END(STREAM_OF, PT);                                              \
        return rc;                                                          \
    }

COPY_FROM_HOST(cuMemcpyHtoD_v2, VP_HTOD_P, VP_HTOD_A, 1, NULL, 0)
COPY_FROM_HOST(cuMemcpyHtoD_v2_ptds, VP_HTOD_P, VP_HTOD_A, 1, NULL, 1)
COPY_FROM_HOST(cuMemcpyHtoDAsync_v2, VP_HTODA_P, VP_HTODA_A, 1, stream, 0)
COPY_FROM_HOST(cuMemcpyHtoDAsync_v2_ptsz, VP_HTODA_P, VP_HTODA_A, 1, stream, 1)
COPY_FROM_HOST(cuMemcpy, VP_CPY_P, VP_CPY_A, 0, NULL, 0)
COPY_FROM_HOST(cuMemcpy_ptds, VP_CPY_P, VP_CPY_A, 0, NULL, 1)
COPY_FROM_HOST(cuMemcpyAsync, VP_CPYA_P, VP_CPYA_A, 0, stream, 0)
COPY_FROM_HOST(cuMemcpyAsync_ptsz, VP_CPYA_P, VP_CPYA_A, 0, stream, 1)
WRITES(cuMemcpyDtoD_v2, VP_CPY_P, VP_CPY_A, 1, src, NULL, 0)
WRITES(cuMemcpyDtoD_v2_ptds, VP_CPY_P, VP_CPY_A, 1, src, NULL, 1)
WRITES(cuMemcpyDtoDAsync_v2, VP_CPYA_P, VP_CPYA_A, 1, src, stream, 0)
WRITES(cuMemcpyDtoDAsync_v2_ptsz, VP_CPYA_P, VP_CPYA_A, 1, src, stream, 1)
WRITES(cuMemsetD8_v2, VP_SET_P(unsigned char), VP_SET_A, 1, 0, NULL, 0)
WRITES(cuMemsetD8_v2_ptds, VP_SET_P(unsigned char), VP_SET_A, 1, 0, NULL, 1)
WRITES(cuMemsetD16_v2, VP_SET_P(unsigned short), VP_SET_A, 2, 0, NULL, 0)
WRITES(cuMemsetD16_v2_ptds, VP_SET_P(unsigned short), VP_SET_A, 2, 0, NULL, 1)
WRITES(cuMemsetD32_v2, VP_SET_P(unsigned int), VP_SET_A, 4, 0, NULL, 0)
WRITES(cuMemsetD32_v2_ptds, VP_SET_P(unsigned int), VP_SET_A, 4, 0, NULL, 1)
WRITES(cuMemsetD8Async, VP_SETA_P(unsigned char), VP_SETA_A, 1, 0, stream, 0)
WRITES(cuMemsetD8Async_ptsz, VP_SETA_P(unsigned char), VP_SETA_A, 1, 0, stream, 1)
WRITES(cuMemsetD16Async, VP_SETA_P(unsigned short), VP_SETA_A, 2, 0, stream, 0)
WRITES(cuMemsetD16Async_ptsz, VP_SETA_P(unsigned short), VP_SETA_A, 2, 0, stream, 1)
WRITES(cuMemsetD32Async, VP_SETA_P(unsigned int), VP_SETA_A, 4, 0, stream, 0)
WRITES(cuMemsetD32Async_ptsz, VP_SETA_P(unsigned int), VP_SETA_A, 4, 0, stream, 1)

READS(cuMemcpyDtoH_v2, VP_DTOH_P, VP_DTOH_A, NULL, 0)
READS(cuMemcpyDtoH_v2_ptds, VP_DTOH_P, VP_DTOH_A, NULL, 1)
READS(cuMemcpyDtoHAsync_v2, VP_DTOHA_P, VP_DTOHA_A, stream, 0)
READS(cuMemcpyDtoHAsync_v2_ptsz, VP_DTOHA_P, VP_DTOHA_A, stream, 1)

/* 2D and 3D copies: the destination's rows, as one span from its first to
 * its last byte (the gaps between rows are cut too: conservative). */
static void written_2d(const CUDA_MEMCPY2D *c)
{
    if (!c || !vp_weights_active() || !c->Height || !c->WidthInBytes) return;
    if (c->dstMemoryType != CU_MEMORYTYPE_DEVICE && c->dstMemoryType != CU_MEMORYTYPE_UNIFIED) return;
    uint64_t start = c->dstDevice + (uint64_t)c->dstY * c->dstPitch + c->dstXInBytes;
    vp_weights_written(start, (size_t)((uint64_t)(c->Height - 1) * c->dstPitch + c->WidthInBytes));
}

static void written_3d(CUmemorytype type, CUdeviceptr dst, size_t x, size_t y, size_t z, size_t pitch,
                       size_t height, size_t width, size_t rows, size_t depth)
{
    if (!vp_weights_active() || !width || !rows || !depth) return;
    if (type != CU_MEMORYTYPE_DEVICE && type != CU_MEMORYTYPE_UNIFIED) return;
    uint64_t start = dst + ((uint64_t)z * height + y) * pitch + x;
    vp_weights_written(start, (size_t)(((uint64_t)(depth - 1) * height + (rows - 1)) * pitch + width));
}

#define W3D(c) written_3d((c)->dstMemoryType, (c)->dstDevice, (c)->dstXInBytes, (c)->dstY, (c)->dstZ, \
                          (c)->dstPitch, (c)->dstHeight, (c)->WidthInBytes, (c)->Height, (c)->Depth)

/* Shaped copies carry their device addresses in a descriptor; peer
 * copies as arguments. */
#define SHAPED(name, PARAMS, ARGS, MARK, SRC, DST, STREAM_OF, PT)          \
    VP_EXPORT CUresult name PARAMS                                          \
    {                                                                       \
        ENTER(name);                                                        \
        MARK;                                                               \
        OP_BEGIN(SRC, DST);                                                 \
        CUresult rc = vp_real.name ARGS;                                    \
        OP_END(STREAM_OF, PT);                                              \
        return rc;                                                          \
    }
#define C_SRC (copy ? (uint64_t)copy->srcDevice : 0)
#define C_DST (copy ? (uint64_t)copy->dstDevice : 0)

SHAPED(cuMemcpy2D_v2, VP_C2D_P, (copy), written_2d(copy), C_SRC, C_DST, NULL, 0)
SHAPED(cuMemcpy2D_v2_ptds, VP_C2D_P, (copy), written_2d(copy), C_SRC, C_DST, NULL, 1)
SHAPED(cuMemcpy2DUnaligned_v2, VP_C2D_P, (copy), written_2d(copy), C_SRC, C_DST, NULL, 0)
SHAPED(cuMemcpy2DUnaligned_v2_ptds, VP_C2D_P, (copy), written_2d(copy), C_SRC, C_DST, NULL, 1)
SHAPED(cuMemcpy2DAsync_v2, VP_C2DA_P, (copy, stream), written_2d(copy), C_SRC, C_DST, stream, 0)
SHAPED(cuMemcpy2DAsync_v2_ptsz, VP_C2DA_P, (copy, stream), written_2d(copy), C_SRC, C_DST, stream, 1)
SHAPED(cuMemcpy3D_v2, VP_C3D_P, (copy), if (copy) W3D(copy), C_SRC, C_DST, NULL, 0)
SHAPED(cuMemcpy3D_v2_ptds, VP_C3D_P, (copy), if (copy) W3D(copy), C_SRC, C_DST, NULL, 1)
SHAPED(cuMemcpy3DAsync_v2, VP_C3DA_P, (copy, stream), if (copy) W3D(copy), C_SRC, C_DST, stream, 0)
SHAPED(cuMemcpy3DAsync_v2_ptsz, VP_C3DA_P, (copy, stream), if (copy) W3D(copy), C_SRC, C_DST, stream, 1)
SHAPED(cuMemcpy3DPeer, VP_C3DP_P, (copy), if (copy) W3D(copy), C_SRC, C_DST, NULL, 0)
SHAPED(cuMemcpy3DPeer_ptds, VP_C3DP_P, (copy), if (copy) W3D(copy), C_SRC, C_DST, NULL, 1)
SHAPED(cuMemcpy3DPeerAsync, VP_C3DPA_P, (copy, stream), if (copy) W3D(copy), C_SRC, C_DST, stream, 0)
SHAPED(cuMemcpy3DPeerAsync_ptsz, VP_C3DPA_P, (copy, stream), if (copy) W3D(copy), C_SRC, C_DST, stream, 1)
SHAPED(cuMemcpyPeer, VP_PEER_P, VP_PEER_A, vp_weights_written(dst, n), src, dst, NULL, 0)
SHAPED(cuMemcpyPeer_ptds, VP_PEER_P, VP_PEER_A, vp_weights_written(dst, n), src, dst, NULL, 1)
SHAPED(cuMemcpyPeerAsync, VP_PEERA_P, VP_PEERA_A, vp_weights_written(dst, n), src, dst, stream, 0)
SHAPED(cuMemcpyPeerAsync_ptsz, VP_PEERA_P, VP_PEERA_A, vp_weights_written(dst, n), src, dst, stream, 1)

/* ---- kernel handles ---- */

VP_EXPORT CUresult cuModuleGetFunction(CUfunction *fn, CUmodule mod, const char *name)
{
    ENTER(cuModuleGetFunction);
    CUresult rc = vp_real.cuModuleGetFunction(fn, mod, name);
    if (rc == CUDA_SUCCESS) vp_registry_add(*fn, VP_HANDLE_FUNCTION, name);
    return rc;
}

VP_EXPORT CUresult cuLibraryGetKernel(CUkernel *kern, CUlibrary lib, const char *name)
{
    ENTER(cuLibraryGetKernel);
    CUresult rc = vp_real.cuLibraryGetKernel(kern, lib, name);
    if (rc == CUDA_SUCCESS) vp_registry_add(*kern, VP_HANDLE_KERNEL, name);
    return rc;
}

VP_EXPORT CUresult cuKernelGetFunction(CUfunction *fn, CUkernel kern)
{
    ENTER(cuKernelGetFunction);
    CUresult rc = vp_real.cuKernelGetFunction(fn, kern);
    if (rc == CUDA_SUCCESS) {
        struct vp_kernel *k = vp_registry_find(kern);
        vp_registry_add(*fn, VP_HANDLE_FUNCTION, k ? k->name : NULL);
    }
    return rc;
}

/* ---- launches ---- */

/* The registry counts the launch; the pager queues what its parameters
 * point at (no driver call on this thread), and with streamed memory
 * holds it in place until the launch is issued and recorded. */
#define LAUNCH(name, f, params, extra, call, STREAM_OF, PT)                 \
    ENTER(name);                                                            \
    int vp_op_ = vp_pager_launch(vp_registry_launch(f), params, extra);     \
    CUresult rc = call;                                                     \
    OP_END(STREAM_OF, PT);                                                  \
    return rc

VP_EXPORT CUresult cuLaunchKernel VP_LAUNCH_PARAMS
{
    LAUNCH(cuLaunchKernel, f, params, extra, vp_real.cuLaunchKernel VP_LAUNCH_ARGS, stream, 0);
}

VP_EXPORT CUresult cuLaunchKernel_ptsz VP_LAUNCH_PARAMS
{
    LAUNCH(cuLaunchKernel_ptsz, f, params, extra, vp_real.cuLaunchKernel_ptsz VP_LAUNCH_ARGS, stream, 1);
}

VP_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
    LAUNCH(cuLaunchKernelEx, f, params, extra, vp_real.cuLaunchKernelEx(cfg, f, params, extra),
           cfg ? cfg->hStream : NULL, 0);
}

VP_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
    LAUNCH(cuLaunchKernelEx_ptsz, f, params, extra, vp_real.cuLaunchKernelEx_ptsz(cfg, f, params, extra),
           cfg ? cfg->hStream : NULL, 1);
}

VP_EXPORT CUresult cuLaunchCooperativeKernel VP_COOP_PARAMS
{
    LAUNCH(cuLaunchCooperativeKernel, f, params, NULL, vp_real.cuLaunchCooperativeKernel VP_COOP_ARGS, stream, 0);
}

VP_EXPORT CUresult cuLaunchCooperativeKernel_ptsz VP_COOP_PARAMS
{
    LAUNCH(cuLaunchCooperativeKernel_ptsz, f, params, NULL, vp_real.cuLaunchCooperativeKernel_ptsz VP_COOP_ARGS,
           stream, 1);
}

/* A graph replay is one call; the kernels inside are not seen here, but
 * those captured into it were (pager/graphs.h). Its memory nodes are
 * counted after it (core/mem.h). */
VP_EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream)
{
    ENTER(cuGraphLaunch);
    int vp_op_ = vp_pager_graph_begin(exec);
    CUresult rc = vp_real.cuGraphLaunch(exec, stream);
    OP_END(stream, 0);
    vp_mem_graph_launched();
    return rc;
}

VP_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream stream)
{
    ENTER(cuGraphLaunch_ptsz);
    int vp_op_ = vp_pager_graph_begin(exec);
    CUresult rc = vp_real.cuGraphLaunch_ptsz(exec, stream);
    OP_END(stream, 1);
    vp_mem_graph_launched();
    return rc;
}

/* ---- tensor maps ---- */

#define TMAP(name, PARAMS, ARGS)                                            \
    VP_EXPORT CUresult name PARAMS                                          \
    {                                                                       \
        ENTER(name);                                                        \
        CUresult rc = vp_real.name ARGS;                                    \
        if (rc == CUDA_SUCCESS) vp_registry_tmap_add(map, (uint64_t)(uintptr_t)addr); \
        return rc;                                                          \
    }
#define VP_X(ret, name, params, args) TMAP(name, params, args)
VP_X(CUresult, cuTensorMapEncodeTiled,
     (CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank, void *addr, const cuuint64_t *dim,
      const cuuint64_t *strides, const cuuint32_t *box, const cuuint32_t *estrides, CUtensorMapInterleave il,
      CUtensorMapSwizzle sw, CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob),
     (map, type, rank, addr, dim, strides, box, estrides, il, sw, l2, oob))
VP_X(CUresult, cuTensorMapEncodeIm2col,
     (CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank, void *addr, const cuuint64_t *dim,
      const cuuint64_t *strides, const int *lower, const int *upper, cuuint32_t cpp, cuuint32_t ppc,
      const cuuint32_t *estrides, CUtensorMapInterleave il, CUtensorMapSwizzle sw, CUtensorMapL2promotion l2,
      CUtensorMapFloatOOBfill oob),
     (map, type, rank, addr, dim, strides, lower, upper, cpp, ppc, estrides, il, sw, l2, oob))
VP_X(CUresult, cuTensorMapEncodeIm2colWide,
     (CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank, void *addr, const cuuint64_t *dim,
      const cuuint64_t *strides, int lower, int upper, cuuint32_t cpp, cuuint32_t ppc, const cuuint32_t *estrides,
      CUtensorMapInterleave il, CUtensorMapIm2ColWideMode mode, CUtensorMapSwizzle sw, CUtensorMapL2promotion l2,
      CUtensorMapFloatOOBfill oob),
     (map, type, rank, addr, dim, strides, lower, upper, cpp, ppc, estrides, il, mode, sw, l2, oob))
VP_X(CUresult, cuTensorMapReplaceAddress, (CUtensorMap *map, void *addr), (map, addr))
#undef VP_X

/* ---- stream capture ---- */

#define BEGIN_CAPTURE(name)                                                 \
    ENTER(name);                                                            \
    CUresult rc = vp_real.name(stream, mode);                               \
    if (rc == CUDA_SUCCESS) {                                               \
        vp_pager()->capture(+1);                                            \
        vp_graphs_capture(+1, NULL);                                        \
    }                                                                       \
    return rc

VP_EXPORT CUresult cuStreamBeginCapture_v2(CUstream stream, CUstreamCaptureMode mode)
{
    BEGIN_CAPTURE(cuStreamBeginCapture_v2);
}

VP_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream stream, CUstreamCaptureMode mode)
{
    BEGIN_CAPTURE(cuStreamBeginCapture_v2_ptsz);
}

/* A capture ends with this call whether it succeeded or was invalidated;
 * only a stream that was not capturing (or the wrong thread) leaves it on. */
#define END_CAPTURE(name)                                                   \
    ENTER(name);                                                            \
    CUresult rc = vp_real.name(stream, graph);                              \
    if (rc != CUDA_ERROR_ILLEGAL_STATE && rc != CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD && \
        rc != CUDA_ERROR_INVALID_VALUE && rc != CUDA_ERROR_INVALID_HANDLE) { \
        vp_pager()->capture(-1);                                            \
        vp_graphs_capture(-1, rc == CUDA_SUCCESS && graph ? *graph : NULL); \
    }                                                                       \
    return rc

VP_EXPORT CUresult cuStreamEndCapture(CUstream stream, CUgraph *graph)
{
    END_CAPTURE(cuStreamEndCapture);
}

VP_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream stream, CUgraph *graph)
{
    END_CAPTURE(cuStreamEndCapture_ptsz);
}

/* ---- graphs: the set captured into a graph goes to what is made of it ---- */

#define INSTANTIATE(name, PARAMS, ARGS)                                     \
    VP_EXPORT CUresult name PARAMS                                          \
    {                                                                       \
        ENTER(name);                                                        \
        CUresult rc = vp_real.name ARGS;                                    \
        if (rc == CUDA_SUCCESS && exec) vp_graphs_instantiated(graph, *exec); \
        return rc;                                                          \
    }
INSTANTIATE(cuGraphInstantiateWithFlags, (CUgraphExec * exec, CUgraph graph, unsigned long long flags),
            (exec, graph, flags))
INSTANTIATE(cuGraphInstantiateWithParams, (CUgraphExec * exec, CUgraph graph, CUDA_GRAPH_INSTANTIATE_PARAMS *p),
            (exec, graph, p))
INSTANTIATE(cuGraphInstantiateWithParams_ptsz,
            (CUgraphExec * exec, CUgraph graph, CUDA_GRAPH_INSTANTIATE_PARAMS *p), (exec, graph, p))

/* The executable graph now runs graph's nodes: graph's set is its own. */
VP_EXPORT CUresult cuGraphExecUpdate_v2(CUgraphExec exec, CUgraph graph, CUgraphExecUpdateResultInfo *info)
{
    ENTER(cuGraphExecUpdate_v2);
    CUresult rc = vp_real.cuGraphExecUpdate_v2(exec, graph, info);
    if (rc == CUDA_SUCCESS) vp_graphs_instantiated(graph, exec);
    return rc;
}

VP_EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec)
{
    ENTER(cuGraphExecDestroy);
    vp_graphs_forget(NULL, exec);
    return vp_real.cuGraphExecDestroy(exec);
}

VP_EXPORT CUresult cuGraphDestroy(CUgraph graph)
{
    ENTER(cuGraphDestroy);
    vp_graphs_forget(graph, NULL);
    return vp_real.cuGraphDestroy(graph);
}

/* Paged memory is managed memory, which CUDA IPC cannot share: refuse with
 * a reason instead of handing out a handle the other process cannot use. */
VP_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *handle, CUdeviceptr dptr)
{
    ENTER(cuIpcGetMemHandle);
    if (vp_pager()->owns(dptr)) {
        vp_stat_add(VP_HOOK_cuIpcGetMemHandle, VP_CTR_refused, 1);
        vp_warn("cuIpcGetMemHandle refused: the pointer is paged memory (VPAGE_PAGING=%s), which CUDA IPC "
                "cannot share; run this process with VPAGE_PAGING=off to share it", vp_pager()->mode);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return vp_real.cuIpcGetMemHandle(handle, dptr);
}
