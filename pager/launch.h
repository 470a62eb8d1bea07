/* launch.h - what a kernel launch touches, read from its parameters.
 *
 * Contract
 *   A kernel parameter gives a pointer, not an extent: every 8-byte word of
 *   every parameter (by-value structs included: TensorIterator's arrays of
 *   data pointers) that falls inside the span of paged allocations
 *   (vp_pager()->span) is taken as an address the kernel touches, and so
 *   is the address a 128-byte TMA descriptor was made for
 *   (books/registry.h). A kernel whose parameters cannot be read (layout
 *   unknown), or with more such words than VP_LAUNCH_MAX_PTRS, or with a
 *   TMA descriptor vpage did not see made, may touch anything: its
 *   operation is "all". No lock, no driver call on the launching thread
 *   beyond the pager's op_begin.
 */
#ifndef VPAGE_PAGER_LAUNCH_H
#define VPAGE_PAGER_LAUNCH_H

#include "../books/registry.h"

#define VP_LAUNCH_MAX_PTRS 512

/* A kernel launch with its parameters (the kernelParams array, or the
 * packed buffer of CU_LAUNCH_PARAM_BUFFER_POINTER in extra), before it is
 * issued: the pager's op_begin for it. Returns 1 when vp_pager()->op_end
 * must follow the launch. */
int vp_pager_launch(struct vp_kernel *k, void **params, void **extra);

#endif
