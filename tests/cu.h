/* cu.h - the driver functions the tests call, reached the three ways real
 * programs reach them:
 *   WAY_PROCADDR  dlopen("libcuda.so.1") + dlsym(cuGetProcAddress_v2), then
 *                 every function through it (what libcudart does);
 *   WAY_DLSYM     dlsym of each exported name on the driver handle (what the
 *                 static cudart copies in cuBLAS/cuDNN do);
 *   WAY_LINKED    the addresses of the symbols this binary links with -lcuda.
 * Test binaries run with LD_PRELOAD=libvpage.so and the fake driver first
 * on LD_LIBRARY_PATH (tests/meson.build).
 */
#ifndef VPAGE_TESTS_CU_H
#define VPAGE_TESTS_CU_H

#include <cuda.h>
#include <stdint.h>

#undef cuGetProcAddress

enum way { WAY_PROCADDR, WAY_DLSYM, WAY_LINKED };

/* X(api name for cuGetProcAddress, exported symbol, return type, (parameters)) */
#define CU_FUNCS(X)                                                                      \
    X(cuInit, cuInit, CUresult, (unsigned))                                            \
    X(cuDeviceGet, cuDeviceGet, CUresult, (CUdevice *, int))                           \
    X(cuDeviceTotalMem, cuDeviceTotalMem_v2, CUresult, (size_t *, CUdevice))           \
    X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, CUresult, (CUcontext *, CUdevice)) \
    X(cuCtxSetCurrent, cuCtxSetCurrent, CUresult, (CUcontext))                         \
    X(cuCtxSynchronize, cuCtxSynchronize, CUresult, (void))                            \
    X(cuStreamSynchronize, cuStreamSynchronize, CUresult, (CUstream))                  \
    X(cuStreamCreate, cuStreamCreate, CUresult, (CUstream *, unsigned))                \
    X(cuMemGetInfo, cuMemGetInfo_v2, CUresult, (size_t *, size_t *))                   \
    X(cuMemAlloc, cuMemAlloc_v2, CUresult, (CUdeviceptr *, size_t))                    \
    X(cuMemAllocPitch, cuMemAllocPitch_v2,                                               \
      CUresult, (CUdeviceptr *, size_t *, size_t, size_t, unsigned))                   \
    X(cuMemFree, cuMemFree_v2, CUresult, (CUdeviceptr))                                \
    X(cuMemAllocManaged, cuMemAllocManaged, CUresult, (CUdeviceptr *, size_t, unsigned)) \
    X(cuMemAllocAsync, cuMemAllocAsync, CUresult, (CUdeviceptr *, size_t, CUstream))   \
    X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync,                                  \
      CUresult, (CUdeviceptr *, size_t, CUmemoryPool, CUstream))                       \
    X(cuMemFreeAsync, cuMemFreeAsync, CUresult, (CUdeviceptr, CUstream))               \
    X(cuMemPoolCreate, cuMemPoolCreate, CUresult, (CUmemoryPool *, const CUmemPoolProps *)) \
    X(cuMemPoolDestroy, cuMemPoolDestroy, CUresult, (CUmemoryPool))                    \
    X(cuMemPoolTrimTo, cuMemPoolTrimTo, CUresult, (CUmemoryPool, size_t))              \
    X(cuMemPoolGetAttribute, cuMemPoolGetAttribute,                                      \
      CUresult, (CUmemoryPool, CUmemPool_attribute, void *))                           \
    X(cuMemPoolSetAttribute, cuMemPoolSetAttribute,                                      \
      CUresult, (CUmemoryPool, CUmemPool_attribute, void *))                           \
    X(cuDeviceGetMemPool, cuDeviceGetMemPool, CUresult, (CUmemoryPool *, CUdevice))    \
    X(cuDeviceSetMemPool, cuDeviceSetMemPool, CUresult, (CUdevice, CUmemoryPool))      \
    X(cuMemCreate, cuMemCreate,                                                          \
      CUresult, (CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,  \
                   unsigned long long))                                                  \
    X(cuMemRelease, cuMemRelease, CUresult, (CUmemGenericAllocationHandle))            \
    X(cuMemAddressReserve, cuMemAddressReserve,                                          \
      CUresult, (CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long))      \
    X(cuMemMap, cuMemMap,                                                                \
      CUresult, (CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long)) \
    X(cuMemUnmap, cuMemUnmap, CUresult, (CUdeviceptr, size_t))                         \
    X(cuMemAddressFree, cuMemAddressFree, CUresult, (CUdeviceptr, size_t))             \
    X(cuArrayCreate, cuArrayCreate_v2, CUresult, (CUarray *, const CUDA_ARRAY_DESCRIPTOR *)) \
    X(cuArray3DCreate, cuArray3DCreate_v2,                                               \
      CUresult, (CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *))                          \
    X(cuArrayDestroy, cuArrayDestroy, CUresult, (CUarray))                             \
    X(cuModuleLoadData, cuModuleLoadData, CUresult, (CUmodule *, const void *))        \
    X(cuModuleGetFunction, cuModuleGetFunction, CUresult, (CUfunction *, CUmodule, const char *)) \
    X(cuLibraryLoadData, cuLibraryLoadData,                                              \
      CUresult, (CUlibrary *, const void *, CUjit_option *, void **, unsigned,         \
                   CUlibraryOption *, void **, unsigned))                                \
    X(cuLibraryGetKernel, cuLibraryGetKernel, CUresult, (CUkernel *, CUlibrary, const char *)) \
    X(cuKernelGetFunction, cuKernelGetFunction, CUresult, (CUfunction *, CUkernel))    \
    X(cuLaunchKernel, cuLaunchKernel,                                                    \
      CUresult, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, \
                   unsigned, CUstream, void **, void **))                                \
    X(cuLaunchKernelEx, cuLaunchKernelEx,                                                \
      CUresult, (const CUlaunchConfig *, CUfunction, void **, void **))                \
    X(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel,                              \
      CUresult, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, \
                   unsigned, CUstream, void **))                                         \
    X(cuGraphLaunch, cuGraphLaunch, CUresult, (CUgraphExec, CUstream))                   \
    X(cuStreamBeginCapture, cuStreamBeginCapture_v2, CUresult, (CUstream, CUstreamCaptureMode)) \
    X(cuStreamEndCapture, cuStreamEndCapture, CUresult, (CUstream, CUgraph *))           \
    X(cuGraphInstantiate, cuGraphInstantiateWithFlags,                                   \
      CUresult, (CUgraphExec *, CUgraph, unsigned long long))                            \
    X(cuGraphExecUpdate, cuGraphExecUpdate_v2,                                           \
      CUresult, (CUgraphExec, CUgraph, CUgraphExecUpdateResultInfo *))                   \
    X(cuGraphExecDestroy, cuGraphExecDestroy, CUresult, (CUgraphExec))                   \
    X(cuMemcpyHtoD, cuMemcpyHtoD_v2, CUresult, (CUdeviceptr, const void *, size_t))     \
    X(cuMemcpyHtoDAsync, cuMemcpyHtoDAsync_v2, CUresult, (CUdeviceptr, const void *, size_t, CUstream)) \
    X(cuMemcpy, cuMemcpy, CUresult, (CUdeviceptr, CUdeviceptr, size_t))                  \
    X(cuMemcpyDtoD, cuMemcpyDtoD_v2, CUresult, (CUdeviceptr, CUdeviceptr, size_t))       \
    X(cuMemcpyDtoH, cuMemcpyDtoH_v2, CUresult, (void *, CUdeviceptr, size_t))            \
    X(cuTensorMapEncodeTiled, cuTensorMapEncodeTiled,                                    \
      CUresult, (CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *, const cuuint64_t *, \
                   const cuuint64_t *, const cuuint32_t *, const cuuint32_t *,           \
                   CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion,    \
                   CUtensorMapFloatOOBfill))                                            \
    X(cuMemsetD8, cuMemsetD8_v2, CUresult, (CUdeviceptr, unsigned char, size_t))         \
    X(cuMemsetD32Async, cuMemsetD32Async, CUresult, (CUdeviceptr, unsigned int, size_t, CUstream)) \
    X(cuMemcpy2D, cuMemcpy2D_v2, CUresult, (const CUDA_MEMCPY2D *))                      \
    X(cuMemcpyPeer, cuMemcpyPeer, CUresult, (CUdeviceptr, CUcontext, CUdeviceptr, CUcontext, size_t))

struct cu {
#define X(api, sym, ret, params) ret(*api) params;
    CU_FUNCS(X)
#undef X
    void *handle;
};

/* Fills c the given way and calls cuInit(0) + makes device 0's primary
 * context current. Returns 0, or -1 (with a message) if any lookup failed. */
int cu_load(struct cu *c, enum way w);

/* Makes dev's primary context current. */
void cu_use_device(struct cu *c, int dev);

/* What the fake device holds (fake driver's books) and vpage's count. */
uint64_t fake_used(int dev);
uint64_t fake_peak(int dev);
uint64_t vpage_now(int dev);
uint64_t vpage_peak_of(int dev);

/* The library an address belongs to ("" if none). */
const char *lib_of(const void *p);
/* The exported symbol at exactly p, or "". */
const char *sym_of(const void *p);

static inline const char *way_name(enum way w)
{
    return w == WAY_PROCADDR ? "cuGetProcAddress" : w == WAY_DLSYM ? "dlsym" : "-lcuda";
}

#endif
