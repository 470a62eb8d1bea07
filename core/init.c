/* init.c - see init.h. */
#define _GNU_SOURCE
#include "init.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>

#include "../books/registry.h"
#include "../books/weights.h"
#include "../common/log.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../include/vpage.h"
#include "../common/trace.h"
#include "../common/vp.h"
#include "../driver/driver.h"
#include "../pager/graphs.h"
#include "../pager/pager.h"
#include "../pager/record.h"
#include "mem.h"
#include "report.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int state; /* 0 not yet, 1 ready, -1 no driver */
static atomic_int refused;
static char refused_why[700];
static _Thread_local int starting;

static void before_fork(void)
{
    vp_registry_lock();
    vp_mem_lock_all();
    vp_weights_lock();
    vp_pager()->lock();
}

static void after_fork_parent(void)
{
    vp_pager()->unlock();
    vp_weights_unlock();
    vp_mem_unlock_all();
    vp_registry_unlock();
}

/* The child has none of the parent's device memory (CUDA contexts do not
 * survive fork): it starts its books from zero. */
static void after_fork_child(void)
{
    vp_pager()->reset_child(); /* re-initialises its (held) locks */
    vp_weights_unlock();
    vp_mem_unlock_all();
    vp_registry_unlock();
    vp_mem_reset_child();
    vp_weights_reset_child();
    vp_stats_reset();
    vp_trace_reset_child();
    vp_record_reset_child();
    vp_graphs_reset_child();
}

/* Refuses from now on, saying why once. */
static void refuse(const char *why)
{
    if (atomic_exchange(&refused, 1)) return;
    snprintf(refused_why, sizeof refused_why, "%s", why);
    vp_log_always("refusing to run: %s", why);
}

int vp_capped(void)
{
    if (vp_opt.paging != VP_PAGING_OFF || vp_opt.cap.all != VP_NO_CAP) return 1;
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        if (vp_opt.cap.dev[d] != VP_NO_CAP) return 1;
    return 0;
}

const char *vp_refused_why(void) { return vp_refused() ? refused_why : ""; }

int vp_driver_failed(void) { return atomic_load(&state) < 0; }

void vp_refuse_foreign(const char *name, const void *fn)
{
    Dl_info di;
    char why[700];
    snprintf(why, sizeof why, "the program found %s in %s, another copy of the driver than the one vpage wraps "
             "(%s); it would run uncapped (VPAGE_LIBCUDA names the driver to wrap)", name,
             dladdr(fn, &di) && di.dli_fname ? di.dli_fname : "an unknown object", vp_driver_path());
    refuse(why);
}

/* Device memory whose bytes vpage keeps in host memory: stream mode's. */
static int kept_on_host(uint64_t dptr) { return vp_pager()->owns((CUdeviceptr)dptr); }

static void start(void)
{
    starting = 1;
    if (vp_options_load()) {
        atomic_store(&refused, 1);
        snprintf(refused_why, sizeof refused_why, "VPAGE_CAP is not valid (see above)");
    }
    if (vp_opt.help) vp_options_print();
    vp_pager_choose(vp_opt.paging);
    if (vp_opt.paging == VP_PAGING_STREAM && vp_opt.drop_file_pages) vp_weights_give_back_pages(kept_on_host);
    int rc = vp_driver_open();
    if (rc != 0 && vp_capped()) {
        char why[700];
        snprintf(why, sizeof why, "the driver %s (VPAGE_LIBCUDA) could not be loaded, and a cap is set: every "
                 "driver call fails rather than run uncapped", vp_opt.libcuda);
        refuse(why);
    }
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    atomic_store(&state, rc == 0 ? 1 : -1);
    starting = 0;
}

int vp_init(void)
{
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (vp_likely(s)) return s > 0 ? 0 : -1;
    if (starting) return -1;
    pthread_once(&once, start);
    return atomic_load(&state) > 0 ? 0 : -1;
}

int vp_refused(void) { return atomic_load_explicit(&refused, memory_order_relaxed); }

VP_EXPORT void vpage_print_options(void)
{
    if (!atomic_load(&state) && !starting) (void)vp_options_load();
    vp_options_print();
}

__attribute__((destructor)) static void vp_fini(void)
{
    if (atomic_load(&state) > 0) {
        vp_pager()->shutdown();
        vp_record_finish();
        vp_report_at_exit();
        vp_trace_close();
    }
}
