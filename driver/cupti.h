/* cupti.h - kernel times from CUPTI's activity records, for the page
 * table's launches (VPAGE_CUPTI, pager/record.h).
 *
 * Contract
 *   The only code that calls CUPTI. vp_cupti_start loads it at run time,
 *   once: a copy already in the process, else the one beside the CUDA
 *   runtime the program loaded (libcudart.so*: PyTorch's wheels keep
 *   libcupti.so.13 there), else by name (libcupti.so.13, .12, libcupti.so:
 *   the toolkit's, found as the dynamic loader finds libraries). It registers activity buffers and enables
 *   concurrent-kernel and external-correlation records, the driver's and
 *   the runtime's launch records, and a flush every 200 ms; it subscribes to
 *   no callbacks (CUPTI allows one subscriber, and torch.profiler or
 *   Nsight may want it), yet another tool that registers activity buffers
 *   after vpage takes the records from it. Without CUPTI, or when it
 *   refuses, vp_cupti_start says why once and everything else does
 *   nothing.
 *
 *   A launch is named by an id of the caller's: vp_cupti_push(id, kernel)
 *   before it is issued and vp_cupti_pop() after, on the issuing thread. A
 *   launch made at the driver is joined to its kernel through the external-
 *   correlation record of that id; one made through the CUDA runtime (as
 *   PyTorch's are: its API record begins before the push, and no external
 *   record comes) through the runtime's launch record whose call spans the
 *   push's time on the same thread. Where neither kind of record comes at
 *   all (PyTorch under CUDA 13 on an H100: kernel records only), a kernel's
 *   record is joined to the oldest launch of the same kernel name pushed
 *   before the kernel began and not joined yet (launches of one kernel run
 *   in the order they were issued on a stream; two streams running one
 *   kernel at once may swap their times). Its
 *   kernel's device start and end come back to the sink given to
 *   vp_cupti_start, as (id, nanoseconds on the device), from a buffer
 *   CUPTI completes (its thread, or inside a driver call) or from
 *   vp_cupti_flush; a kernel of a launch never pushed, or whose id
 *   arrives after the map of correlations wrapped (VP_CUPTI_MAP entries),
 *   comes back not at all.
 *
 *   The record layouts read are the fields of CUpti_ActivityKernel4 to
 *   CUpti_ActivityKernel10 (CUDA 9 to 13; the offsets did not move; the
 *   kernel's name is a pointer at 104),
 *   CUpti_ActivityExternalCorrelation and CUpti_ActivityAPI, so cupti.h is
 *   not needed to build.
 *
 *   Locks: two mutexes of its own (the map's, then the waiting launches'
 *   by name), never held across a CUPTI or driver call.
 */
#ifndef VPAGE_DRIVER_CUPTI_H
#define VPAGE_DRIVER_CUPTI_H

#include <stdint.h>

#define VP_CUPTI_MAP (1u << 16)

typedef void (*vp_cupti_sink)(uint64_t id, uint64_t dur_ns);

/* Loads and enables CUPTI, once (later calls return the first's result).
 * loud: say why at warning level when it cannot (else info). Returns 0,
 * or -1 when kernels will not be timed. */
int vp_cupti_start(vp_cupti_sink sink, int loud);

/* True once vp_cupti_start succeeded. */
int vp_cupti_on(void);

/* Around the launch of id, of the kernel named kernel (nothing when CUPTI
 * is off). */
void vp_cupti_push(uint64_t id, const char *kernel);
void vp_cupti_pop(void);

/* Hands every record CUPTI holds to the sink (at exit). */
void vp_cupti_flush(void);

/* The child after fork: CUPTI is the parent's. */
void vp_cupti_reset_child(void);

#endif
