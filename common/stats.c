/* stats.c - see stats.h. */
#define _GNU_SOURCE
#include "stats.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../interpose/registry.h"
#include "../pager/account.h"
#include "../pager/paging.h"
#include "../pager/weights.h"
#include "log.h"
#include "options.h"
#include "vp.h"
#include "../include/vpage.h"

static atomic_uint_fast64_t counters[VP_HOOK_COUNT][VP_CTR_COUNT];
static atomic_uint_fast64_t live[VP_HOOK_COUNT], live_peak[VP_HOOK_COUNT];

void vp_stat_live_add(enum vp_hook_id hook, uint64_t bytes)
{
    uint64_t now = atomic_fetch_add(&live[hook], bytes) + bytes;
    uint64_t p = atomic_load(&live_peak[hook]);
    while (now > p && !atomic_compare_exchange_weak(&live_peak[hook], &p, now)) {}
}

void vp_stat_live_sub(enum vp_hook_id hook, uint64_t bytes)
{
    uint64_t c = atomic_load(&live[hook]);
    while (!atomic_compare_exchange_weak(&live[hook], &c, c >= bytes ? c - bytes : 0)) {}
}

void vp_stat_add(enum vp_hook_id hook, enum vp_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[hook][c], n, memory_order_relaxed);
}

uint64_t vp_stat_get(enum vp_hook_id hook, enum vp_counter c)
{
    return atomic_load_explicit(&counters[hook][c], memory_order_relaxed);
}

void vp_stats_reset(void)
{
    for (int h = 0; h < VP_HOOK_COUNT; h++) {
        for (int c = 0; c < VP_CTR_COUNT; c++) atomic_store(&counters[h][c], 0);
        atomic_store(&live[h], 0);
        atomic_store(&live_peak[h], 0);
    }
}

/* A growing text buffer that never fails: past its end it only counts. */
struct sb {
    char *p;
    size_t len, cap;
};

static void sb_vprintf(struct sb *s, const char *fmt, va_list ap)
{
    size_t room = s->len < s->cap ? s->cap - s->len : 0;
    int n = vsnprintf(room ? s->p + s->len : NULL, room, fmt, ap);
    if (n > 0) s->len += (size_t)n;
}

static void sb_printf(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(s, fmt, ap);
    va_end(ap);
}

static void sb_emit(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_emit(void *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(ctx, fmt, ap);
    va_end(ap);
}

/* The ten kernels launched most, for the dump. */
struct top {
    struct vp_kernel *k[10];
    int n;
    uint64_t registered, launches;
};

static void rank_kernel(struct vp_kernel *k, void *arg)
{
    struct top *t = arg;
    uint64_t l = atomic_load(&k->launches);
    t->registered++;
    t->launches += l;
    if (!l) return;
    int i = t->n < 10 ? t->n++ : 9;
    if (i == 9 && t->n == 10 && t->k[9] && atomic_load(&t->k[9]->launches) >= l) return;
    t->k[i] = k;
    for (; i > 0 && atomic_load(&t->k[i - 1]->launches) < atomic_load(&t->k[i]->launches); i--) {
        struct vp_kernel *x = t->k[i - 1];
        t->k[i - 1] = t->k[i];
        t->k[i] = x;
    }
}

static void json_string(struct sb *s, const char *str)
{
    sb_printf(s, "\"");
    for (; *str; str++) {
        unsigned char c = (unsigned char)*str;
        if (c == '"' || c == '\\') sb_printf(s, "\\%c", c);
        else if (c < 0x20) sb_printf(s, "\\u%04x", c);
        else sb_printf(s, "%c", c);
    }
    sb_printf(s, "\"");
}

static void build_json(struct sb *s)
{
    int maxd = vp_acct_max_device();
    sb_printf(s, "{\"pid\": %d, \"devices\": [", (int)getpid());
    for (int d = 0; d <= maxd; d++) {
        uint64_t cap = vp_cap_of(d);
        sb_printf(s, "%s{\"device\": %d, \"cap\": ", d ? ", " : "", d);
        if (cap == VP_NO_CAP) sb_printf(s, "null");
        else sb_printf(s, "%llu", (unsigned long long)cap);
        for (int k = 0; k <= VP_KIND_COUNT; k++) {
            struct vp_gauge_view g = vp_acct_get(d, (enum vp_kind)k);
            sb_printf(s, ", \"%s\": {\"current\": %llu, \"peak\": %llu}", vp_kind_name((enum vp_kind)k),
                      (unsigned long long)g.cur, (unsigned long long)g.peak);
        }
        sb_printf(s, "}");
    }
    sb_printf(s, "], \"entry_points\": {");
    int first = 1;
    for (int h = 0; h < VP_HOOK_COUNT; h++) {
        if (!vp_stat_get((enum vp_hook_id)h, VP_CTR_calls)) continue;
        sb_printf(s, "%s\"%s\": {", first ? "" : ", ", vp_hook_name((enum vp_hook_id)h));
        first = 0;
        static const char *names[] = {
#define VP_X(c, doc) #c,
            VP_HOOK_COUNTERS(VP_X)
#undef VP_X
        };
        for (int c = 0; c < VP_CTR_COUNT; c++)
            sb_printf(s, "%s\"%s\": %llu", c ? ", " : "", names[c],
                      (unsigned long long)vp_stat_get((enum vp_hook_id)h, (enum vp_counter)c));
        sb_printf(s, ", \"current\": %llu, \"peak\": %llu}", (unsigned long long)atomic_load(&live[h]),
                  (unsigned long long)atomic_load(&live_peak[h]));
    }
    struct top t = {0};
    vp_registry_each(rank_kernel, &t);
    sb_printf(s, "}, \"kernels\": {\"registered\": %llu, \"launches\": %llu, \"top\": [",
              (unsigned long long)t.registered, (unsigned long long)t.launches);
    for (int i = 0; i < t.n; i++) {
        sb_printf(s, "%s{\"name\": ", i ? ", " : "");
        json_string(s, t.k[i]->name);
        int known = atomic_load(&t.k[i]->layout) == VP_LAYOUT_KNOWN;
        sb_printf(s, ", \"launches\": %llu, \"params\": %d}", (unsigned long long)atomic_load(&t.k[i]->launches),
                  known ? t.k[i]->nparams : -1);
    }
    sb_printf(s, "]}, \"weight_files\": ");
    vp_weights_report(1, sb_emit, s);
    sb_printf(s, ", \"paging\": ");
    vp_pager_report(1, sb_emit, s);
    sb_printf(s, "}\n");
}

size_t vp_stats_json(char *buf, size_t len)
{
    struct sb s = {buf, 0, len};
    build_json(&s);
    if (len) buf[s.len < len ? s.len : len - 1] = '\0';
    return s.len;
}

static void build_table(struct sb *s)
{
    char a[32], b[32], c[32];
    int maxd = vp_acct_max_device();
    sb_printf(s, "vpage stats (pid %d)\n", (int)getpid());
    sb_printf(s, "%-7s %-8s %14s %14s %14s  %s\n", "device", "kind", "current", "peak", "cap", "what");
    for (int d = 0; d <= maxd; d++)
        for (int k = VP_KIND_COUNT; k >= 0; k--) {
            struct vp_gauge_view g = vp_acct_get(d, (enum vp_kind)k);
            if (k != VP_KIND_COUNT && !g.peak) continue;
            sb_printf(s, "%-7d %-8s %14s %14s %14s  %s\n", d, vp_kind_name((enum vp_kind)k),
                      vp_fmt_bytes(g.cur, a, sizeof a), vp_fmt_bytes(g.peak, b, sizeof b),
                      k == VP_KIND_COUNT ? vp_fmt_bytes(vp_cap_of(d), c, sizeof c) : "",
                      vp_kind_desc((enum vp_kind)k));
        }
    sb_printf(s, "%-32s %12s %8s %8s %14s %14s %14s\n", "entry point", "calls", "failed", "refused", "bytes",
              "current", "peak");
    for (int h = 0; h < VP_HOOK_COUNT; h++) {
        enum vp_hook_id id = (enum vp_hook_id)h;
        if (!vp_stat_get(id, VP_CTR_calls)) continue;
        uint64_t cur = atomic_load(&live[h]), pk = atomic_load(&live_peak[h]);
        sb_printf(s, "%-32s %12llu %8llu %8llu %14s %14s %14s\n", vp_hook_name(id),
                  (unsigned long long)vp_stat_get(id, VP_CTR_calls), (unsigned long long)vp_stat_get(id, VP_CTR_failed),
                  (unsigned long long)vp_stat_get(id, VP_CTR_refused),
                  vp_fmt_bytes(vp_stat_get(id, VP_CTR_bytes), a, sizeof a), pk ? vp_fmt_bytes(cur, b, sizeof b) : "",
                  pk ? vp_fmt_bytes(pk, c, sizeof c) : "");
    }
    struct top t = {0};
    vp_registry_each(rank_kernel, &t);
    sb_printf(s, "kernels: %llu handles seen, %llu launches; most launched:\n", (unsigned long long)t.registered,
              (unsigned long long)t.launches);
    for (int i = 0; i < t.n; i++)
        sb_printf(s, "  %12llu  %.100s\n", (unsigned long long)atomic_load(&t.k[i]->launches), t.k[i]->name);
    if (vp_weights_active()) {
        sb_printf(s, "weight files:\n");
        vp_weights_report(0, sb_emit, s);
    }
    if (vp_paging_on()) vp_pager_report(0, sb_emit, s);
}

static char *render(void (*build)(struct sb *), size_t *len)
{
    struct sb s = {NULL, 0, 0};
    build(&s); /* measure */
    s.cap = s.len + 1;
    s.p = malloc(s.cap);
    if (!s.p) return NULL;
    s.len = 0;
    build(&s);
    if (s.len >= s.cap) s.len = s.cap - 1; /* counters moved between the passes */
    s.p[s.len] = '\0';
    *len = s.len;
    return s.p;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

void vp_expand_path(const char *tmpl, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < len; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            int n = snprintf(out + o, len - o, "%d", (int)getpid());
            if (n < 0 || (size_t)n >= len - o) break;
            o += (size_t)n;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

void vp_stats_at_exit(void)
{
    uint64_t calls = 0;
    for (int h = 0; h < VP_HOOK_COUNT; h++) calls += vp_stat_get((enum vp_hook_id)h, VP_CTR_calls);
    if (!calls) return;
    size_t n;
    if (vp_opt.stats) {
        char *t = render(build_table, &n);
        if (t) write_all(2, t, n);
        free(t);
    }
    if (vp_opt.stats_file[0]) {
        char path[600];
        vp_expand_path(vp_opt.stats_file, path, sizeof path);
        char *j = render(build_json, &n);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) vp_warn("cannot write stats to %s (VPAGE_STATS_FILE)", path);
        else {
            if (j) write_all(fd, j, n);
            close(fd);
        }
        free(j);
    }
}

/* Public: the stats document, for tests and for programs that want it. */
VP_EXPORT size_t vpage_stats_json(char *buf, size_t len) { return vp_stats_json(buf, len); }

/* Public: counted bytes of a device now and at peak. Returns 0, or -1 for a
 * device out of range. */
VP_EXPORT int vpage_provenance(uint64_t dptr, char *buf, size_t len) { return vp_weights_describe(dptr, buf, len); }

VP_EXPORT int vpage_counted(int dev, uint64_t *current, uint64_t *peak)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return -1;
    struct vp_gauge_view g = vp_acct_get(dev, VP_KIND_COUNT);
    if (current) *current = g.cur;
    if (peak) *peak = g.peak;
    return 0;
}
