/* registry.h - the kernels a program launches: name and parameter layout.
 *
 * Contract
 *   Owns one entry per kernel handle vpage has seen: CUkernel handles from
 *   cuLibraryGetKernel, CUfunction handles from cuModuleGetFunction and
 *   cuKernelGetFunction, and any handle first met at a launch (ATen and
 *   cuBLAS launch CUkernel handles cast to CUfunction). Entries are never
 *   freed: a pointer returned stays valid for the life of the process.
 *   The parameter layout (offset and size of each parameter, from
 *   cuKernelGetParamInfo or cuFuncGetParamInfo) is read once, at the first
 *   launch, outside any lock.
 *
 *   States of an entry's layout:  UNKNOWN --first launch--> READING -->
 *   KNOWN (nparams >= 0) or NONE (the driver could not tell).
 *
 *   Lookups take the registry mutex; the launching thread keeps a one-entry
 *   cache of its last handle, so a loop of one kernel takes no lock.
 */
#ifndef VPAGE_INTERPOSE_REGISTRY_H
#define VPAGE_INTERPOSE_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "../common/vp.h"

enum vp_handle_kind { VP_HANDLE_UNKNOWN, VP_HANDLE_KERNEL, VP_HANDLE_FUNCTION };
enum vp_layout_state { VP_LAYOUT_UNKNOWN, VP_LAYOUT_READING, VP_LAYOUT_KNOWN, VP_LAYOUT_NONE };

#define VP_MAX_PARAMS 256

struct vp_kernel {
    const void *handle;
    enum vp_handle_kind kind;
    char name[VP_KERNEL_NAME];
    atomic_uint_fast64_t launches;
    atomic_int layout; /* enum vp_layout_state */
    int nparams;
    uint32_t *param_off, *param_size; /* nparams each, when KNOWN */
};

/* Records a handle and its name (NULL: ask the driver). kind says what the
 * handle is when known. Returns the entry, or NULL when out of memory. */
struct vp_kernel *vp_registry_add(const void *handle, enum vp_handle_kind kind, const char *name);

/* Entry for handle, added on first sight; counts one launch and reads the
 * layout at the first. NULL when out of memory. */
struct vp_kernel *vp_registry_launch(const void *handle);

/* Entry for handle or NULL, without adding. */
struct vp_kernel *vp_registry_find(const void *handle);

/* Calls fn for every entry (under the registry mutex; fn must not call into
 * the driver or the registry). */
void vp_registry_each(void (*fn)(struct vp_kernel *k, void *arg), void *arg);

/* Tensor maps (CUtensorMap, the 128-byte TMA descriptors Hopper GEMMs get
 * as parameters): the encoding of the address inside is not documented,
 * so the address each encoded map was made for is recorded when it is
 * made (cuTensorMapEncode*, cuTensorMapReplaceAddress), keyed by the map's
 * bytes, and looked up when a 128-byte parameter is launched. The table
 * keeps the latest VP_TMAPS maps; an older one is not found (its kernel is
 * then taken to touch every streamed allocation, never none). */
#define VP_TMAPS 4096
void vp_registry_tmap_add(const void *map, uint64_t addr);

/* The address map (128 bytes) was made for, or 0 if it is not known. */
uint64_t vp_registry_tmap_addr(const void *map);

void vp_registry_lock(void);
void vp_registry_unlock(void);

#endif
