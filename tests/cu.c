/* cu.c - see cu.h. */
#define _GNU_SOURCE
#include "cu.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

int cu_load(struct cu *c, enum way w)
{
    memset(c, 0, sizeof *c);
    c->handle = dlopen("libcuda.so.1", RTLD_NOW);
    if (!c->handle) {
        fprintf(stderr, "dlopen libcuda.so.1: %s\n", dlerror());
        return -1;
    }
    gpa_fn gpa = (gpa_fn)dlsym(c->handle, "cuGetProcAddress_v2");
    int bad = 0;
#define X(api, sym, ret, params)                                                               \
    if (w == WAY_PROCADDR) {                                                            \
        CUdriverProcAddressQueryResult st;                                              \
        if (!gpa || gpa(#api, (void **)&c->api, 13000, 0, &st) != CUDA_SUCCESS) c->api = NULL; \
    } else if (w == WAY_DLSYM) {                                                        \
        c->api = (ret(*) params)dlsym(c->handle, #sym);                                          \
    } else {                                                                            \
        c->api = &sym;                                                            \
    }                                                                                   \
    if (!c->api) { fprintf(stderr, "%s: no %s\n", way_name(w), #api); bad = 1; }
    CU_FUNCS(X)
#undef X
    if (bad) return -1;
    if (c->cuInit(0) != CUDA_SUCCESS) return -1;
    cu_use_device(c, 0);
    return 0;
}

void cu_use_device(struct cu *c, int dev)
{
    CUcontext ctx;
    c->cuDevicePrimaryCtxRetain(&ctx, dev);
    c->cuCtxSetCurrent(ctx);
}

static void *fake_sym(const char *name)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    return h ? dlsym(h, name) : NULL;
}

uint64_t fake_used(int dev) { return ((uint64_t (*)(int))fake_sym("fake_cuda_used"))(dev); }
uint64_t fake_peak(int dev) { return ((uint64_t (*)(int))fake_sym("fake_cuda_peak"))(dev); }

static void counted(int dev, uint64_t *cur, uint64_t *peak)
{
    int (*f)(int, uint64_t *, uint64_t *) = (int (*)(int, uint64_t *, uint64_t *))dlsym(RTLD_DEFAULT, "vpage_counted");
    *cur = *peak = UINT64_MAX;
    if (f) f(dev, cur, peak);
}

uint64_t vpage_now(int dev) { uint64_t c, p; counted(dev, &c, &p); return c; }
uint64_t vpage_peak_of(int dev) { uint64_t c, p; counted(dev, &c, &p); return p; }

const char *lib_of(const void *p)
{
    Dl_info di;
    if (!p || !dladdr(p, &di) || !di.dli_fname) return "";
    const char *s = strrchr(di.dli_fname, '/');
    return s ? s + 1 : di.dli_fname;
}

const char *sym_of(const void *p)
{
    Dl_info di;
    if (!p || !dladdr(p, &di) || !di.dli_sname || di.dli_saddr != p) return "";
    return di.dli_sname;
}
