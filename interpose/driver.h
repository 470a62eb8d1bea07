/* driver.h - the one narrow layer between vpage and the real driver.
 *
 * Contract
 *   vp_driver_open() is the only place that loads libcuda (VPAGE_LIBCUDA,
 *   default libcuda.so.1) and resolves its symbols, with the real dlsym on
 *   that handle, into struct vp_real (interpose/hooks.h). It runs once,
 *   inside vp_init(). The helpers below are the driver queries the pager
 *   needs; each calls the real function directly, so vpage never re-enters
 *   its own wrappers, and none holds a vpage lock.
 */
#ifndef VPAGE_INTERPOSE_DRIVER_H
#define VPAGE_INTERPOSE_DRIVER_H

#include <stdint.h>

#include "hooks.h"

/* Loads the driver. Returns 0, or -1 (reported) when it cannot be loaded. */
int vp_driver_open(void);

/* True when addr lies inside the loaded driver library. */
int vp_driver_owns(const void *addr);

/* The real dlsym of the C library (interpose/dlsym.c). */
void *vp_dlsym_real(void *handle, const char *name);

/* Ordinal of the current context's device, or -1 with no current context. */
int vp_drv_current_device(void);

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

#endif
