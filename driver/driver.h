/* driver.h - the one narrow layer between vpage and the real driver:
 * loading it.
 *
 * Contract
 *   driver/ is the only code that calls libcuda. vp_driver_open() is the
 *   only place that loads it (VPAGE_LIBCUDA, default libcuda.so.1) and
 *   resolves its symbols, with the real dlsym on that handle, into struct
 *   vp_real. It runs once, inside vp_init() (core/init.h); vp_real is
 *   read-only afterwards. Members are NULL where the loaded driver lacks the
 *   symbol: every caller checks.
 *
 *   Who calls through vp_real: the files of driver/, each with helpers of
 *   one concern (query.h: what the driver says; alloc.h: the program's
 *   allocation families passed through; vmm.h: address ranges and physical
 *   memory; exec.h: contexts, streams, events, copies, kernels, managed
 *   memory), and the shims' pass-through (interpose/shims.c). The rest of
 *   vpage calls the helpers, so a fake driver or a fault injector sits under
 *   exactly them. A helper calls the real function directly (vpage never
 *   re-enters its own wrappers) and takes no vpage lock.
 *
 *   The real dlsym of the C library is found here too (vp_dlsym_real): the
 *   file hooks (interpose/libc.c) and vpage's own dlsym need it before the
 *   driver is loaded.
 */
#ifndef VPAGE_DRIVER_DRIVER_H
#define VPAGE_DRIVER_DRIVER_H

#include <stdint.h>

#include "../common/hooks.h"

struct vp_real {
#define VP_X(ret, name, params, args) vp_pfn_##name name;
    VP_HOOKS(VP_X)
#undef VP_X
#define VP_X(ret, name, params) vp_pfn_##name name;
    VP_DRIVER_USES(VP_X)
#undef VP_X
};

/* Filled once by vp_driver_open(). */
extern struct vp_real vp_real;

/* The real function behind an exported name (its shim has the same name:
 * this says which one is meant). */
#define VP_REAL(name) (vp_real.name)

/* Loads the driver. Returns 0, or -1 (reported) when it cannot be loaded. */
int vp_driver_open(void);

/* True when addr lies inside the loaded driver library. */
int vp_driver_owns(const void *addr);

/* The file the driver was loaded from ("" before, or without one). */
const char *vp_driver_path(void);

/* The real dlsym of the C library (uninstrumented: the sanitizer runtimes
 * look symbols up through it before they are ready). */
void *vp_dlsym_real(void *handle, const char *name);

/* The real dlsym itself, found on first use; read by interpose/dlsym.c's
 * assembly, which jumps to it. */
typedef void *(*vp_dlsym_fn)(void *, const char *);
vp_dlsym_fn vp_dlsym_get(void);

#endif
