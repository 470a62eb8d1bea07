/* query.h - what the driver says about devices, contexts, pools, captures
 * and kernels.
 *
 * Contract
 *   Questions only: no helper here changes the driver's state. Each
 *   answers "don't know" (the value given for it) when the driver lacks
 *   the function or refuses, and takes no vpage lock (driver/driver.h).
 */
#ifndef VPAGE_DRIVER_QUERY_H
#define VPAGE_DRIVER_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/hooks.h"

/* Ordinal of the current context's device, or -1 with no current context. */
int vp_drv_current_device(void);

/* An attribute of device ordinal dev, or fallback when it cannot be read. */
int vp_drv_device_attr(int dev, CUdevice_attribute attr, int fallback);

/* The device's host NUMA node for host-located memory (0 when unknown). */
int vp_drv_host_numa(int dev);

/* Reserved and used bytes of a memory pool. Returns 0, or -1. */
int vp_drv_pool_usage(CUmemoryPool pool, uint64_t *reserved, uint64_t *used);

/* True while stream is being captured into a graph (ptsz: the call came
 * through a per-thread-stream symbol). Pool queries are not made then: in
 * global capture mode they invalidate the capture. */
int vp_drv_capturing(CUstream stream, int ptsz);

/* Bytes the graph memory pool of dev holds (graph memory nodes), or 0. */
uint64_t vp_drv_graph_reserved(int dev);

/* The pool cuMemAllocAsync takes from on dev, or NULL. */
CUmemoryPool vp_drv_default_pool(int dev);

/* True when the pool cuMemAllocAsync takes from on dev is the device's own
 * default pool, not one the program made current; also when the driver
 * cannot say. */
int vp_drv_pool_is_default(int dev);

/* A kernel handle's name (is_function: it is a CUfunction; else a CUkernel,
 * perhaps cast to CUfunction), "?" when the driver cannot say. */
const char *vp_drv_kernel_name(const void *handle, int is_function);

/* Offset and size of parameter i of a kernel handle. Returns 0, or -1 past
 * the last parameter (or when the driver cannot say). */
int vp_drv_param_info(const void *handle, int is_function, size_t i, size_t *off, size_t *size);

#endif
