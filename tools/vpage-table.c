/* vpage-table - reads a page table file (books/table.h) and answers what a
 * user asks of it, with the planner of the learned page table
 * (policy/plan.h):
 *
 *   vpage-table show FILE
 *       the step: launches, compute time, allocations and bytes touched,
 *       the kernels that take the most time
 *   vpage-table simulate FILE --cap SIZE[,SIZE...] [--h2d GB/s] [--d2h GB/s] [--remap MS]
 *                        [--window SIZE | --best-window] [--reserve SIZE] [--leave-thin] [--json]
 *       for each cap: the plan of the loop under the cap less the step's
 *       other memory (Belady's rule), the bytes it moves a step, what stays
 *       pinned, and the step's predicted time against its compute and the
 *       transfer bound; then what vpage's replay of the table moves a step
 *       (policy/replay.h), with its pins and window (--window: as
 *       VPAGE_STREAM_WINDOW; --reserve: as VPAGE_STREAM_RESERVE, its pins
 *       under the budget less the reserve, policy/stream.h; by default the
 *       library's), and its step's time on the same bus
 *       (vp_replay_plan timed as a plan); --best-window: also the window
 *       sized from the kernels' times (vp_replay_window_timed: six replays
 *       timed, seconds for a large table), a value for VPAGE_STREAM_WINDOW;
 *       --leave-thin: as VPAGE_TABLE_LEAVE_THIN, the step without the
 *       pieces of its thin launches (books/tablestep.h; show lists them).
 *       The bus: --h2d and --d2h GB/s (55 each), and --remap: the
 *       milliseconds per GiB brought in that the pager's remaps hold its
 *       copies back (REMAP_MS_PER_GIB; 0: the bus alone)
 *   vpage-table draw FILE --cap SIZE [--h2d GB/s] [--d2h GB/s] [--remap MS] [--window SIZE] [--replay]
 *                    [--reserve SIZE] [--leave-thin] [--out FILE.svg]
 *       a picture of the planned step at that cap (tools/stepsvg.h): its
 *       kernels and waits, the copies each way, the room held against the
 *       budget; --replay: of vpage's replay of the table instead; to
 *       --out, else to standard output
 *
 * Exit status 0, 1 when the file is refused (with the reason), 2 on a usage
 * error. Nothing here touches a GPU.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../books/table.h"
#include "../books/tablestep.h"
#include "../common/file.h"
#include "../common/options.h"
#include "../policy/plan.h"
#include "../policy/replay.h"
#include "../policy/stream.h"
#include "stepsvg.h"

#define GIB 1073741824.0
/* Milliseconds the stream pager's remaps hold its copies back per GiB
 * brought in: the round lines of a replayed Wan 14B step at 8 GiB on an
 * H100 (remapping 0.246 s over 79.8 GiB in, four steps: 3.1; the trace tool
 * prints it for a user's own trace). With it the simulated replay came
 * within 6% of the steps measured at 8 and 16 GiB, in two runs; without
 * it, 15% and 18% short at 8 GiB. */
#define REMAP_MS_PER_GIB 3.1


/* ---- show ---- */

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

/* b as "1.50 GiB" or "24.0 MiB" (buf of 32). */
static const char *human(uint64_t b, char *buf)
{
    if (b >= (1ull << 30)) snprintf(buf, 32, "%.2f GiB", gib(b));
    else snprintf(buf, 32, "%.1f MiB", (double)b / (1 << 20));
    return buf;
}

struct kstat {
    uint64_t ns, launches;
    uint32_t k;
};

static int by_time(const void *a, const void *b)
{
    const struct kstat *x = a, *y = b;
    return x->ns > y->ns ? -1 : x->ns < y->ns;
}

static int show(const struct vp_table *t, const struct vp_table_step *f)
{
    printf("fingerprint %016llx, pieces of %.1f MiB\n", (unsigned long long)t->fingerprint,
           (double)t->piece / (1 << 20));
    printf("step: %zu launches of %zu kernels, %.3f s of compute\n", t->nops, t->nkernels, f->compute_ns * 1e-9);
    char a[32], b[32], c[32];
    printf("paged memory the step touches: %s in %zu allocations (%s written); other memory %s\n",
           human(f->touched, a), t->nallocs, human(f->written, b), human(t->other, c));
    if (!f->compute_ns) printf("(the launches' times were not recorded: plans say bytes, not time)\n");
    size_t untimed = 0;
    for (size_t i = 0; f->compute_ns && i < t->nops; i++) untimed += f->ops[i].dur_s == 0;
    if (f->estimated || untimed)
        printf("(%llu launches CUPTI did not time take their kernel's median time; %zu of kernels never timed count "
               "0)\n", (unsigned long long)f->estimated, untimed);
    if (f->thin_ops)
        printf("thin launches, too short to have read what they point at (VPAGE_TABLE_LEAVE_THIN, --leave-thin): "
               "%llu, touching %s that no other launch does\n", (unsigned long long)f->thin_ops,
               human(f->thin_bytes, a));
    struct kstat *ks = calloc(t->nkernels ? t->nkernels : 1, sizeof *ks);
    if (!ks) return 1;
    for (size_t k = 0; k < t->nkernels; k++) ks[k].k = (uint32_t)k;
    for (size_t i = 0; i < t->nops; i++) {
        ks[t->ops[i].kernel].ns += t->ops[i].dur_ns;
        ks[t->ops[i].kernel].launches++;
    }
    qsort(ks, t->nkernels, sizeof *ks, by_time);
    printf("kernels by time in the step:\n");
    for (size_t k = 0; k < t->nkernels && k < 10; k++)
        printf("  %10.3f ms  %6llu launches  %.100s\n", ks[k].ns * 1e-6, (unsigned long long)ks[k].launches,
               t->kernel[ks[k].k]);
    free(ks);
    return 0;
}

/* ---- simulate ---- */

struct args {
    const char *caps, *out;
    double h2d, d2h; /* bytes a second */
    double remap;    /* seconds each byte brought in holds the bus (struct vp_bus) */
    int json, replay; /* replay: draw vpage's replay of the table, not Belady's plan */
    int best_window;  /* simulate: also the window sized from the kernels' times */
    int leave_thin;   /* --leave-thin: as VPAGE_TABLE_LEAVE_THIN */
    uint64_t window; /* --window: as VPAGE_STREAM_WINDOW (0: the replay's own) */
    uint64_t reserve; /* --reserve: as VPAGE_STREAM_RESERVE */
};

/* The budget the pager's replay of f plans in under budget: less the
 * reserve (policy/stream.h), as pager/stream/plan.c gives it. */
static uint64_t replay_budget(const struct vp_table *t, const struct vp_table_step *f, uint64_t budget,
                              const struct args *a)
{
    return budget - vp_stream_reserve(budget, f->touched, a->reserve, t->piece);
}

/* The plan of f under budget into p: a first pass for the period, then one
 * with room for its moves (those of the steps averaged when there is no
 * period). Returns vp_plan_step's answer. */
static int plan(struct vp_table_step *f, uint64_t budget, struct vp_plan *p)
{
    *p = (struct vp_plan){.resident_at_start = malloc(f->s.npieces + 1), .pinned = malloc(f->s.npieces + 1)};
    if (!p->resident_at_start || !p->pinned) return VP_PLAN_NO_ROOM;
    int rc = vp_plan_step(&f->s, budget, p);
    if (rc != VP_PLAN_OK && rc != VP_PLAN_UNSETTLED) return rc;
    size_t touches = (size_t)f->ops[f->s.nops - 1].first + f->ops[f->s.nops - 1].n;
    p->cap = 2 * touches * p->moves_steps + 1;
    p->moves = malloc(p->cap * sizeof *p->moves);
    return p->moves ? vp_plan_step(&f->s, budget, p) : VP_PLAN_NO_ROOM;
}

/* What vpage's replay of f does under budget (policy/replay.h), as a plan
 * into p; *dropped: bytes a step brought in and sent out unused. Returns
 * vp_replay_plan's answer. */
static int replay_plan(struct vp_table_step *f, uint64_t budget, uint64_t window, struct vp_plan *p,
                       uint64_t *dropped)
{
    *dropped = 0;
    if (vp_replay_plan_make(&f->s, p)) return VP_PLAN_NO_ROOM;
    return vp_replay_plan(&f->s, budget, window, VP_VISIT_GAP, p, dropped);
}

/* Whether plan() gave a plan the simulation can time: a steady state, or
 * the steps averaged without one, with their moves (an estimate). */
static int timeable(int rc, const struct vp_plan *p)
{
    return rc == VP_PLAN_OK || (rc == VP_PLAN_UNSETTLED && p->nmoves);
}

/* What the pager's replay of the table moves (policy/replay.h), and the
 * time of its step on bus b (negative: not timed). */
struct replay {
    uint64_t in, pinned, window, reserve, dropped, timed_window;
    double step, timed_step; /* timed_*: the window sized from the kernels' times */
};

static struct replay replay_of(const struct vp_table *t, struct vp_table_step *f, uint64_t budget,
                               const struct vp_bus *b, const struct args *a)
{
    struct replay r = {.step = -1, .timed_step = -1};
    struct vp_plan p;
    uint64_t rb = replay_budget(t, f, budget, a); /* its pins and window; its copies take room within budget */
    r.reserve = budget - rb;
    r.window = vp_replay_window(&f->s, rb, t->piece, a->window);
    if (a->best_window) r.timed_window = vp_replay_window_timed(&f->s, rb, t->piece, VP_VISIT_GAP, b, &r.timed_step);
    r.in = vp_replay_play(&f->s, rb, r.window, VP_VISIT_GAP, &r.pinned);
    if (replay_plan(f, rb, r.window, &p, &r.dropped) == VP_PLAN_OK)
        r.step = vp_plan_simulate(&f->s, budget, &p, b, NULL);
    vp_plan_free(&p);
    return r;
}

static int simulate_cap(const struct vp_table *t, struct vp_table_step *f, uint64_t cap, const struct args *a, int first)
{
    uint64_t budget = cap > t->other ? cap - t->other : 0;
    struct vp_plan p;
    int rc = plan(f, budget, &p);
    struct vp_bus bus = {a->h2d, a->d2h, a->remap};
    double step = timeable(rc, &p) ? vp_plan_simulate(&f->s, budget, &p, &bus, NULL) : -1;
    double compute = f->compute_ns * 1e-9;
    uint64_t pinned = 0, must = f->touched > budget ? f->touched - budget : 0;
    for (size_t x = 0; (rc == VP_PLAN_OK || rc == VP_PLAN_UNSETTLED) && x < f->s.npieces; x++)
        pinned += p.pinned[x] ? f->bytes[x] : 0;
    double bound = (double)must / a->h2d > compute ? (double)must / a->h2d : compute;
    struct replay r = replay_of(t, f, budget, &bus, a);
    char c1[32], c2[32], c3[32], c4[32], c5[32];
    if (a->json)
        printf("%s{\"cap\": %llu, \"budget\": %llu, \"status\": %d, \"step_s\": %.6f, \"compute_s\": %.6f, "
               "\"bound_s\": %.6f, \"bytes_in\": %llu, \"bytes_out\": %llu, \"pinned\": %llu, \"period_steps\": %u, "
               "\"must_move\": %llu, \"replay_in\": %llu, \"replay_pinned\": %llu, \"replay_window\": %llu, "
               "\"replay_step_s\": %.6f, \"replay_dropped\": %llu, \"timed_window\": %llu, \"timed_window_step_s\": %.6f, "
               "\"remap_ms_per_gib\": %.3f, \"replay_reserve\": %llu}",
               first ? "" : ", ", (unsigned long long)cap, (unsigned long long)budget, rc, step, compute, bound,
               (unsigned long long)p.bytes_in, (unsigned long long)p.bytes_out, (unsigned long long)pinned,
               p.period_steps, (unsigned long long)must, (unsigned long long)r.in, (unsigned long long)r.pinned,
               (unsigned long long)r.window, r.step, (unsigned long long)r.dropped,
               (unsigned long long)r.timed_window, r.timed_step, a->remap * GIB * 1e3,
               (unsigned long long)r.reserve);
    else if (rc == VP_PLAN_TOO_BIG)
        printf("cap %s: no plan (a launch touches more than the budget)\n", human(cap, c1));
    else if (rc != VP_PLAN_OK && rc != VP_PLAN_UNSETTLED)
        printf("cap %s: no plan (error %d)\n", human(cap, c1), rc);
    else if (rc == VP_PLAN_UNSETTLED && step >= 0 && compute > 0)
        printf("cap %s (budget %s): step %.3f s on average, %.2fx compute, %.2fx the transfer bound (no period "
               "within %d steps: %d steps played); in %s a step (%s must move); pinned %s\n",
               human(cap, c1), human(budget, c2), step, step / compute, step / bound, VP_PLAN_MAX_STEPS,
               VP_PLAN_AVERAGE_STEPS, human(p.bytes_in, c3), human(must, c4), human(pinned, c5));
    else if (rc == VP_PLAN_UNSETTLED)
        printf("cap %s (budget %s): in %s a step on average (no period within %d steps; %s must move); pinned %s\n",
               human(cap, c1), human(budget, c2), human(p.bytes_in, c3), VP_PLAN_MAX_STEPS, human(must, c4),
               human(pinned, c5));
    else if (compute > 0)
        printf("cap %s (budget %s): step %.3f s, %.2fx compute, %.2fx the transfer bound; in %s, back %s a step; "
               "pinned %s\n", human(cap, c1), human(budget, c2), step, step / compute, step / bound,
               human(p.bytes_in, c3), human(p.bytes_out, c4), human(pinned, c5));
    else
        printf("cap %s (budget %s): in %s a step (%s must move), back %s; pinned %s; period %u steps\n",
               human(cap, c1), human(budget, c2), human(p.bytes_in, c3), human(must, c5), human(p.bytes_out, c4),
               human(pinned, c5), p.period_steps);
    if (!a->json)
        printf("  vpage's replay (VPAGE_TABLE): in %s a step, %s pinned, a window of %s, a reserve of %s\n",
               human(r.in, c1), human(r.pinned, c2), human(r.window, c3), human(r.reserve, c4));
    if (!a->json && r.step >= 0 && compute > 0)
        printf("  its step %.3f s, %.2fx the transfer bound (%s a step brought in and sent out unused; remaps "
               "%.1f ms per GiB in)\n", r.step, r.step / bound, human(r.dropped, c1), a->remap * GIB * 1e3);
    if (!a->json && r.timed_step >= 0)
        printf("  with the window sized from the kernels' times (%s): %.3f s, %.2fx the transfer bound\n",
               human(r.timed_window, c1), r.timed_step, r.timed_step / bound);
    vp_plan_free(&p);
    return rc == VP_PLAN_OK || rc == VP_PLAN_UNSETTLED ? 0 : 1;
}

static int simulate(const struct vp_table *t, struct vp_table_step *f, const struct args *a)
{
    char caps[512];
    snprintf(caps, sizeof caps, "%s", a->caps);
    int bad = 0, first = 1;
    if (a->json) printf("{\"compute_s\": %.6f, \"touched\": %llu, \"caps\": [", f->compute_ns * 1e-9,
                        (unsigned long long)f->touched);
    for (char *save = NULL, *c = strtok_r(caps, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        uint64_t cap;
        const char *why;
        if (vp_parse_size(c, &cap, &why)) {
            fprintf(stderr, "vpage-table: --cap %s: %s\n", c, why);
            return 2;
        }
        bad |= simulate_cap(t, f, cap, a, first);
        first = 0;
    }
    if (a->json) printf("]}\n");
    return bad;
}

/* ---- draw ---- */

/* The picture of the plan at one cap, to a->out or standard output. */
static int draw_plan(struct vp_table_step *f, uint64_t cap, uint64_t budget, const struct vp_plan *p,
                     const struct args *a)
{
    size_t nops = vp_plan_ops(&f->s, p);
    struct vp_plan_times tm = {malloc(nops * sizeof(double)), malloc(nops * sizeof(double)),
                               malloc((p->nmoves + 1) * sizeof(double)), malloc((p->nmoves + 1) * sizeof(double)),
                               malloc((4 * p->nmoves + 2) * sizeof(struct vp_plan_event)), 0, 0, 0, 0};
    struct vp_bus bus = {a->h2d, a->d2h, a->remap};
    int rc = 1;
    char title[160], c1[32], c2[32], c3[32], c4[32];
    FILE *out = NULL;
    double step = -1;
    if (!tm.op_start || !tm.op_end || !tm.move_start || !tm.move_end || !tm.events)
        fprintf(stderr, "vpage-table: out of memory\n");
    else if ((step = vp_plan_times(&f->s, budget, p, &bus, NULL, &tm)) < 0)
        fprintf(stderr, "vpage-table: the plan at cap %s does not fit its budget\n", human(cap, c1));
    else if (!(out = a->out ? fopen(a->out, "w") : stdout))
        perror(a->out);
    else {
        snprintf(title, sizeof title, "%s at cap %s (budget %s): %.2f ms a step; in %s, back %s a step",
                 a->replay ? "vpage's replay, steps played" : p->period_steps > 1 ? "a period of steps"
                 : p->period_steps ? "one step" : "the last of the steps played (no steady state)",
                 human(cap, c1), human(budget, c2), step * 1e3, human(p->bytes_in, c3), human(p->bytes_out, c4));
        rc = vp_step_svg(out, &f->s, p, &tm, budget, title) ? 1 : 0;
        if (out != stdout && fclose(out)) rc = 1;
    }
    free(tm.op_start);
    free(tm.op_end);
    free(tm.move_start);
    free(tm.move_end);
    free(tm.events);
    return rc;
}

static int draw(const struct vp_table *t, struct vp_table_step *f, const struct args *a)
{
    uint64_t cap;
    const char *why;
    if (vp_parse_size(a->caps, &cap, &why)) {
        fprintf(stderr, "vpage-table: --cap %s: %s\n", a->caps, why);
        return 2;
    }
    uint64_t budget = cap > t->other ? cap - t->other : 0, dropped;
    struct vp_plan p;
    uint64_t rb = replay_budget(t, f, budget, a);
    int rc = a->replay ? replay_plan(f, rb, vp_replay_window(&f->s, rb, t->piece, a->window), &p, &dropped)
                       : plan(f, budget, &p);
    if (!timeable(rc, &p)) {
        char c1[32];
        fprintf(stderr, "vpage-table: no plan at cap %s (%s)\n", human(cap, c1),
                rc == VP_PLAN_TOO_BIG ? "a launch touches more than the budget"
                : rc == VP_PLAN_UNSETTLED ? "no steady state" : "error");
        rc = 1;
    } else
        rc = draw_plan(f, cap, budget, &p, a);
    vp_plan_free(&p);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: vpage-table show FILE\n"
                    "       vpage-table simulate FILE --cap SIZE[,SIZE...] [--h2d GB/s] [--d2h GB/s] [--remap MS] "
                    "[--window SIZE | --best-window] [--reserve SIZE] [--leave-thin] [--json]\n"
                    "       vpage-table draw FILE --cap SIZE [--h2d GB/s] [--d2h GB/s] [--remap MS] [--window SIZE] [--replay] "
                    "[--reserve SIZE] [--leave-thin] [--out FILE.svg]\n");
    return 2;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    /* the H100's pinned copies (../shared/DEVICE-FACTS.md) and the pager's
     * remaps there (REMAP_MS_PER_GIB) */
    *a = (struct args){NULL, NULL, 55e9, 55e9, REMAP_MS_PER_GIB * 1e-3 / GIB, 0, 0, 0, 0, 0, 0};
    const char *why;
    if (vp_parse_size(VP_STREAM_RESERVE_DEFAULT, &a->reserve, &why)) return -1;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) a->json = 1;
        else if (!strcmp(argv[i], "--replay")) a->replay = 1;
        else if (!strcmp(argv[i], "--best-window")) a->best_window = 1;
        else if (!strcmp(argv[i], "--leave-thin")) a->leave_thin = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--cap")) a->caps = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--out")) a->out = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--h2d")) a->h2d = atof(argv[++i]) * 1e9;
        else if (i + 1 < argc && !strcmp(argv[i], "--d2h")) a->d2h = atof(argv[++i]) * 1e9;
        else if (i + 1 < argc && !strcmp(argv[i], "--remap")) a->remap = atof(argv[++i]) * 1e-3 / GIB;
        else if (i + 1 < argc && !strcmp(argv[i], "--window")) {
            if (vp_parse_size(argv[++i], &a->window, &why)) return -1;
        } else if (i + 1 < argc && !strcmp(argv[i], "--reserve")) {
            if (vp_parse_size(argv[++i], &a->reserve, &why)) return -1;
        }
        else return -1;
    }
    return a->h2d > 0 && a->d2h > 0 && a->remap >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct args a;
    if (argc < 3 || parse_args(argc, argv, &a)) return usage();
    int is_show = !strcmp(argv[1], "show"), is_draw = !strcmp(argv[1], "draw");
    if (!is_show && ((strcmp(argv[1], "simulate") && !is_draw) || !a.caps)) return usage();
    if ((a.out || a.replay) && !is_draw) return usage();
    if (a.best_window && (is_draw || is_show || a.window)) return usage();
    if (a.leave_thin && is_show) return usage();
    size_t len;
    char *text = vp_file_slurp(argv[2], VP_TABLE_MAX_BYTES, &len);
    if (!text) {
        fprintf(stderr, "vpage-table: cannot read %s%s\n", argv[2], len > VP_TABLE_MAX_BYTES ? " (too large)" : "");
        return 1;
    }
    struct vp_table t;
    const char *why;
    if (vp_table_parse(text, len, &t, &why)) {
        fprintf(stderr, "vpage-table: %s refused: %s\n", argv[2], why);
        free(text);
        return 1;
    }
    free(text);
    struct vp_table_step f;
    int rc = vp_table_step_make(&t, &f) || ((is_show || a.leave_thin) && vp_table_step_thin(&t, &f, NULL))
                                       ? (fprintf(stderr, "vpage-table: out of memory\n"), 1)
                             : is_show ? show(&t, &f)
                             : is_draw ? draw(&t, &f, &a)
                                       : simulate(&t, &f, &a);
    vp_table_step_free(&f);
    vp_table_free(&t);
    return rc;
}
