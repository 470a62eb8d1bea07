/* stepsvg.c - see stepsvg.h. */
#include "stepsvg.h"

#include <stdlib.h>

#define W 1200.0     /* the picture's width */
#define LEFT 150.0   /* the lanes' labels */
#define RIGHT 20.0
#define LANE 24.0    /* a lane's height */
#define CHART 200.0  /* the room chart's height */

struct frame {
    FILE *out;
    double begin, span; /* the step's start and length, seconds */
};

static double x_of(const struct frame *f, double t)
{
    double x = (t - f->begin) / f->span;
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    return LEFT + x * (W - LEFT - RIGHT);
}

/* A bar from a to b (seconds) in the lane at y, at least half a pixel wide. */
static void bar(const struct frame *f, double a, double b, double y, const char *fill)
{
    if (b < f->begin || a > f->begin + f->span) return;
    double x0 = x_of(f, a), x1 = x_of(f, b);
    fprintf(f->out, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\"/>\n", x0, y,
            x1 - x0 > 0.5 ? x1 - x0 : 0.5, LANE, fill);
}

static void label(const struct frame *f, double y, const char *text)
{
    fprintf(f->out, "<text x=\"8\" y=\"%.1f\">%s</text>\n", y + LANE * 0.7, text);
}

/* Kernels, each wait before one in red; returns the seconds waited. */
static double kernels(const struct frame *f, const struct vp_plan_times *tm, size_t nops, double y)
{
    double waited = 0;
    label(f, y, "kernels (waits red)");
    for (size_t i = 0; i < nops; i++) {
        if (tm->op_end[i] < f->begin) continue; /* before the step drawn */
        double ready = i ? tm->op_end[i - 1] : f->begin;
        if (ready < f->begin) ready = f->begin;
        if (tm->op_start[i] > ready + 1e-12) {
            bar(f, ready, tm->op_start[i], y, "#e45756");
            waited += tm->op_start[i] - ready;
        }
        bar(f, tm->op_start[i], tm->op_end[i], y, "#4c78a8");
    }
    return waited;
}

/* The copies of one direction: in (out = 0), or back (dirty pieces leaving). */
static void copies(const struct frame *f, const struct vp_step *s, const struct vp_plan *p,
                   const struct vp_plan_times *tm, int out, double y)
{
    label(f, y, out ? "copies back (to host)" : "copies in (to device)");
    for (size_t k = 0; k < p->nmoves; k++) {
        const struct vp_move *m = &p->moves[k];
        if (m->out != out || (out && !(s->dirty && s->dirty[m->piece]))) continue;
        /* one begun before the step (ahead of its first ops) runs as well
         * a step later, ahead of the next one's: drawn where it falls */
        double a = tm->move_start[k], b = tm->move_end[k];
        const char *fill = out ? "#f58518" : "#54a24b";
        if (b > f->begin) bar(f, a, b, y, fill);
        if (a < f->begin) bar(f, a + f->span, b + f->span, y, fill);
    }
}

/* The room held over the step as a stepped line, the budget dashed. */
static void room(const struct frame *f, struct vp_plan_times *tm, uint64_t budget, double y)
{
    vp_plan_sort_events(tm);
    int64_t held = (int64_t)tm->held_at_start, top = (int64_t)budget;
    size_t e = 0;
    for (size_t i = 0; i < tm->nevents; i++) {
        held += tm->events[i].bytes;
        if (held > top) top = held;
    }
    held = (int64_t)tm->held_at_start;
    for (; e < tm->nevents && tm->events[e].t < f->begin; e++) held += tm->events[e].bytes;
    double scale = CHART / (double)(top > 0 ? top : 1), base = y + CHART;
    fprintf(f->out, "<text x=\"8\" y=\"%.1f\">room held</text>\n", y + 14);
    fprintf(f->out, "<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"#e45756\" "
                    "stroke-dasharray=\"6,4\"/>\n", LEFT, base - (double)budget * scale, W - RIGHT,
            base - (double)budget * scale);
    fprintf(f->out, "<text x=\"8\" y=\"%.2f\" fill=\"#e45756\">budget %.2f GiB</text>\n",
            base - (double)budget * scale + 4, (double)budget / (1ull << 30));
    fprintf(f->out, "<polyline fill=\"none\" stroke=\"#333\" points=\"%.2f,%.2f", LEFT, base - (double)held * scale);
    for (; e < tm->nevents && tm->events[e].t <= f->begin + f->span; e++) {
        double x = x_of(f, tm->events[e].t);
        fprintf(f->out, " %.2f,%.2f", x, base - (double)held * scale);
        held += tm->events[e].bytes;
        fprintf(f->out, " %.2f,%.2f", x, base - (double)held * scale);
    }
    fprintf(f->out, " %.2f,%.2f\"/>\n", W - RIGHT, base - (double)held * scale);
}

/* Ticks of the time axis at y: the step's start, quarters, end. */
static void axis(const struct frame *f, double y)
{
    for (int q = 0; q <= 4; q++) {
        double x = LEFT + q / 4.0 * (W - LEFT - RIGHT);
        fprintf(f->out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n", x, y, x, y + 6);
        fprintf(f->out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f ms</text>\n", x, y + 20,
                q / 4.0 * f->span * 1e3);
    }
}

int vp_step_svg(FILE *out, const struct vp_step *s, const struct vp_plan *p, struct vp_plan_times *tm,
                uint64_t budget, const char *title)
{
    size_t nops = vp_plan_ops(s, p);
    double begin = tm->begin;
    if (!p->period_steps && nops > s->nops) /* no steady state: the last step played */
        begin = tm->op_end[nops - s->nops - 1];
    double span = tm->end - begin;
    struct frame f = {out, begin, span > 0 ? span : 1e-9};
    double h = 70 + 3 * (LANE + 12) + CHART + 50;
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, h);
    fprintf(out, "<text x=\"8\" y=\"20\" font-size=\"14\">%s</text>\n", title);
    double y = 50;
    double waited = kernels(&f, tm, nops, y);
    copies(&f, s, p, tm, 0, y += LANE + 12);
    copies(&f, s, p, tm, 1, y += LANE + 12);
    room(&f, tm, budget, y += LANE + 12);
    axis(&f, y + CHART + 4);
    fprintf(out, "<text x=\"8\" y=\"36\">waits %.2f ms of %.2f ms%s</text>\n", waited * 1e3, span * 1e3,
            span > 0 ? "" : " (the step takes no time: no kernel times recorded and nothing moves)");
    fprintf(out, "</svg>\n");
    return ferror(out) ? -1 : 0;
}
