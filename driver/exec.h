/* exec.h - contexts, streams, events, copies, kernels and managed memory,
 * for vpage's own work (the pagers, the stream-ordered cache).
 *
 * Contract
 *   The pagers' threads make their device current with
 *   vp_drv_use_primary_ctx and issue their work on streams of their own;
 *   events tell them when the program's work (or their own) is done. A
 *   missing real function makes the helper fail (CUDA_ERROR_NOT_FOUND),
 *   except where said. No helper takes a vpage lock.
 */
#ifndef VPAGE_DRIVER_EXEC_H
#define VPAGE_DRIVER_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/hooks.h"

/* True when the driver has the context, stream, event and copy calls the
 * stream pager needs. */
int vp_drv_exec_usable(void);
/* True when it has those the demand pager needs (managed memory, advice,
 * prefetch). */
int vp_drv_managed_usable(void);

/* Makes dev's primary context current on the calling thread, retaining it
 * into *ctx the first time. Returns 0, or -1. */
int vp_drv_use_primary_ctx(CUcontext *ctx, int dev);
CUresult vp_drv_set_ctx(CUcontext ctx);

/* Puts the calling thread in relaxed stream-capture mode (*mode: the
 * wanted one, then the one it had). Returns 1 when it changed. */
int vp_drv_capture_mode(CUstreamCaptureMode *mode);

/* A non-blocking stream of the current context; high: of the greatest
 * priority when the driver has priorities. */
CUresult vp_drv_stream_new(CUstream *s, int high);
void vp_drv_stream_drop(CUstream s);
CUresult vp_drv_sync(CUstream s);
/* Waits for all work of the calling thread's current context. */
CUresult vp_drv_ctx_sync(void);

/* Events without timing: made, recorded on a stream, asked (CUDA_SUCCESS
 * once what came before the record is done, CUDA_ERROR_NOT_READY before)
 * and waited for. */
CUresult vp_drv_event_new(CUevent *ev);
CUresult vp_drv_record(CUevent ev, CUstream s);
CUresult vp_drv_query(CUevent ev);
CUresult vp_drv_wait(CUevent ev);

/* n bytes from src to dst, device memory both, in order on s. */
CUresult vp_drv_copy(CUdeviceptr dst, CUdeviceptr src, uint64_t n, CUstream s);

/* The kernel name of a PTX or cubin image, loaded into the current context. */
CUresult vp_drv_load_kernel(const char *image, const char *name, CUfunction *fn);
/* A one-dimensional launch of fn: blocks x threads, on s. */
CUresult vp_drv_launch(CUfunction fn, unsigned blocks, unsigned threads, CUstream s, void **args);

/* Pinned host memory the devices can read and write. */
CUresult vp_drv_host_alloc(void **p, size_t n);

/* Managed memory: advice for dev (or the host: host), and a prefetch of
 * its pages to dev (or to the host) on s. */
CUresult vp_drv_advise(CUdeviceptr p, uint64_t n, CUmem_advise advice, int dev, int host);
CUresult vp_drv_prefetch(CUdeviceptr p, uint64_t n, int dev, int host, CUstream s);

#endif
