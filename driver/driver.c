/* driver.c - see driver.h. */
#define _GNU_SOURCE
#include "driver.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "../common/options.h"
#include "../common/vp.h"

/* The sanitizer runtimes resolve their interceptors with dlsym(RTLD_NEXT)
 * before they are initialised: the lookup path must not be instrumented. */
#define VP_UNINSTRUMENTED __attribute__((no_sanitize("address", "undefined")))

struct vp_real vp_real;

static void *driver_base;
static char driver_file[512];

/* read by interpose/dlsym.c's assembly: a plain pointer, written once
 * (racing writers store the same value) */
extern void *real_dlsym;
void *real_dlsym;

/* Where the C library's dlsym cannot be found: every lookup fails, with
 * one line, instead of a call through NULL. */
static void *no_dlsym(void *handle, const char *name)
{
    static atomic_int said;
    (void)handle;
    if (!atomic_exchange(&said, 1))
        vp_log_always("cannot find the C library's dlsym under any version vpage knows (GLIBC_2.34, 2.2.5, 2.17, "
                      "2.4, 2.0): every dlsym fails (first: %s)", name ? name : "(null)");
    return NULL;
}

VP_UNINSTRUMENTED vp_dlsym_fn vp_dlsym_get(void)
{
    /* dlsym's version: 2.34 where libdl merged into libc; before, the
     * first version of each architecture (x86-64, aarch64, arm, i386) */
    static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.4", "GLIBC_2.0"};
    vp_dlsym_fn f = (vp_dlsym_fn)__atomic_load_n(&real_dlsym, __ATOMIC_ACQUIRE);
    if (vp_likely(f)) return f;
    for (size_t i = 0; !f && i < sizeof versions / sizeof *versions; i++)
        f = (vp_dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    if (!f) f = no_dlsym;
    __atomic_store_n(&real_dlsym, (void *)f, __ATOMIC_RELEASE);
    return f;
}

VP_UNINSTRUMENTED void *vp_dlsym_real(void *handle, const char *name) { return vp_dlsym_get()(handle, name); }

int vp_driver_open(void)
{
    void *h = dlopen(vp_opt.libcuda, RTLD_NOW);
    if (!h) {
        vp_warn("cannot load the driver %s (VPAGE_LIBCUDA): %s", vp_opt.libcuda, dlerror());
        return -1;
    }
#define VP_X(ret, name, params, args) vp_real.name = (vp_pfn_##name)vp_dlsym_real(h, #name);
    VP_HOOKS(VP_X)
#undef VP_X
#define VP_X(ret, name, params) vp_real.name = (vp_pfn_##name)vp_dlsym_real(h, #name);
    VP_DRIVER_USES(VP_X)
#undef VP_X
    Dl_info di;
    if (!vp_real.cuInit || !dladdr((void *)vp_real.cuInit, &di)) {
        vp_warn("%s does not export cuInit: not a CUDA driver", vp_opt.libcuda);
        memset(&vp_real, 0, sizeof vp_real);
        return -1;
    }
    driver_base = di.dli_fbase;
    snprintf(driver_file, sizeof driver_file, "%s", di.dli_fname ? di.dli_fname : "");
    vp_info("driver %s loaded from %s", vp_opt.libcuda, di.dli_fname);
    return 0;
}

const char *vp_driver_path(void) { return driver_file; }

int vp_driver_owns(const void *addr)
{
    Dl_info di;
    return driver_base && dladdr(addr, &di) && di.dli_fbase == driver_base;
}
