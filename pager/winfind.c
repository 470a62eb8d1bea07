/* winfind.c - see winfind.h. */
#define _GNU_SOURCE
#include "winfind.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../policy/replay.h"
#include "../policy/stream.h"

static struct {
    atomic_int state; /* 0: not asked; 1: being found; 2: found (window written before) */
    uint64_t window;
} wf;

/* What the finding thread owns: a copy of the step. */
struct job {
    struct vp_step s;
    uint64_t budget, piece;
};

static void job_free(struct job *j)
{
    free((void *)j->s.ops);
    free((void *)j->s.touch);
    free((void *)j->s.bytes);
    free((void *)j->s.dirty);
    free(j);
}

static void *find(void *arg)
{
    struct job *j = arg;
    struct vp_bus b = {VP_WINFIND_BUS, VP_WINFIND_BUS, 0}; /* the bus alone: remaps not counted (not measured so) */
    double step;
    uint64_t w = vp_replay_window_timed(&j->s, j->budget, j->piece, VP_VISIT_GAP, &b, &step);
    if (w) {
        wf.window = w;
        atomic_store_explicit(&wf.state, 2, memory_order_release);
    }
    job_free(j);
    return NULL;
}

/* A copy of s for the finding thread; NULL when out of memory. */
static struct job *copy(const struct vp_step *s, uint64_t budget, uint64_t piece)
{
    size_t nt = 0;
    for (size_t i = 0; i < s->nops; i++) nt += s->ops[i].n;
    struct job *j = calloc(1, sizeof *j);
    struct vp_step_op *ops = malloc((s->nops ? s->nops : 1) * sizeof *ops);
    uint32_t *touch = malloc((nt ? nt : 1) * sizeof *touch);
    uint64_t *bytes = malloc((s->npieces ? s->npieces : 1) * sizeof *bytes);
    uint8_t *dirty = s->dirty ? malloc(s->npieces ? s->npieces : 1) : NULL;
    if (!j || !ops || !touch || !bytes || (s->dirty && !dirty)) {
        free(j);
        free(ops);
        free(touch);
        free(bytes);
        free(dirty);
        return NULL;
    }
    memcpy(ops, s->ops, s->nops * sizeof *ops);
    memcpy(touch, s->touch, nt * sizeof *touch);
    memcpy(bytes, s->bytes, s->npieces * sizeof *bytes);
    if (dirty) memcpy(dirty, s->dirty, s->npieces);
    j->s = (struct vp_step){s->nops, s->npieces, ops, touch, bytes, dirty};
    j->budget = budget;
    j->piece = piece;
    return j;
}

/* Runs find(j) on a detached thread that takes no signal. Returns 0, or -1. */
static int run(struct job *j)
{
    sigset_t all, was;
    pthread_attr_t at;
    pthread_t th;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &was); /* the new thread starts with every signal blocked */
    int ok = !pthread_attr_init(&at);
    if (ok) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        ok = !pthread_create(&th, &at, find, j);
        pthread_attr_destroy(&at);
    }
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    return ok ? 0 : -1;
}

void vp_winfind_start(const struct vp_step *s, uint64_t budget, uint64_t piece)
{
    int idle = 0;
    if (!atomic_compare_exchange_strong(&wf.state, &idle, 1)) return;
    struct job *j = copy(s, budget, piece);
    if (j && run(j) == 0) return;
    if (j) job_free(j);
    vp_warn("page table: the window from the step's times cannot be found (no memory or thread); the rule's serves "
            "(VPAGE_TABLE_WINDOW)");
}

uint64_t vp_winfind_found(void)
{
    return atomic_load_explicit(&wf.state, memory_order_acquire) == 2 ? wf.window : 0;
}
