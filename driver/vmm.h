/* vmm.h - the driver's virtual memory management: address ranges,
 * physical memory, mappings and access.
 *
 * Contract
 *   Used by the books (the program's own cuMemCreate/cuMemRelease) and by
 *   the stream pager, whose moves are made of exactly these calls: a piece
 *   is unmapped from one physical handle and mapped to another
 *   (pager/stream.h). Between the two the address maps nothing and a kernel
 *   touching it faults the context: callers fence first. No helper takes a
 *   vpage lock.
 */
#ifndef VPAGE_DRIVER_VMM_H
#define VPAGE_DRIVER_VMM_H

#include <stdint.h>

#include "../common/hooks.h"

/* True when the driver has every call streaming needs (these, events,
 * copies, contexts: exec.h). */
int vp_drv_vmm_usable(void);

/* A range of len bytes of address space aligned to align (0: the
 * driver's), and its return. */
CUresult vp_drv_reserve(CUdeviceptr *va, uint64_t len, uint64_t align);
CUresult vp_drv_unreserve(CUdeviceptr va, uint64_t len);

/* Physical memory of bytes (a multiple of vp_drv_granularity), pinned on
 * device dev or, host, in host RAM on dev's NUMA node. */
CUresult vp_drv_create_on(CUmemGenericAllocationHandle *h, uint64_t bytes, int dev, int host);
/* The program's cuMemCreate and cuMemRelease. */
CUresult vp_drv_create(CUmemGenericAllocationHandle *h, size_t bytes, const CUmemAllocationProp *prop,
                       unsigned long long flags);
CUresult vp_drv_release(CUmemGenericAllocationHandle h);

/* Maps h (offset 0) at va, len bytes; no access is given. */
CUresult vp_drv_map(CUdeviceptr va, uint64_t len, CUmemGenericAllocationHandle h);
/* Maps and gives dev read-write access; on failure nothing stays mapped. */
CUresult vp_drv_map_for(CUdeviceptr va, uint64_t len, CUmemGenericAllocationHandle h, int dev);
CUresult vp_drv_unmap(CUdeviceptr va, uint64_t len);
/* Read-write access for dev to what is mapped at va..va+len. */
CUresult vp_drv_allow(CUdeviceptr va, uint64_t len, int dev);

/* The recommended granularity both device- and host-located memory of dev
 * accept (the larger), or 0 when the driver does not say. */
uint64_t vp_drv_granularity(int dev);

#endif
