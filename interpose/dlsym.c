/* dlsym.c - how programs find the driver's functions, and how vpage
 * answers with its wrappers.
 *
 * Three ways lead to a driver function, and each is answered here:
 *   - dlsym(handle, "cuX"): libcudart's one dlsym of cuGetProcAddress_v2,
 *     the static cudart copies in cuBLAS/cuDNN dlsym-ing names directly,
 *     Triton's cuLaunchKernelEx. dlsym on a handle ignores LD_PRELOAD, so
 *     vpage exports its own dlsym: for a hooked name whose real symbol lives
 *     in the driver, it returns vpage's wrapper.
 *   - cuGetProcAddress(_v2): the driver picks a symbol per requested version
 *     and flags; vpage asks the real function, finds which exported symbol it
 *     returned (dladdr, exact address and name family checked) and hands out
 *     the wrapper written for exactly that symbol.
 *   - linking with -lcuda: the exported shims in shims.c come first.
 * Any other name costs two character compares on top of the real dlsym.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "../common/log.h"
#include "../common/stats.h"
#include "../common/vp.h"
#include "../core/init.h"
#include "../driver/driver.h"
#include "hooks.h"

/* The sanitizer runtimes resolve their interceptors with dlsym(RTLD_NEXT)
 * before they are initialised: the lookup path must not be instrumented. */
#define VP_UNINSTRUMENTED __attribute__((no_sanitize("address", "undefined")))

static const struct {
    const char *name;
    void *wrapper;
} hook_table[] = {
#define VP_X(ret, name, params, args) {#name, (void *)name},
    VP_HOOKS(VP_X)
#undef VP_X
};

VP_UNINSTRUMENTED void *vp_hook_wrapper(const char *symbol)
{
    if (symbol[0] != 'c' || symbol[1] != 'u') return NULL;
    for (size_t i = 0; i < VP_HOOK_COUNT; i++)
        if (hook_table[i].name[2] == symbol[2] && strcmp(hook_table[i].name, symbol) == 0)
            return hook_table[i].wrapper;
    return NULL;
}

/* dlsym(RTLD_NEXT) from a caller other than vpage: the real dlsym would
 * search after vpage, not after the caller, so search the objects that
 * follow the caller in load order ourselves. */
#if !defined(__x86_64__)
VP_UNINSTRUMENTED static void *next_after(const void *caller, const char *name)
{
    Dl_info di;
    struct link_map *self = NULL;
    if (!dladdr1(caller, &di, (void **)&self, RTLD_DL_LINKMAP) || !self) return NULL;
    for (struct link_map *l = self->l_next; l; l = l->l_next) {
        void *h = dlopen(l->l_name && *l->l_name ? l->l_name : NULL, RTLD_LAZY | RTLD_NOLOAD);
        if (!h) continue;
        void *p = vp_dlsym_get()(h, name);
        dlclose(h);
        if (!p) continue;
        /* dlsym on a handle also searches that object's dependencies, which
         * may come before the caller: accept only objects after it. */
        struct link_map *owner = NULL;
        if (!dladdr1(p, &di, (void **)&owner, RTLD_DL_LINKMAP) || !owner) continue;
        for (struct link_map *k = self->l_next; k; k = k->l_next)
            if (k == owner) return p;
    }
    return NULL;
}
#endif

/* A driver name: the real symbol, or vpage's wrapper for it. */
void *vp_dlsym_cu(void *handle, const char *name);
__attribute__((used)) VP_UNINSTRUMENTED void *vp_dlsym_cu(void *handle, const char *name)
{
    void *p = vp_dlsym_get()(handle, name);
    if (!p) return p;
    void *w = vp_hook_wrapper(name);
    if (!w) return p;
    if (p == w) { /* found our own export; vpage starts at the first lookup */
        (void)vp_init();
        return w;
    }
    /* with a cap set, a driver function vpage cannot wrap would run the
     * program uncapped: the wrapper is returned, and it fails (no driver:
     * NOT_INITIALIZED; another copy of the driver: refused, core/init.h) */
    if (vp_init() != 0) return vp_driver_failed() && vp_capped() ? w : p;
    if (vp_driver_owns(p)) return w;
    if (!vp_capped()) return p;
    vp_refuse_foreign(name, p);
    return w;
}

#if defined(__x86_64__)
/* dlsym itself. The real dlsym looks at its caller (RTLD_NEXT searches after
 * the caller; RTLD_DEFAULT uses the caller's scope, which for a library
 * loaded RTLD_LOCAL, like every Python extension, includes its own
 * dependencies). So every lookup vpage does not answer itself is a tail
 * jump into the real dlsym, with the caller's return address untouched:
 *   name starts "cu" and handle != RTLD_NEXT -> vp_dlsym_cu (C)
 *   anything else                            -> real dlsym, jumped to   */
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, @function\n"
        "dlsym:\n"
        "    cmpb $0x63, (%rsi)\n"          /* 'c' */
        "    jne 1f\n"
        "    cmpb $0x75, 1(%rsi)\n"         /* 'u' */
        "    jne 1f\n"
        "    cmpq $-1, %rdi\n"              /* RTLD_NEXT */
        "    je 1f\n"
        "    jmp vp_dlsym_cu\n"
        "1:  movq real_dlsym(%rip), %rax\n"
        "    testq %rax, %rax\n"
        "    jz 2f\n"
        "    jmp *%rax\n"
        "2:  pushq %rdi\n"
        "    pushq %rsi\n"
        "    subq $8, %rsp\n"
        "    call vp_dlsym_get\n"
        "    addq $8, %rsp\n"
        "    popq %rsi\n"
        "    popq %rdi\n"
        "    jmp *%rax\n"
        ".size dlsym, .-dlsym\n");
#else
/* Elsewhere: the same in C, with RTLD_NEXT searched after the caller by
 * hand (RTLD_DEFAULT from RTLD_LOCAL libraries loses their local scope). */
VP_EXPORT VP_UNINSTRUMENTED void *dlsym(void *restrict handle, const char *restrict name)
{
    if (handle == RTLD_NEXT) return next_after(__builtin_return_address(0), name);
    if (name[0] != 'c' || name[1] != 'u') return vp_dlsym_get()(handle, name);
    return vp_dlsym_cu(handle, name);
}
#endif

/* Does resolved (an exported symbol name) belong to the API name asked for?
 * cuMemAlloc -> cuMemAlloc_v2, cuLaunchKernel -> cuLaunchKernel_ptsz; and
 * cuGraphInstantiate -> cuGraphInstantiateWithFlags (cuda.h's renaming from
 * CUDA 12 on). */
static int same_family(const char *asked, const char *resolved)
{
    if (!strcmp(asked, "cuGraphInstantiate") && !strcmp(resolved, "cuGraphInstantiateWithFlags")) return 1;
    size_t n = strlen(asked);
    if (strncmp(asked, resolved, n) != 0) return 0;
    const char *rest = resolved + n;
    if (rest[0] == '_' && rest[1] == 'v' && rest[2] >= '0' && rest[2] <= '9') {
        rest += 3;
        while (*rest >= '0' && *rest <= '9') rest++;
    }
    return !*rest || !strcmp(rest, "_ptsz") || !strcmp(rest, "_ptds");
}

static void swap_in_wrapper(const char *asked, void **pfn)
{
    Dl_info di;
    if (!asked || !pfn || !*pfn) return;
    if (!dladdr(*pfn, &di) || !di.dli_sname || di.dli_saddr != *pfn) return;
    void *w = vp_hook_wrapper(di.dli_sname);
    if (!w) return;
    if (!same_family(asked, di.dli_sname)) {
        vp_debug("cuGetProcAddress(%s) returned %s: left unwrapped", asked, di.dli_sname);
        return;
    }
    *pfn = w;
}

VP_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int ver, cuuint64_t flags)
{
    vp_stat_call(VP_HOOK_cuGetProcAddress);
    if (vp_init() != 0 || !vp_real.cuGetProcAddress) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = vp_real.cuGetProcAddress(symbol, pfn, ver, flags);
    if (rc == CUDA_SUCCESS) swap_in_wrapper(symbol, pfn);
    return rc;
}

VP_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int ver, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status)
{
    vp_stat_call(VP_HOOK_cuGetProcAddress_v2);
    if (vp_init() != 0 || !vp_real.cuGetProcAddress_v2) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult rc = vp_real.cuGetProcAddress_v2(symbol, pfn, ver, flags, status);
    if (rc == CUDA_SUCCESS) swap_in_wrapper(symbol, pfn);
    return rc;
}
