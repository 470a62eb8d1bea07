/* hooks.h - the one list of driver entry points vpage touches.
 *
 * Contract
 *   VP_HOOKS lists every libcuda symbol that vpage replaces with a wrapper of
 *   its own: the exported shim (interpose/shims.c), the typed pointer to the
 *   real function (struct vp_real, driver/driver.h), the name table used by
 *   dlsym and cuGetProcAddress (interpose/dlsym.c) and the per-entry-point
 *   counters and names (common/stats.h) are all generated from it, so they
 *   cannot drift apart. VP_DRIVER_USES lists the extra driver functions
 *   vpage itself calls; they get a typed pointer but no wrapper.
 *
 *   Each row is X(return type, exported symbol name, (parameters), (arguments)).
 *   The symbol name is the *exported* name (cuMemAlloc_v2, cuLaunchKernel_ptsz):
 *   cuGetProcAddress hands out different symbols for one API name depending on
 *   the requested version and per-thread-stream flag, each with its own calling
 *   convention, and vpage answers each with the wrapper of exactly that symbol.
 *
 *   A leaf: it needs only cuda.h, so every layer may include it.
 */
#ifndef VPAGE_COMMON_HOOKS_H
#define VPAGE_COMMON_HOOKS_H

#include <cuda.h>

/* cuda.h renames some API names to their newest symbol; vpage needs the
 * exported names themselves. */
#undef cuGetProcAddress

#define VP_LAUNCH_PARAMS                                                      \
    (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,          \
     unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,    \
     CUstream stream, void **params, void **extra)
#define VP_LAUNCH_ARGS (f, gx, gy, gz, bx, by, bz, shmem, stream, params, extra)
#define VP_COOP_PARAMS                                                        \
    (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,          \
     unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,    \
     CUstream stream, void **params)
#define VP_COOP_ARGS (f, gx, gy, gz, bx, by, bz, shmem, stream, params)

#define VP_HTOD_P (CUdeviceptr dst, const void *src, size_t n)
#define VP_HTOD_A (dst, src, n)
#define VP_HTODA_P (CUdeviceptr dst, const void *src, size_t n, CUstream stream)
#define VP_HTODA_A (dst, src, n, stream)
#define VP_DTOH_P (void *dst, CUdeviceptr src, size_t n)
#define VP_DTOH_A (dst, src, n)
#define VP_DTOHA_P (void *dst, CUdeviceptr src, size_t n, CUstream stream)
#define VP_DTOHA_A (dst, src, n, stream)
#define VP_CPY_P (CUdeviceptr dst, CUdeviceptr src, size_t n)
#define VP_CPY_A (dst, src, n)
#define VP_CPYA_P (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream)
#define VP_CPYA_A (dst, src, n, stream)
#define VP_SET_P(T) (CUdeviceptr dst, T value, size_t n)
#define VP_SET_A (dst, value, n)
#define VP_SETA_P(T) (CUdeviceptr dst, T value, size_t n, CUstream stream)
#define VP_SETA_A (dst, value, n, stream)

#define VP_C2D_P (const CUDA_MEMCPY2D *copy)
#define VP_C2DA_P (const CUDA_MEMCPY2D *copy, CUstream stream)
#define VP_C3D_P (const CUDA_MEMCPY3D *copy)
#define VP_C3DA_P (const CUDA_MEMCPY3D *copy, CUstream stream)
#define VP_C3DP_P (const CUDA_MEMCPY3D_PEER *copy)
#define VP_C3DPA_P (const CUDA_MEMCPY3D_PEER *copy, CUstream stream)
#define VP_PEER_P (CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx, size_t n)
#define VP_PEER_A (dst, dctx, src, sctx, n)
#define VP_PEERA_P (CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx, size_t n, CUstream stream)
#define VP_PEERA_A (dst, dctx, src, sctx, n, stream)

/* Copies that only write device memory as far as provenance is concerned:
 * 2D, 3D and peer copies (+ per-thread-stream symbols). */
#define VP_SHAPED_COPY_HOOKS(X)                                               \
    X(CUresult, cuMemcpy2D_v2, VP_C2D_P, (copy))                               \
    X(CUresult, cuMemcpy2D_v2_ptds, VP_C2D_P, (copy))                          \
    X(CUresult, cuMemcpy2DUnaligned_v2, VP_C2D_P, (copy))                      \
    X(CUresult, cuMemcpy2DUnaligned_v2_ptds, VP_C2D_P, (copy))                 \
    X(CUresult, cuMemcpy2DAsync_v2, VP_C2DA_P, (copy, stream))                 \
    X(CUresult, cuMemcpy2DAsync_v2_ptsz, VP_C2DA_P, (copy, stream))            \
    X(CUresult, cuMemcpy3D_v2, VP_C3D_P, (copy))                               \
    X(CUresult, cuMemcpy3D_v2_ptds, VP_C3D_P, (copy))                          \
    X(CUresult, cuMemcpy3DAsync_v2, VP_C3DA_P, (copy, stream))                 \
    X(CUresult, cuMemcpy3DAsync_v2_ptsz, VP_C3DA_P, (copy, stream))            \
    X(CUresult, cuMemcpy3DPeer, VP_C3DP_P, (copy))                             \
    X(CUresult, cuMemcpy3DPeer_ptds, VP_C3DP_P, (copy))                        \
    X(CUresult, cuMemcpy3DPeerAsync, VP_C3DPA_P, (copy, stream))               \
    X(CUresult, cuMemcpy3DPeerAsync_ptsz, VP_C3DPA_P, (copy, stream))          \
    X(CUresult, cuMemcpyPeer, VP_PEER_P, VP_PEER_A)                            \
    X(CUresult, cuMemcpyPeer_ptds, VP_PEER_P, VP_PEER_A)                       \
    X(CUresult, cuMemcpyPeerAsync, VP_PEERA_P, VP_PEERA_A)                     \
    X(CUresult, cuMemcpyPeerAsync_ptsz, VP_PEERA_P, VP_PEERA_A)

/* Host-to-device, unified, device-to-device copies and memsets, each with
 * its per-thread-stream symbol (_ptds for synchronous, _ptsz for async). */
#define VP_COPY_HOOKS(X)                                                      \
    X(CUresult, cuMemcpyHtoD_v2, VP_HTOD_P, VP_HTOD_A)                         \
    X(CUresult, cuMemcpyHtoD_v2_ptds, VP_HTOD_P, VP_HTOD_A)                    \
    X(CUresult, cuMemcpyHtoDAsync_v2, VP_HTODA_P, VP_HTODA_A)                  \
    X(CUresult, cuMemcpyHtoDAsync_v2_ptsz, VP_HTODA_P, VP_HTODA_A)             \
    X(CUresult, cuMemcpy, VP_CPY_P, VP_CPY_A)                                  \
    X(CUresult, cuMemcpy_ptds, VP_CPY_P, VP_CPY_A)                             \
    X(CUresult, cuMemcpyAsync, VP_CPYA_P, VP_CPYA_A)                           \
    X(CUresult, cuMemcpyAsync_ptsz, VP_CPYA_P, VP_CPYA_A)                      \
    X(CUresult, cuMemcpyDtoD_v2, VP_CPY_P, VP_CPY_A)                           \
    X(CUresult, cuMemcpyDtoD_v2_ptds, VP_CPY_P, VP_CPY_A)                      \
    X(CUresult, cuMemcpyDtoDAsync_v2, VP_CPYA_P, VP_CPYA_A)                    \
    X(CUresult, cuMemcpyDtoDAsync_v2_ptsz, VP_CPYA_P, VP_CPYA_A)               \
    X(CUresult, cuMemsetD8_v2, VP_SET_P(unsigned char), VP_SET_A)              \
    X(CUresult, cuMemsetD8_v2_ptds, VP_SET_P(unsigned char), VP_SET_A)         \
    X(CUresult, cuMemsetD16_v2, VP_SET_P(unsigned short), VP_SET_A)            \
    X(CUresult, cuMemsetD16_v2_ptds, VP_SET_P(unsigned short), VP_SET_A)       \
    X(CUresult, cuMemsetD32_v2, VP_SET_P(unsigned int), VP_SET_A)              \
    X(CUresult, cuMemsetD32_v2_ptds, VP_SET_P(unsigned int), VP_SET_A)         \
    X(CUresult, cuMemsetD8Async, VP_SETA_P(unsigned char), VP_SETA_A)          \
    X(CUresult, cuMemsetD8Async_ptsz, VP_SETA_P(unsigned char), VP_SETA_A)     \
    X(CUresult, cuMemsetD16Async, VP_SETA_P(unsigned short), VP_SETA_A)        \
    X(CUresult, cuMemsetD16Async_ptsz, VP_SETA_P(unsigned short), VP_SETA_A)   \
    X(CUresult, cuMemsetD32Async, VP_SETA_P(unsigned int), VP_SETA_A)          \
    X(CUresult, cuMemsetD32Async_ptsz, VP_SETA_P(unsigned int), VP_SETA_A)

/* Device-to-host copies: they only read device memory, and are wrapped so
 * that streamed memory (pager/stream.h) does not move under them. */
#define VP_READ_HOOKS(X)                                                      \
    X(CUresult, cuMemcpyDtoH_v2, VP_DTOH_P, VP_DTOH_A)                         \
    X(CUresult, cuMemcpyDtoH_v2_ptds, VP_DTOH_P, VP_DTOH_A)                    \
    X(CUresult, cuMemcpyDtoHAsync_v2, VP_DTOHA_P, VP_DTOHA_A)                  \
    X(CUresult, cuMemcpyDtoHAsync_v2_ptsz, VP_DTOHA_P, VP_DTOHA_A)

#define VP_HOOKS(X)                                                           \
    /* start-up and lookup */                                                  \
    X(CUresult, cuInit, (unsigned int flags), (flags))                         \
    X(CUresult, cuGetProcAddress,                                              \
      (const char *symbol, void **pfn, int ver, cuuint64_t flags),             \
      (symbol, pfn, ver, flags))                                               \
    X(CUresult, cuGetProcAddress_v2,                                           \
      (const char *symbol, void **pfn, int ver, cuuint64_t flags,              \
       CUdriverProcAddressQueryResult *status),                                \
      (symbol, pfn, ver, flags, status))                                       \
    /* what the program is told about memory */                                \
    X(CUresult, cuMemGetInfo_v2, (size_t *free_b, size_t *total_b),            \
      (free_b, total_b))                                                       \
    X(CUresult, cuDeviceTotalMem_v2, (size_t *bytes, CUdevice dev),            \
      (bytes, dev))                                                            \
    /* plain device allocations */                                             \
    X(CUresult, cuMemAlloc_v2, (CUdeviceptr *dptr, size_t bytes),              \
      (dptr, bytes))                                                           \
    X(CUresult, cuMemAllocPitch_v2,                                            \
      (CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,          \
       unsigned int elem),                                                     \
      (dptr, pitch, width, height, elem))                                      \
    X(CUresult, cuMemFree_v2, (CUdeviceptr dptr), (dptr))                      \
    X(CUresult, cuMemAllocManaged,                                             \
      (CUdeviceptr *dptr, size_t bytes, unsigned int flags),                   \
      (dptr, bytes, flags))                                                    \
    /* stream-ordered allocations and their pools */                           \
    X(CUresult, cuMemAllocAsync,                                               \
      (CUdeviceptr *dptr, size_t bytes, CUstream stream),                      \
      (dptr, bytes, stream))                                                   \
    X(CUresult, cuMemAllocAsync_ptsz,                                          \
      (CUdeviceptr *dptr, size_t bytes, CUstream stream),                      \
      (dptr, bytes, stream))                                                   \
    X(CUresult, cuMemAllocFromPoolAsync,                                       \
      (CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream),   \
      (dptr, bytes, pool, stream))                                             \
    X(CUresult, cuMemAllocFromPoolAsync_ptsz,                                  \
      (CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream stream),   \
      (dptr, bytes, pool, stream))                                             \
    X(CUresult, cuMemFreeAsync, (CUdeviceptr dptr, CUstream stream),           \
      (dptr, stream))                                                          \
    X(CUresult, cuMemFreeAsync_ptsz, (CUdeviceptr dptr, CUstream stream),      \
      (dptr, stream))                                                          \
    X(CUresult, cuMemPoolTrimTo, (CUmemoryPool pool, size_t keep),             \
      (pool, keep))                                                            \
    X(CUresult, cuMemPoolDestroy, (CUmemoryPool pool), (pool))                 \
    X(CUresult, cuMemPoolGetAttribute,                                         \
      (CUmemoryPool pool, CUmemPool_attribute attr, void *value),              \
      (pool, attr, value))                                                     \
    X(CUresult, cuMemPoolSetAttribute,                                         \
      (CUmemoryPool pool, CUmemPool_attribute attr, void *value),              \
      (pool, attr, value))                                                     \
    /* virtual memory management */                                            \
    X(CUresult, cuMemCreate,                                                   \
      (CUmemGenericAllocationHandle *handle, size_t bytes,                     \
       const CUmemAllocationProp *prop, unsigned long long flags),             \
      (handle, bytes, prop, flags))                                            \
    X(CUresult, cuMemRelease, (CUmemGenericAllocationHandle handle), (handle)) \
    /* arrays */                                                               \
    X(CUresult, cuArrayCreate_v2,                                              \
      (CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc), (arr, desc))          \
    X(CUresult, cuArray3DCreate_v2,                                            \
      (CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc), (arr, desc))        \
    X(CUresult, cuArrayDestroy, (CUarray arr), (arr))                          \
    /* copies and memsets: where device bytes come from (books/weights.h) */   \
    VP_COPY_HOOKS(X)                                                           \
    VP_SHAPED_COPY_HOOKS(X)                                                    \
    VP_READ_HOOKS(X)                                                           \
    /* kernel handles */                                                       \
    X(CUresult, cuModuleGetFunction,                                           \
      (CUfunction *fn, CUmodule mod, const char *name), (fn, mod, name))       \
    X(CUresult, cuLibraryGetKernel,                                            \
      (CUkernel *kern, CUlibrary lib, const char *name), (kern, lib, name))    \
    X(CUresult, cuKernelGetFunction, (CUfunction *fn, CUkernel kern),          \
      (fn, kern))                                                              \
    /* launches */                                                             \
    X(CUresult, cuLaunchKernel, VP_LAUNCH_PARAMS, VP_LAUNCH_ARGS)              \
    X(CUresult, cuLaunchKernel_ptsz, VP_LAUNCH_PARAMS, VP_LAUNCH_ARGS)         \
    X(CUresult, cuLaunchKernelEx,                                              \
      (const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra),  \
      (cfg, f, params, extra))                                                 \
    X(CUresult, cuLaunchKernelEx_ptsz,                                         \
      (const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra),  \
      (cfg, f, params, extra))                                                 \
    X(CUresult, cuLaunchCooperativeKernel, VP_COOP_PARAMS, VP_COOP_ARGS)       \
    X(CUresult, cuLaunchCooperativeKernel_ptsz, VP_COOP_PARAMS, VP_COOP_ARGS)  \
    X(CUresult, cuGraphLaunch, (CUgraphExec exec, CUstream stream),            \
      (exec, stream))                                                          \
    X(CUresult, cuGraphLaunch_ptsz, (CUgraphExec exec, CUstream stream),       \
      (exec, stream))                                                          \
    /* tensor maps: the address a GEMM's TMA descriptor stands for */          \
    X(CUresult, cuTensorMapEncodeTiled,                                        \
      (CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank,            \
       void *addr, const cuuint64_t *dim, const cuuint64_t *strides,           \
       const cuuint32_t *box, const cuuint32_t *estrides,                      \
       CUtensorMapInterleave il, CUtensorMapSwizzle sw,                        \
       CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob),                \
      (map, type, rank, addr, dim, strides, box, estrides, il, sw, l2, oob))   \
    X(CUresult, cuTensorMapEncodeIm2col,                                       \
      (CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank,            \
       void *addr, const cuuint64_t *dim, const cuuint64_t *strides,           \
       const int *lower, const int *upper, cuuint32_t cpp, cuuint32_t ppc,     \
       const cuuint32_t *estrides, CUtensorMapInterleave il,                   \
       CUtensorMapSwizzle sw, CUtensorMapL2promotion l2,                       \
       CUtensorMapFloatOOBfill oob),                                           \
      (map, type, rank, addr, dim, strides, lower, upper, cpp, ppc, estrides,  \
       il, sw, l2, oob))                                                       \
    X(CUresult, cuTensorMapEncodeIm2colWide,                                   \
      (CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank,            \
       void *addr, const cuuint64_t *dim, const cuuint64_t *strides,           \
       int lower, int upper, cuuint32_t cpp, cuuint32_t ppc,                   \
       const cuuint32_t *estrides, CUtensorMapInterleave il,                   \
       CUtensorMapIm2ColWideMode mode, CUtensorMapSwizzle sw,                  \
       CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob),                \
      (map, type, rank, addr, dim, strides, lower, upper, cpp, ppc, estrides,  \
       il, mode, sw, l2, oob))                                                 \
    X(CUresult, cuTensorMapReplaceAddress, (CUtensorMap *map, void *addr),    \
      (map, addr))                                                             \
    /* stream capture: the pager stays quiet while one is in progress */       \
    X(CUresult, cuStreamBeginCapture_v2,                                       \
      (CUstream stream, CUstreamCaptureMode mode), (stream, mode))             \
    X(CUresult, cuStreamBeginCapture_v2_ptsz,                                  \
      (CUstream stream, CUstreamCaptureMode mode), (stream, mode))             \
    X(CUresult, cuStreamEndCapture, (CUstream stream, CUgraph *graph),         \
      (stream, graph))                                                         \
    X(CUresult, cuStreamEndCapture_ptsz, (CUstream stream, CUgraph *graph),    \
      (stream, graph))                                                         \
    /* graphs: what a replay touches, from the operations captured into it  \
     * (pager/graphs.h) */                                                     \
    X(CUresult, cuGraphInstantiateWithFlags,                                   \
      (CUgraphExec *exec, CUgraph graph, unsigned long long flags),            \
      (exec, graph, flags))                                                    \
    X(CUresult, cuGraphInstantiateWithParams,                                  \
      (CUgraphExec *exec, CUgraph graph, CUDA_GRAPH_INSTANTIATE_PARAMS *p),    \
      (exec, graph, p))                                                        \
    X(CUresult, cuGraphInstantiateWithParams_ptsz,                             \
      (CUgraphExec *exec, CUgraph graph, CUDA_GRAPH_INSTANTIATE_PARAMS *p),    \
      (exec, graph, p))                                                        \
    X(CUresult, cuGraphExecUpdate_v2,                                          \
      (CUgraphExec exec, CUgraph graph, CUgraphExecUpdateResultInfo *info),    \
      (exec, graph, info))                                                     \
    X(CUresult, cuGraphExecDestroy, (CUgraphExec exec), (exec))                \
    X(CUresult, cuGraphDestroy, (CUgraph graph), (graph))                      \
    /* what paged memory cannot do */                                          \
    X(CUresult, cuIpcGetMemHandle, (CUipcMemHandle *handle, CUdeviceptr dptr), \
      (handle, dptr))

/* Driver functions vpage calls for its own purposes (no wrapper). */
#define VP_DRIVER_USES(X)                                                     \
    X(CUresult, cuCtxGetDevice, (CUdevice *dev))                               \
    X(CUresult, cuDeviceGetMemPool, (CUmemoryPool *pool, CUdevice dev))        \
    X(CUresult, cuDeviceGetDefaultMemPool, (CUmemoryPool *pool, CUdevice dev)) \
    X(CUresult, cuStreamSynchronize, (CUstream stream))                        \
    X(CUresult, cuCtxSynchronize, (void))                                      \
    X(CUresult, cuStreamIsCapturing,                                           \
      (CUstream stream, CUstreamCaptureStatus *status))                        \
    X(CUresult, cuDeviceGetGraphMemAttribute,                                  \
      (CUdevice dev, CUgraphMem_attribute attr, void *value))                  \
    X(CUresult, cuArrayGetMemoryRequirements,                                  \
      (CUDA_ARRAY_MEMORY_REQUIREMENTS *req, CUarray arr, CUdevice dev))        \
    X(CUresult, cuKernelGetName, (const char **name, CUkernel kern))           \
    X(CUresult, cuFuncGetName, (const char **name, CUfunction fn))             \
    X(CUresult, cuKernelGetParamInfo,                                          \
      (CUkernel kern, size_t idx, size_t *off, size_t *size))                  \
    X(CUresult, cuFuncGetParamInfo,                                            \
      (CUfunction fn, size_t idx, size_t *off, size_t *size))                  \
    /* the pager (pager/demand.c) */                                           \
    X(CUresult, cuDeviceGet, (CUdevice *dev, int ordinal))                     \
    X(CUresult, cuDeviceGetAttribute,                                          \
      (int *value, CUdevice_attribute attr, CUdevice dev))                     \
    X(CUresult, cuDevicePrimaryCtxRetain, (CUcontext *ctx, CUdevice dev))      \
    X(CUresult, cuCtxSetCurrent, (CUcontext ctx))                              \
    X(CUresult, cuStreamCreate, (CUstream *stream, unsigned int flags))        \
    X(CUresult, cuStreamDestroy_v2, (CUstream stream))                         \
    X(CUresult, cuMemAdvise_v2,                                                \
      (CUdeviceptr p, size_t n, CUmem_advise advice, CUmemLocation loc))       \
    X(CUresult, cuMemPrefetchAsync_v2,                                         \
      (CUdeviceptr p, size_t n, CUmemLocation loc, unsigned int flags,         \
       CUstream stream))                                                       \
    /* streaming (pager/stream/) */                                           \
    X(CUresult, cuMemAddressReserve,                                           \
      (CUdeviceptr *p, size_t n, size_t align, CUdeviceptr addr,               \
       unsigned long long flags))                                              \
    X(CUresult, cuMemAddressFree, (CUdeviceptr p, size_t n))                   \
    X(CUresult, cuMemMap,                                                      \
      (CUdeviceptr p, size_t n, size_t off, CUmemGenericAllocationHandle h,    \
       unsigned long long flags))                                              \
    X(CUresult, cuMemUnmap, (CUdeviceptr p, size_t n))                         \
    X(CUresult, cuMemSetAccess,                                                \
      (CUdeviceptr p, size_t n, const CUmemAccessDesc *desc, size_t count))    \
    X(CUresult, cuMemGetAllocationGranularity,                                 \
      (size_t *g, const CUmemAllocationProp *prop,                             \
       CUmemAllocationGranularity_flags option))                               \
    X(CUresult, cuEventCreate, (CUevent *ev, unsigned int flags))              \
    X(CUresult, cuEventRecord, (CUevent ev, CUstream stream))                  \
    X(CUresult, cuEventQuery, (CUevent ev))                                    \
    X(CUresult, cuEventSynchronize, (CUevent ev))                              \
    X(CUresult, cuModuleLoadData, (CUmodule *mod, const void *image))          \
    X(CUresult, cuMemHostAlloc, (void **p, size_t n, unsigned int flags))      \
    X(CUresult, cuStreamCreateWithPriority,                                    \
      (CUstream *stream, unsigned int flags, int priority))                    \
    X(CUresult, cuCtxGetStreamPriorityRange, (int *least, int *greatest))      \
    /* the pager threads (pager/shared.c) */                                   \
    X(CUresult, cuThreadExchangeStreamCaptureMode, (CUstreamCaptureMode *mode))

/* Hook ids, in list order: index into counters and the name table. */
enum vp_hook_id {
#define VP_X(ret, name, params, args) VP_HOOK_##name,
    VP_HOOKS(VP_X)
#undef VP_X
    VP_HOOK_COUNT
};

/* Typed pointers to the real functions. */
#define VP_X(ret, name, params, args) typedef ret (*vp_pfn_##name) params;
VP_HOOKS(VP_X)
#undef VP_X
#define VP_X(ret, name, params) typedef ret (*vp_pfn_##name) params;
VP_DRIVER_USES(VP_X)
#undef VP_X

/* The exported symbol name of a hook id ("?" out of range). */
const char *vp_hook_name(enum vp_hook_id id);

#endif
