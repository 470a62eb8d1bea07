/* hooks.h - the exported shims and how a lookup finds them.
 *
 * Contract
 *   Every row of VP_HOOKS (common/hooks.h) is an exported function of
 *   libvpage.so with the driver's own name and signature (interpose/shims.c,
 *   and cuGetProcAddress in interpose/dlsym.c). vp_hook_wrapper maps an
 *   exported symbol name to vpage's wrapper for it, for dlsym and
 *   cuGetProcAddress (interpose/dlsym.c).
 */
#ifndef VPAGE_INTERPOSE_HOOKS_H
#define VPAGE_INTERPOSE_HOOKS_H

#include "../common/hooks.h"

/* Declarations of the exported shims. */
#define VP_X(ret, name, params, args) ret name params;
VP_HOOKS(VP_X)
#undef VP_X

/* The wrapper for an exported symbol name (NULL when vpage does not wrap
 * that symbol). */
void *vp_hook_wrapper(const char *symbol);

#endif
