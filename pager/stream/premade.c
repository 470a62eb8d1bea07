/* premade.c - host memory of whole pieces made ahead of the program's
 * allocations (VPAGE_STREAM_PREMADE).
 *
 * Making a piece's home (host-located memory, pinned by the driver) is
 * the slow part of a streamed allocation: 3.4 GB/s on one thread of an
 * H100's host, while a load copies into it at 7 GB/s (bench/host_memory.py).
 * While the program makes streamed allocations, a thread of its own keeps
 * whole pieces' homes made, as many bytes as the program allocated in the
 * last second (at most VPAGE_STREAM_PREMADE), within the paged limit; an
 * allocation takes them (premade_take) instead of waiting for the driver.
 * A second after the last allocation, what is left is given back.
 *
 * Locks: pm.t.mu, its own, last in the lock order (taken under sp.pt.mu
 * by nobody: premade_want and premade_take are called without it).
 */
#define _GNU_SOURCE
#include <string.h>

#include "../../common/log.h"
#include "../../common/options.h"
#include "../../driver/exec.h"
#include "../../driver/vmm.h"
#include "internal.h"

#define PREMADE_MAX 64   /* most homes kept made, per device */
#define PREMADE_IDLE 1.0 /* seconds after the last allocation that homes are kept */

static struct {
    struct vp_pager_thread t; /* the maker; t.mu guards the rest */
    struct {
        uint64_t piece;          /* length of the homes made (that of whole pieces) */
        CUmemGenericAllocationHandle h[PREMADE_MAX];
        size_t n;
        double last, since;      /* the last allocation; the start of the second counted */
        uint64_t recent, before; /* bytes allocated in this second and the one before */
        CUcontext ctx;
        int failed;              /* the driver refused one: no more until the next allocation */
    } d[VP_MAX_DEVICES];
} pm = {.t = VP_PAGER_THREAD_INIT};

/* Bytes of homes dev should have made now (mu held). */
static uint64_t target_locked(int dev, double now)
{
    if (!pm.d[dev].piece || now - pm.d[dev].last > PREMADE_IDLE || pm.d[dev].failed) return 0;
    uint64_t want = pm.d[dev].recent > pm.d[dev].before ? pm.d[dev].recent : pm.d[dev].before;
    if (want > vp_opt.stream_premade) want = vp_opt.stream_premade;
    uint64_t most = (uint64_t)PREMADE_MAX * pm.d[dev].piece;
    return want < most ? want : most;
}

/* Whether one more home of dev fits under its target and the paged limit
 * (mu held). */
static int room_for_one_locked(int dev, double now)
{
    uint64_t piece = pm.d[dev].piece, made = pm.d[dev].n * piece;
    uint64_t streamed = atomic_load(&sp.ss[dev].streamed), limit = vp_paged_limit();
    return piece && made + piece <= target_locked(dev, now) && streamed + made + piece <= limit;
}

/* Makes one home of dev (mu held, dropped meanwhile). Only this thread
 * adds homes, and room_for_one_locked kept n below PREMADE_MAX; a device's
 * piece length does not change. */
static void make_one_locked(int dev)
{
    uint64_t piece = pm.d[dev].piece;
    CUmemGenericAllocationHandle h = 0;
    pthread_mutex_unlock(&pm.t.mu);
    CUresult rc = vp_drv_use_primary_ctx(&pm.d[dev].ctx, dev) ? CUDA_ERROR_INVALID_CONTEXT
                                                              : vp_drv_create_on(&h, piece, dev, 1);
    pthread_mutex_lock(&pm.t.mu);
    if (rc == CUDA_SUCCESS) pm.d[dev].h[pm.d[dev].n++] = h;
    else pm.d[dev].failed = 1;
}

/* Gives back the homes of dev past its target (mu held, dropped meanwhile). */
static void trim_locked(int dev, double now)
{
    uint64_t target = target_locked(dev, now), piece = pm.d[dev].piece;
    while (pm.d[dev].n && pm.d[dev].n * piece > target) {
        CUmemGenericAllocationHandle h = pm.d[dev].h[--pm.d[dev].n];
        count(&sp.ss[dev].premade_dropped, 1);
        pthread_mutex_unlock(&pm.t.mu);
        vp_drv_release(h);
        pthread_mutex_lock(&pm.t.mu);
    }
}

static void *maker_main(void *arg)
{
    (void)arg;
    vp_pager_thread_enter();
    pthread_mutex_lock(&pm.t.mu);
    while (!pm.t.stopping) {
        double now = now_s();
        int made = 0;
        for (int d = 0; d < VP_MAX_DEVICES && !pm.t.stopping; d++) {
            if (room_for_one_locked(d, now)) {
                make_one_locked(d);
                made = 1;
            } else
                trim_locked(d, now);
        }
        if (!made) vp_cond_wait_ns(&pm.t.work_cv, &pm.t.mu, 250000000);
    }
    pthread_mutex_unlock(&pm.t.mu);
    return NULL;
}

void premade_want(int dev, uint64_t piece, uint64_t bytes)
{
    if (!vp_opt.stream_premade || dev < 0 || dev >= VP_MAX_DEVICES) return;
    double now = now_s();
    pthread_mutex_lock(&pm.t.mu);
    if (now - pm.d[dev].since > 1.0) {
        pm.d[dev].before = now - pm.d[dev].since > 2.0 ? 0 : pm.d[dev].recent;
        pm.d[dev].recent = 0;
        pm.d[dev].since = now;
    }
    pm.d[dev].recent += bytes;
    pm.d[dev].last = now;
    pm.d[dev].failed = 0;
    pm.d[dev].piece = piece; /* a device's pieces are all of one length */
    if (vp_pager_thread_start_locked(&pm.t, maker_main, "vpage-premade",
                                     "stream: cannot start the thread that makes host memory ahead; each "
                                     "allocation makes its own (VPAGE_STREAM_PREMADE)") == 0)
        pthread_cond_signal(&pm.t.work_cv);
    pthread_mutex_unlock(&pm.t.mu);
}

int premade_take(int dev, uint64_t len, CUmemGenericAllocationHandle *h)
{
    if (!vp_opt.stream_premade || dev < 0 || dev >= VP_MAX_DEVICES) return 0;
    pthread_mutex_lock(&pm.t.mu);
    int ok = pm.d[dev].n && pm.d[dev].piece == len;
    if (ok) *h = pm.d[dev].h[--pm.d[dev].n];
    pthread_cond_signal(&pm.t.work_cv);
    pthread_mutex_unlock(&pm.t.mu);
    if (ok) count(&sp.ss[dev].premade, 1);
    return ok;
}

void premade_stop(void)
{
    vp_pager_thread_stop(&pm.t);
    pthread_mutex_lock(&pm.t.mu);
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        while (pm.d[d].n) vp_drv_release(pm.d[d].h[--pm.d[d].n]);
    pthread_mutex_unlock(&pm.t.mu);
}

void premade_lock(void) { pthread_mutex_lock(&pm.t.mu); }

void premade_unlock(void) { pthread_mutex_unlock(&pm.t.mu); }

/* The child after fork: the parent's thread and host memory are not its own. */
void premade_reset_child(void)
{
    vp_pager_thread_reset_child(&pm.t);
    memset(pm.d, 0, sizeof pm.d);
}
