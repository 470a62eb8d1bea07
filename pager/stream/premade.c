/* premade.c - host memory of pieces made ahead of the program's
 * allocations (VPAGE_STREAM_PREMADE).
 *
 * Making a piece's home (host-located memory, pinned by the driver) is
 * the slow part of a streamed allocation: 3.4 GB/s on one thread of an
 * H100's host, while a load copies into it at 7 GB/s (bench/host_memory.py).
 * While the program makes streamed allocations, a thread of its own keeps
 * homes made of the lengths its pieces had of late (whole pieces, and the
 * shorter last pieces of allocations: up to PREMADE_LENS lengths a device,
 * a length no longer allocated giving way), of each as many bytes as
 * the program allocated in the last second, at most VPAGE_STREAM_PREMADE
 * in all, within the paged limit; an allocation takes them (premade_take)
 * instead of waiting for the driver. A second after the last allocation,
 * what is left is given back.
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

#define PREMADE_MAX 64   /* most homes kept made, per device and length */
#define PREMADE_LENS 4   /* lengths of homes kept, per device */
#define PREMADE_IDLE 1.0 /* seconds after the last allocation that homes are kept */

/* Homes of one length: that of whole pieces, or of an allocation's last,
 * shorter piece (a 50 MiB weight under 64 MiB pieces is one such piece). */
struct plen {
    uint64_t len;            /* 0: a free entry */
    CUmemGenericAllocationHandle h[PREMADE_MAX];
    size_t n;
    uint64_t recent, before; /* bytes allocated in pieces of len in this second and the one before */
};

static struct {
    struct vp_pager_thread t; /* the maker; t.mu guards the rest */
    struct {
        struct plen l[PREMADE_LENS];
        double last, since; /* the last allocation; the start of the second counted */
        CUcontext ctx;
        int failed;         /* the driver refused one: no more until the next allocation */
    } d[VP_MAX_DEVICES];
} pm = {.t = VP_PAGER_THREAD_INIT};

/* Bytes of homes of l dev should have made now (mu held). */
static uint64_t target_locked(int dev, const struct plen *l, double now)
{
    if (!l->len || now - pm.d[dev].last > PREMADE_IDLE || pm.d[dev].failed) return 0;
    uint64_t want = l->recent > l->before ? l->recent : l->before;
    if (want > vp_opt.stream_premade) want = vp_opt.stream_premade;
    uint64_t most = (uint64_t)PREMADE_MAX * l->len;
    return want < most ? want : most;
}

/* Bytes of homes dev holds made (mu held). */
static uint64_t made_locked(int dev)
{
    uint64_t made = 0;
    for (int k = 0; k < PREMADE_LENS; k++) made += pm.d[dev].l[k].n * pm.d[dev].l[k].len;
    return made;
}

/* Whether one more home of l fits under its target, the option and the
 * paged limit (mu held). */
static int room_for_one_locked(int dev, const struct plen *l, double now)
{
    uint64_t made = made_locked(dev), streamed = atomic_load(&sp.ss[dev].streamed), limit = vp_paged_limit();
    return l->len && (l->n + 1) * l->len <= target_locked(dev, l, now) && made + l->len <= vp_opt.stream_premade &&
           streamed + made + l->len <= limit;
}

/* Makes one home of l (mu held, dropped meanwhile). Only this thread adds
 * homes, and room_for_one_locked kept n below PREMADE_MAX; an allocation
 * of a new length may have given l to it meanwhile (entry_locked): then
 * the home goes back. */
static void make_one_locked(int dev, struct plen *l)
{
    uint64_t len = l->len;
    CUmemGenericAllocationHandle h = 0;
    pthread_mutex_unlock(&pm.t.mu);
    CUresult rc = vp_drv_use_primary_ctx(&pm.d[dev].ctx, dev) ? CUDA_ERROR_INVALID_CONTEXT
                                                              : vp_drv_create_on(&h, len, dev, 1);
    pthread_mutex_lock(&pm.t.mu);
    if (rc != CUDA_SUCCESS) pm.d[dev].failed = 1;
    else if (l->len == len) l->h[l->n++] = h;
    else {
        count(&sp.ss[dev].premade_dropped, 1);
        pthread_mutex_unlock(&pm.t.mu); /* no driver call under mu, as trim_locked */
        vp_drv_release(h);
        pthread_mutex_lock(&pm.t.mu);
    }
}

/* Gives back the homes of l past its target, and frees the entry of a
 * length no longer allocated (mu held, dropped meanwhile). */
static void trim_locked(int dev, struct plen *l, double now)
{
    while (l->n && l->n * l->len > target_locked(dev, l, now)) {
        CUmemGenericAllocationHandle h = l->h[--l->n];
        count(&sp.ss[dev].premade_dropped, 1);
        pthread_mutex_unlock(&pm.t.mu);
        vp_drv_release(h);
        pthread_mutex_lock(&pm.t.mu);
    }
    if (!l->n && !target_locked(dev, l, now)) l->len = 0;
}

/* One pass over dev's lengths: one home made where one is wanted, the
 * rest trimmed. Returns whether it made one (mu held). */
static int serve_locked(int dev, double now)
{
    int made = 0;
    for (int k = 0; k < PREMADE_LENS && !pm.t.stopping; k++) {
        struct plen *l = &pm.d[dev].l[k];
        if (room_for_one_locked(dev, l, now)) {
            make_one_locked(dev, l);
            made = 1;
        } else
            trim_locked(dev, l, now);
    }
    return made;
}

static void *maker_main(void *arg)
{
    (void)arg;
    vp_pager_thread_enter();
    pthread_mutex_lock(&pm.t.mu);
    while (!pm.t.stopping) {
        double now = now_s();
        int made = 0;
        for (int d = 0; d < VP_MAX_DEVICES && !pm.t.stopping; d++) made |= serve_locked(d, now);
        if (!made) vp_cond_wait_ns(&pm.t.work_cv, &pm.t.mu, 250000000);
    }
    pthread_mutex_unlock(&pm.t.mu);
    return NULL;
}

/* The entry of len on dev: its own, a free one, or of the lengths with no
 * homes made the one allocated least of late; NULL when every other
 * length has homes (they go once no longer allocated, trim_locked: a
 * program of many lengths does not make homes only to drop them). mu held. */
static struct plen *entry_locked(int dev, uint64_t len)
{
    struct plen *pick = NULL;
    for (int k = 0; k < PREMADE_LENS; k++) {
        struct plen *l = &pm.d[dev].l[k];
        if (l->len == len) return l;
        if (!l->len) pick = pick && !pick->len ? pick : l;
        else if (!l->n && (!pick || (pick->len && l->recent + l->before < pick->recent + pick->before))) pick = l;
    }
    if (pick) *pick = (struct plen){.len = len};
    return pick;
}

/* Counts bytes allocated in pieces of len on dev (mu held). */
static void note_locked(int dev, uint64_t len, uint64_t bytes)
{
    struct plen *l = bytes ? entry_locked(dev, len) : NULL;
    if (l) l->recent += bytes;
}

/* Rolls dev's counting second over when it ended (mu held). */
static void roll_locked(int dev, double now)
{
    if (now - pm.d[dev].since <= 1.0) return;
    int gap = now - pm.d[dev].since > 2.0;
    for (int k = 0; k < PREMADE_LENS; k++) {
        pm.d[dev].l[k].before = gap ? 0 : pm.d[dev].l[k].recent;
        pm.d[dev].l[k].recent = 0;
    }
    pm.d[dev].since = now;
}

void premade_want(int dev, uint64_t piece, uint64_t span)
{
    if (!vp_opt.stream_premade || dev < 0 || dev >= VP_MAX_DEVICES || !piece || !span) return;
    double now = now_s();
    uint64_t whole = span / piece * piece, tail = span - whole;
    pthread_mutex_lock(&pm.t.mu);
    roll_locked(dev, now);
    note_locked(dev, piece, whole);
    note_locked(dev, tail, tail);
    pm.d[dev].last = now;
    pm.d[dev].failed = 0;
    if (vp_pager_thread_start_locked(&pm.t, maker_main, "vpage-premade",
                                     "stream: cannot start the thread that makes host memory ahead; each "
                                     "allocation makes its own (VPAGE_STREAM_PREMADE)") == 0)
        pthread_cond_signal(&pm.t.work_cv);
    pthread_mutex_unlock(&pm.t.mu);
}

int premade_take(int dev, uint64_t len, CUmemGenericAllocationHandle *h)
{
    if (!vp_opt.stream_premade || dev < 0 || dev >= VP_MAX_DEVICES) return 0;
    int ok = 0;
    pthread_mutex_lock(&pm.t.mu);
    for (int k = 0; k < PREMADE_LENS && !ok; k++) {
        struct plen *l = &pm.d[dev].l[k];
        if ((ok = l->len == len && l->n)) *h = l->h[--l->n];
    }
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
        for (int k = 0; k < PREMADE_LENS; k++)
            while (pm.d[d].l[k].n) vp_drv_release(pm.d[d].l[k].h[--pm.d[d].l[k].n]);
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
