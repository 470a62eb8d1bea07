/* fit.c - the fit state: while every streamed piece is resident and the
 * pager has nothing to do, the program's operations are not fenced (no
 * lock, no event), so paging costs nothing when the program fits.
 *
 * Entered by the pager thread when it goes idle with every piece of every
 * device resident (VPAGE_STREAM_FIT, not while a table is recorded or
 * replayed: those follow the launches). A new allocation is then placed
 * in device memory while the cap has room (alloc.c), and the state holds.
 * Left by whatever could make a piece move (an allocation not all
 * resident, a reclaim); then, before any
 * piece moves, the pager waits for the operations being issued without a
 * fence, synchronises each device that has streamed memory (the fences the
 * unfenced work would have left are gone), and counts every resident piece
 * touched (dirty): they may have been written. A free in the fit state
 * waits for that synchronisation first, as cuMemFree waits for the work
 * before it; the pager enters the state again once idle.
 *
 * Issuing and leaving meet as in Dekker's protocol: an operation counts
 * itself issuing, then reads the state; the leaver clears the state, then
 * waits for the count to fall to zero (both sequentially consistent).
 */
#define _GNU_SOURCE
#include <sched.h>

#include "../../driver/exec.h"
#include "../record.h"
#include "../replay.h"
#include "internal.h"

static atomic_int fit;      /* operations go unfenced */
static atomic_int issuing;  /* unfenced operations between begin and end */
static int unsynced;        /* left, not yet synchronised (mu) */
static __thread int here;   /* this thread's operation is unfenced */

static atomic_uint_fast64_t ops; /* operations that went unfenced */

int fit_begin(void)
{
    atomic_fetch_add(&issuing, 1);
    if (atomic_load(&fit)) {
        here = 1;
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
        return 1;
    }
    atomic_fetch_sub(&issuing, 1);
    return 0;
}

int fit_end(void)
{
    if (!here) return 0;
    here = 0;
    atomic_fetch_sub(&issuing, 1);
    return 1;
}

int fit_here(void) { return here; }

int fit_active(void) { return atomic_load_explicit(&fit, memory_order_relaxed); }

uint64_t fit_ops(void) { return atomic_load(&ops); }

/* Every piece of every streamed allocation resident and still. mu held. */
static int all_resident_locked(void)
{
    if (sp.moving_any || vp_pager_thread_reclaim_asked_locked(&sp.pt)) return 0;
    for (size_t i = 0; i < sp.allocs.tab.n; i++)
        if (TAB(i)->gone || TAB(i)->busy || !all_pieces_resident(TAB(i))) return 0;
    return sp.allocs.tab.n > 0;
}

void fit_try_enter_locked(void)
{
    if (atomic_load(&fit) || unsynced || !vp_opt.stream_fit || vp_record_on() || vp_replay_on() ||
        atomic_load(&sp.pt.capturing) || !all_resident_locked())
        return;
    atomic_store(&fit, 1);
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        if (atomic_load_explicit(&sp.ss[d].streamed, memory_order_relaxed)) count(&sp.ss[d].fit_enters, 1);
}

void fit_leave_locked(void)
{
    if (!atomic_load(&fit)) return;
    atomic_store(&fit, 0);
    unsynced = 1;
    pthread_cond_signal(&sp.pt.work_cv);
}

/* Waits until no operation is being issued unfenced. */
static void drain_issuing(void)
{
    while (atomic_load(&issuing)) sched_yield();
}

/* Synchronises every device with streamed memory, from the calling
 * thread (relaxed capture mode meanwhile), up to the first that fails
 * (said). mu not held. */
static void sync_devices(void)
{
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    int swapped = vp_drv_capture_mode(&mode), bad = 0;
    for (int d = 0; d < VP_MAX_DEVICES && !bad; d++) {
        if (!atomic_load_explicit(&sp.ss[d].streamed, memory_order_relaxed)) continue;
        double t0 = now_s();
        CUresult rc = use_device(d) == 0 ? vp_drv_ctx_sync() : CUDA_ERROR_INVALID_CONTEXT;
        if (rc != CUDA_SUCCESS) {
            driver_error("synchronising the device after unfenced work", rc, d);
            bad = 1;
        }
        count(&sp.ss[d].fit_syncs, 1);
        count(&sp.ss[d].fit_sync_ns, (uint64_t)((now_s() - t0) * 1e9));
    }
    if (swapped) vp_drv_capture_mode(&mode);
}

/* Synchronises after the state was left: waits for the unfenced
 * operations being issued, synchronises the devices and counts every
 * resident piece touched. A failed synchronisation (a context the program
 * broke) is said and not retried. mu held (dropped meanwhile). */
static void sync_locked(void)
{
    pthread_mutex_unlock(&sp.pt.mu);
    drain_issuing();
    sync_devices();
    pthread_mutex_lock(&sp.pt.mu);
    for (size_t i = 0; i < sp.allocs.tab.n; i++) {
        struct salloc *a = TAB(i);
        for (uint32_t k = 0; k < a->npieces; k++)
            if (a->pc[k].state == P_DEV) a->pc[k].dirty = 1;
    }
    unsynced = 0;
    pthread_cond_broadcast(&sp.pt.done_cv);
}

void fit_pager_turn_locked(void)
{
    if (vp_pager_thread_reclaim_asked_locked(&sp.pt)) fit_leave_locked();
    if (unsynced) sync_locked();
}

void fit_quiet_locked(void)
{
    fit_leave_locked();
    while (unsynced && !sp.pt.stopping) vp_cond_wait_ns(&sp.pt.done_cv, &sp.pt.mu, 2000000);
    if (!unsynced) return;
    /* the pager thread has stopped (exit): the caller's own context */
    pthread_mutex_unlock(&sp.pt.mu);
    drain_issuing();
    vp_drv_ctx_sync();
    pthread_mutex_lock(&sp.pt.mu);
}

void fit_reset_child(void)
{
    atomic_store(&fit, 0);
    atomic_store(&issuing, 0);
    atomic_store(&ops, 0);
    unsynced = 0;
    here = 0;
}
