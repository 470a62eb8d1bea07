/* report.c - see report.h. */
#define _GNU_SOURCE
#include "report.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../books/account.h"
#include "../books/registry.h"
#include "../books/weights.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../common/vp.h"
#include "../include/vpage.h"
#include "../pager/apool.h"
#include "../pager/graphs.h"
#include "../pager/pager.h"

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
        for (int c = 0; c < VP_CTR_COUNT; c++)
            sb_printf(s, "%s\"%s\": %llu", c ? ", " : "", vp_counter_name((enum vp_counter)c),
                      (unsigned long long)vp_stat_get((enum vp_hook_id)h, (enum vp_counter)c));
        sb_printf(s, ", \"current\": %llu, \"peak\": %llu}", (unsigned long long)vp_stat_live((enum vp_hook_id)h, 0),
                  (unsigned long long)vp_stat_live((enum vp_hook_id)h, 1));
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
    sb_printf(s, "]}, \"graphs\": {\"captured\": %llu, \"replays_known\": %llu}, \"weight_files\": ",
              (unsigned long long)vp_graphs_captured(), (unsigned long long)vp_graphs_replays_known());
    vp_weights_report(1, sb_emit, s);
    sb_printf(s, ", \"paging\": ");
    vp_pager()->report(1, sb_emit, s, vp_apool_report);
    sb_printf(s, "}\n");
}

size_t vp_report_json(char *buf, size_t len)
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
        uint64_t cur = vp_stat_live(id, 0), pk = vp_stat_live(id, 1);
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
    if (vp_graphs_captured())
        sb_printf(s, "graphs: %llu captured with the paged addresses their kernels touch; %llu replays brought "
                     "those in first\n", (unsigned long long)vp_graphs_captured(),
                  (unsigned long long)vp_graphs_replays_known());
    if (vp_weights_active()) {
        sb_printf(s, "weight files:\n");
        vp_weights_report(0, sb_emit, s);
    }
    if (vp_pager()->pages) vp_pager()->report(0, sb_emit, s, vp_apool_report);
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

void vp_report_at_exit(void)
{
    uint64_t calls = 0;
    for (int h = 0; h < VP_HOOK_COUNT; h++) calls += vp_stat_get((enum vp_hook_id)h, VP_CTR_calls);
    if (!calls) return;
    size_t n;
    if (vp_opt.stats) {
        char *t = render(build_table, &n);
        if (t) vp_file_write(2, t, n);
        free(t);
    }
    if (vp_opt.stats_file[0]) {
        char path[600];
        vp_expand_path(vp_opt.stats_file, path, sizeof path);
        char *j = render(build_json, &n);
        const char *why;
        int fd = vp_file_open(path, 0, &why);
        if (fd < 0) vp_warn("cannot write stats to %s (VPAGE_STATS_FILE): %s", path, why);
        else {
            if (j) vp_file_write(fd, j, n);
            vp_file_close(fd);
        }
        free(j);
    }
}

/* Public: the stats document, for tests and for programs that want it. */
VP_EXPORT size_t vpage_stats_json(char *buf, size_t len) { return vp_report_json(buf, len); }

/* Public: where the device bytes at dptr came from (include/vpage.h). */
VP_EXPORT int vpage_provenance(uint64_t dptr, char *buf, size_t len) { return vp_weights_describe(dptr, buf, len); }

/* Public: counted bytes of a device now and at peak. Returns 0, or -1 for a
 * device out of range. */
VP_EXPORT int vpage_counted(int dev, uint64_t *current, uint64_t *peak)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return -1;
    struct vp_gauge_view g = vp_acct_get(dev, VP_KIND_COUNT);
    if (current) *current = g.cur;
    if (peak) *peak = g.peak;
    return 0;
}
