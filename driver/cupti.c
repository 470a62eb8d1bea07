/* cupti.c - see cupti.h. */
#define _GNU_SOURCE
#include "cupti.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "driver.h"

/* ---- CUPTI's ABI, as much as vpage uses (cupti_activity.h) ---- */
typedef int cupti_rc;
enum {
    K_DRIVER = 4,               /* CUPTI_ACTIVITY_KIND_DRIVER */
    K_RUNTIME = 5,              /* CUPTI_ACTIVITY_KIND_RUNTIME */
    K_CONCURRENT_KERNEL = 10,   /* CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL */
    K_EXTERNAL_CORRELATION = 39,
    EXT_CUSTOM0 = 3,            /* CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0 */
    FLUSH_FORCED = 1,           /* CUPTI_ACTIVITY_FLAG_FLUSH_FORCED */
};
/* the driver calls that launch a kernel (cupti_driver_cbid.h): cuLaunchKernel,
 * its _ptsz, cuLaunchKernelEx, its _ptsz */
static const unsigned launch_cbids[] = {307, 442, 652, 653};
/* the runtime calls that launch a kernel (cupti_runtime_cbid.h):
 * cudaLaunchKernel, its _ptsz, cudaLaunchKernelExC, its _ptsz,
 * __cudaLaunchKernel (13.0), its _ptsz, cudaLaunchCooperativeKernel */
static const unsigned runtime_launch_cbids[] = {211, 214, 430, 431, 505, 506, 269};
/* offsets in CUpti_ActivityKernel4..10, CUpti_ActivityExternalCorrelation
 * and CUpti_ActivityAPI */
enum { KERNEL_START = 16, KERNEL_END = 24, KERNEL_CORR = 92, KERNEL_NAME = 104, EXT_KIND = 4, EXT_ID = 8,
       EXT_CORR = 16 };
enum { API_START = 8, API_END = 16, API_THREAD = 28, API_CORR = 32 };

typedef void (*req_fn)(uint8_t **buf, size_t *size, size_t *max_records);
typedef void (*done_fn)(void *ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid);

static struct {
    cupti_rc (*register_callbacks)(req_fn, done_fn);
    cupti_rc (*enable)(int kind);
    cupti_rc (*enable_driver_api)(unsigned cbid, uint8_t on);
    cupti_rc (*push)(int kind, uint64_t id);
    cupti_rc (*pop)(int kind, uint64_t *last);
    cupti_rc (*next_record)(uint8_t *buf, size_t valid, void **rec);
    cupti_rc (*flush_all)(uint32_t flag);
    cupti_rc (*flush_period)(uint32_t ms);
    cupti_rc (*enable_runtime_api)(unsigned cbid, uint8_t on);
    cupti_rc (*timestamp)(uint64_t *t);
    cupti_rc (*result_string)(cupti_rc rc, const char **s);
} api;

#define BUF_BYTES (4u << 20)
#define VP_CUPTI_FLUSH_MS 200

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int on;
static atomic_uint_fast64_t pushed;
static int start_loud;
static vp_cupti_sink sink;

/* corr % VP_CUPTI_MAP -> the launch it stands for, joined from its two records */
static struct corr {
    uint32_t corr;
    uint8_t have_id, have_kernel;
    uint64_t id, dur;
} map[VP_CUPTI_MAP];
static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;
/* what came in, for the line at a flush: buffers, kernel and correlation
 * records, launches joined (under map_mu) */
static uint64_t got_buffers, got_kernels, got_corrs, got_calls, got_joined, got_named;

/* A launch issued through the CUDA runtime (PyTorch's) gets no external-
 * correlation record: the runtime's API record, and its correlation id,
 * begin before vpage's driver-level hook pushes the id. So each pushed
 * launch also leaves its thread and the time of its push here (by id), and
 * the runtime's launch record whose call spans that time on that thread
 * names it. */
#define STAMPS (1u << 16)
static struct stamp {
    _Atomic uint64_t id; /* written last (release); 0: empty */
    uint64_t t;
    uint32_t thread, tid; /* pthread_self's, as CUPTI names threads by default; gettid's, as it may be set to */
    uint64_t name;        /* the kernel's name, hashed */
    uint64_t next;        /* the next launch pushed whose name hashes to the same bucket (0: none; names_mu) */
} stamps[STAMPS];
static uint64_t stamp_hint; /* the id the last runtime record named (map_mu) */

/* Where neither record names the launch (PyTorch under CUDA 13 on an H100:
 * kernel records, and no external-correlation or runtime launch record),
 * a kernel's record is joined to the oldest launch of that kernel's name
 * pushed before it started and not joined yet: launches of one kernel run
 * in the order they were issued on a stream. The launches waiting, by
 * their name's bucket, a list through the stamps from head to tail. */
#define NAME_BUCKETS 1024u
#define NAME_WALK 64 /* most launches of other names in a bucket passed over */
#define NAME_SLACK_NS 50000 /* a push's time and its kernel's start may disagree by this much */
static struct {
    uint64_t head, tail;
} waiting[NAME_BUCKETS];
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
/* a correlation or runtime launch record came: records name launches, and
 * pushes need not wait by name */
static atomic_int named_by_records;

/* ---- records ---- */

static uint32_t u32_at(const uint8_t *r, size_t off)
{
    uint32_t v;
    memcpy(&v, r + off, sizeof v);
    return v;
}

static uint64_t u64_at(const uint8_t *r, size_t off)
{
    uint64_t v;
    memcpy(&v, r + off, sizeof v);
    return v;
}

/* One half of a launch's join: its id (have_id) or its kernel's time.
 * Returns 1 with *id, *dur when both halves are in. map_mu held. */
static int join_locked(uint32_t corr, int is_id, uint64_t v, uint64_t *id, uint64_t *dur)
{
    struct corr *c = &map[corr % VP_CUPTI_MAP];
    if (c->corr != corr || !(c->have_id || c->have_kernel)) *c = (struct corr){.corr = corr};
    if (is_id) c->have_id = 1, c->id = v;
    else c->have_kernel = 1, c->dur = v;
    if (!c->have_id || !c->have_kernel) return 0;
    *id = c->id;
    *dur = c->dur;
    c->have_id = c->have_kernel = 0;
    return 1;
}

/* The hash of a kernel's name as vpage keeps it: its first
 * VP_KERNEL_NAME - 1 bytes (a record's full name and the launch's kept one
 * hash alike). */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; s && s[k] && k < VP_KERNEL_NAME - 1; k++) h = (h ^ (uint8_t)s[k]) * 0x100000001b3ull;
    return h;
}

/* Launch id (its stamp written) joins its name's bucket. */
static void name_wait(uint64_t id)
{
    struct stamp *st = &stamps[id % STAMPS];
    unsigned b = (unsigned)(st->name % NAME_BUCKETS);
    pthread_mutex_lock(&names_mu);
    st->next = 0;
    uint64_t tail = waiting[b].tail;
    if (tail && atomic_load_explicit(&stamps[tail % STAMPS].id, memory_order_relaxed) == tail)
        stamps[tail % STAMPS].next = id;
    else
        waiting[b].head = id; /* empty, or its tail written over: the list starts again */
    waiting[b].tail = id;
    pthread_mutex_unlock(&names_mu);
}

/* The oldest launch waiting of the kernel named name that was pushed by
 * start (CUPTI's clock, when it has one), taken off its list; 0: none. */
static uint64_t name_join(uint64_t name, uint64_t start)
{
    unsigned b = (unsigned)(name % NAME_BUCKETS);
    uint64_t prev = 0, got = 0;
    pthread_mutex_lock(&names_mu);
    uint64_t cur = waiting[b].head;
    for (int walked = 0; cur && walked < NAME_WALK; walked++) {
        struct stamp *st = &stamps[cur % STAMPS];
        if (atomic_load_explicit(&st->id, memory_order_acquire) != cur) {
            waiting[b].head = waiting[b].tail = 0; /* written over: what waited is lost */
            break;
        }
        if (st->name == name) {
            /* pushed after the kernel began (less the clocks' slack): not its launch */
            if (api.timestamp && st->t > start + NAME_SLACK_NS) break;
            if (prev) stamps[prev % STAMPS].next = st->next;
            else waiting[b].head = st->next;
            if (waiting[b].tail == cur) waiting[b].tail = prev;
            got = cur;
            break;
        }
        prev = cur;
        cur = st->next;
    }
    pthread_mutex_unlock(&names_mu);
    return got;
}

/* The launch pushed on thread between start and end (CUPTI's clock), found
 * from the last one named on (runtime records come about in order); 0:
 * none. map_mu held. */
static uint64_t stamped(uint32_t thread, uint64_t start, uint64_t end)
{
    uint64_t from = stamp_hint > 256 ? stamp_hint - 256 : 1;
    for (uint64_t id = from; id < from + STAMPS / 2; id++) {
        struct stamp *st = &stamps[id % STAMPS];
        uint64_t got = atomic_load_explicit(&st->id, memory_order_acquire);
        if (got != id) {
            if (got < id) break; /* not pushed yet: none further */
            continue;
        }
        if ((st->thread == thread || st->tid == thread) && st->t >= start && st->t <= end) {
            stamp_hint = id;
            return id;
        }
    }
    return 0;
}

static void take(const uint8_t *r)
{
    uint32_t kind = u32_at(r, 0);
    uint64_t id, dur;
    int both = 0;
    pthread_mutex_lock(&map_mu);
    if (kind == K_EXTERNAL_CORRELATION && u32_at(r, EXT_KIND) == EXT_CUSTOM0) {
        got_corrs++;
        atomic_store_explicit(&named_by_records, 1, memory_order_relaxed);
        both = join_locked(u32_at(r, EXT_CORR), 1, u64_at(r, EXT_ID), &id, &dur);
    } else if (kind == K_RUNTIME) {
        uint64_t launch = stamped(u32_at(r, API_THREAD), u64_at(r, API_START), u64_at(r, API_END));
        got_calls++;
        atomic_store_explicit(&named_by_records, 1, memory_order_relaxed);
        if (launch) both = join_locked(u32_at(r, API_CORR), 1, launch, &id, &dur);
    } else if (kind == K_CONCURRENT_KERNEL) {
        uint64_t s = u64_at(r, KERNEL_START), e = u64_at(r, KERNEL_END);
        const char *name = (const char *)(uintptr_t)u64_at(r, KERNEL_NAME);
        got_kernels++;
        if (!atomic_load_explicit(&named_by_records, memory_order_relaxed)) { /* by the kernel's name */
            id = name ? name_join(name_hash(name), s) : 0;
            dur = e > s ? e - s : 0;
            both = id != 0;
            got_named += both;
        } else
            both = join_locked(u32_at(r, KERNEL_CORR), 0, e > s ? e - s : 0, &id, &dur);
    }
    got_joined += both;
    pthread_mutex_unlock(&map_mu);
    if (both && sink) sink(id, dur);
}

static void buffer_requested(uint8_t **buf, size_t *size, size_t *max_records)
{
    *buf = aligned_alloc(8, BUF_BYTES);
    *size = *buf ? BUF_BYTES : 0;
    *max_records = 0;
}

static void buffer_completed(void *ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid)
{
    (void)ctx, (void)stream, (void)size;
    void *r = NULL;
    pthread_mutex_lock(&map_mu);
    got_buffers++;
    pthread_mutex_unlock(&map_mu);
    while (buf && api.next_record(buf, valid, &r) == 0 && r) take(r);
    free(buf);
}

/* ---- loading ---- */

static const char *const names[] = {"libcupti.so.13", "libcupti.so.12", "libcupti.so"};

/* The folder of a loaded CUDA runtime (libcudart.so*), into dir. */
static int runtime_dir(struct dl_phdr_info *info, size_t size, void *dir)
{
    (void)size;
    const char *p = info->dlpi_name, *base = p ? strrchr(p, '/') : NULL;
    if (!base || strncmp(base + 1, "libcudart.so", 12) || (size_t)(base - p) >= 512) return 0;
    memcpy(dir, p, (size_t)(base - p));
    ((char *)dir)[base - p] = '\0';
    return 1;
}

/* CUPTI already in the process; else beside the CUDA runtime the program
 * loaded (PyTorch's wheels keep libcupti there, out of the loader's path);
 * else by name. */
static void *open_cupti(void)
{
    size_t n = sizeof names / sizeof *names;
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_NOLOAD);
        if (h) return h;
    }
    char dir[512] = "", path[600];
    if (dl_iterate_phdr(runtime_dir, dir))
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            void *h = dlopen(path, RTLD_NOW);
            if (h) return h;
        }
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW);
        if (h) return h;
    }
    return NULL;
}

static const char *why(cupti_rc rc)
{
    const char *s = NULL;
    if (api.result_string && api.result_string(rc, &s) == 0 && s) return s;
    return "an error";
}

/* Enables what is needed; NULL, or what failed. */
static const char *enable_all(void)
{
    static char msg[160];
    cupti_rc rc = api.register_callbacks(buffer_requested, buffer_completed);
    const char *what = "registering activity buffers";
    if (!rc) rc = api.enable(K_CONCURRENT_KERNEL), what = "enabling kernel records";
    if (!rc) rc = api.enable(K_EXTERNAL_CORRELATION), what = "enabling correlation records";
    /* correlation records come with API records: those of the launches alone
     * where CUPTI can choose, else of every driver call */
    for (size_t i = 0; !rc && api.enable_driver_api && i < sizeof launch_cbids / sizeof *launch_cbids; i++)
        rc = api.enable_driver_api(launch_cbids[i], 1), what = "enabling launch records";
    if (!rc && !api.enable_driver_api) rc = api.enable(K_DRIVER), what = "enabling driver call records";
    /* the runtime's launch records, where CUPTI can choose them alone (all
     * of the runtime's calls would cost every call a record) */
    for (size_t i = 0; !rc && api.enable_runtime_api && api.timestamp &&
                       i < sizeof runtime_launch_cbids / sizeof *runtime_launch_cbids; i++)
        rc = api.enable_runtime_api(runtime_launch_cbids[i], 1), what = "enabling runtime launch records";
    if (!rc) return NULL;
    snprintf(msg, sizeof msg, "%s failed (%s; another tool may hold CUPTI)", what, why(rc));
    return msg;
}

static void start(void)
{
    const char *bad = NULL;
    void *h = open_cupti();
#define GET(field, name) (api.field = (__typeof__(api.field))vp_dlsym_real(h, name))
    if (!h) bad = "libcupti.so could not be loaded (not in the process, nor where the loader looks)";
    else if (!GET(register_callbacks, "cuptiActivityRegisterCallbacks") || !GET(enable, "cuptiActivityEnable") ||
             !GET(push, "cuptiActivityPushExternalCorrelationId") ||
             !GET(pop, "cuptiActivityPopExternalCorrelationId") ||
             !GET(next_record, "cuptiActivityGetNextRecord") || !GET(flush_all, "cuptiActivityFlushAll"))
        bad = "the CUPTI found lacks the activity calls vpage uses";
    else {
        GET(enable_driver_api, "cuptiActivityEnableDriverApi");
        GET(result_string, "cuptiGetResultString");
        GET(flush_period, "cuptiActivityFlushPeriod");
        GET(enable_runtime_api, "cuptiActivityEnableRuntimeApi");
        GET(timestamp, "cuptiGetTimestamp");
        bad = enable_all();
        /* completed buffers come in while the program runs, not only at
         * the flush at exit (which may come after CUPTI's own teardown) */
        if (!bad && api.flush_period) api.flush_period(VP_CUPTI_FLUSH_MS);
    }
#undef GET
    if (bad) {
        vp_log(start_loud ? VP_WARN : VP_INFO, "CUPTI: %s: the page table's launches carry no times", bad);
        return;
    }
    atomic_store(&on, 1);
}

int vp_cupti_start(vp_cupti_sink s, int loud)
{
    sink = s;
    start_loud = loud;
    pthread_once(&once, start);
    return vp_cupti_on() ? 0 : -1;
}

int vp_cupti_on(void) { return atomic_load_explicit(&on, memory_order_relaxed); }

void vp_cupti_push(uint64_t id, const char *kernel)
{
    if (!vp_cupti_on() || !id || api.push(EXT_CUSTOM0, id)) return;
    atomic_fetch_add_explicit(&pushed, 1, memory_order_relaxed);
    struct stamp *st = &stamps[id % STAMPS];
    atomic_store_explicit(&st->id, 0, memory_order_relaxed);
    st->t = 0;
    if (api.timestamp) api.timestamp(&st->t);
    st->thread = (uint32_t)pthread_self();
    st->tid = (uint32_t)gettid();
    int by_name = !atomic_load_explicit(&named_by_records, memory_order_relaxed);
    st->name = by_name ? name_hash(kernel) : 0;
    atomic_store_explicit(&st->id, id, memory_order_release);
    if (by_name) name_wait(id);
}

void vp_cupti_pop(void)
{
    uint64_t last;
    if (vp_cupti_on()) api.pop(EXT_CUSTOM0, &last);
}

void vp_cupti_flush(void)
{
    if (!vp_cupti_on()) return;
    cupti_rc rc = api.flush_all(FLUSH_FORCED);
    pthread_mutex_lock(&map_mu);
    vp_info("CUPTI: flushed (%s): %llu launches marked, %llu buffers, %llu kernel records, %llu correlation records, "
            "%llu runtime launch records, %llu launches timed (%llu by their kernel's name)", rc ? why(rc) : "ok",
            (unsigned long long)atomic_load(&pushed), (unsigned long long)got_buffers, (unsigned long long)got_kernels,
            (unsigned long long)got_corrs, (unsigned long long)got_calls, (unsigned long long)got_joined,
            (unsigned long long)got_named);
    pthread_mutex_unlock(&map_mu);
}

void vp_cupti_reset_child(void)
{
    atomic_store(&on, 0);
    stamp_hint = 0;
    pthread_mutex_init(&map_mu, NULL);
    pthread_mutex_init(&names_mu, NULL);
    atomic_store(&named_by_records, 0);
}
