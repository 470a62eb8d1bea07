/* stream.h - the streaming policy (VPAGE_PAGING=stream): which pieces stay
 * resident, and which pass through the device once a loop.
 *
 * Contract
 *   Pure functions over values the pager (pager/stream.h) hands in: no locks,
 *   no driver calls, no state beyond what the caller keeps.
 *
 *   A program that runs in steps (denoising, decoding) touches its weights
 *   once a step and its activations many times a step. With a cap smaller
 *   than the weights, moving the fewest bytes per step means keeping a fixed
 *   part of the weights resident ("pinned") and streaming the rest through
 *   a window of the cap, each piece brought in just before its use and sent
 *   out after it. After what an operation being issued asks for (below),
 *   pieces in hot use (visits at most VP_HOT_GAP launches apart,
 *   vp_uses_hot) and pinned pieces come first; the rest are ranked by the
 *   expected start of their next visit (vp_uses_next), soonest first.
 *
 *   Pinning (vp_stream_pin) is decided once, when a piece's reuse gap is
 *   first seen to be long (its second use, in loop order); the pager unpins
 *   the latest pinned when hot pieces come to need the room. Pinned pieces
 *   are spread evenly over the loop (an error accumulator, as in Bresenham's
 *   line), so the streamed bytes are spread over the step's compute and the
 *   transfers overlap it.
 */
#ifndef VPAGE_POLICY_STREAM_H
#define VPAGE_POLICY_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "demand.h"

/* A piece's uses, in launch ticks. Uses at most VP_VISIT_GAP launches
 * apart are one visit: the kernels of one layer that share a piece (a
 * GEMM and its split-K reduction, two projections allocated together).
 * Reuse is measured between the starts of visits, so a weight used twice
 * in a row and then not for a whole step is not taken for hot. */
#define VP_VISIT_GAP 32
struct vp_uses {
    uint64_t visit;      /* start of the latest visit (0: never used) */
    uint64_t prev_visit; /* start of the one before (0: none) */
    uint64_t last;       /* the latest use */
};

/* Notes a use at tick t (t > 0, never less than the last). Returns 1 when
 * it starts a visit whose previous one began more than VP_HOT_GAP launches
 * before: a long reuse, which asks the pinning question. */
int vp_uses_note(struct vp_uses *u, uint64_t t);

/* In hot use at tick now: visits at most VP_HOT_GAP apart, or one visit
 * lasting VP_HOT_GAP launches or more, and the latest use at most
 * 4 * VP_HOT_GAP launches ago. */
int vp_uses_hot(const struct vp_uses *u, uint64_t now);

/* Within a visit at tick now (the latest use at most VP_VISIT_GAP ago):
 * more uses are coming. */
int vp_uses_visiting(const struct vp_uses *u, uint64_t now);

/* Expected start of the next visit (vp_policy_next_use over visit starts). */
uint64_t vp_uses_next(const struct vp_uses *u, uint64_t now);

/* Bytes of the device budget kept free of pinned pieces for the window:
 * want (VPAGE_STREAM_WINDOW) when not 0, else a quarter of the budget; at
 * least four pieces, at most the budget. */
uint64_t vp_stream_window(uint64_t budget, uint64_t piece, uint64_t want);

/* Whether a piece of bytes whose long reuse gap was just seen is pinned.
 * *acc carries the spreading error between calls (start at 0); pinned: the
 * bytes pinned so far; room: bytes pinned pieces may take in all; cold: the
 * bytes of pieces not in hot use (what is pinned or streamed). */
int vp_stream_pin(double *acc, uint64_t bytes, uint64_t pinned, uint64_t room, uint64_t cold);

enum vp_stream_class {
    VP_SC_NOW,  /* asked for by an operation being issued: key = last use, latest first */
    VP_SC_HOT,  /* in hot use: key = last use, latest first */
    VP_SC_PIN,  /* pinned: key = order of pinning, first pinned first */
    VP_SC_NEXT, /* the rest: key = expected next use (tick), soonest first */
};

struct vp_spc {
    uint64_t key;   /* see enum vp_stream_class */
    uint64_t bytes;
    void *ref;      /* the pager's handle */
    uint8_t cls;    /* enum vp_stream_class */
    uint8_t want;   /* set by vp_stream_desire */
};

/* Key of a piece whose next use is not known (used once) or stale, used
 * last at tick last: after every known next use, the most recently used
 * first (as least-recently-used eviction would keep them). Such pieces are
 * kept while they rank in the budget but not brought in ahead of use. */
#define VP_KEY_GUESS (1ull << 62)
static inline uint64_t vp_stream_guess_key(uint64_t now, uint64_t last)
{
    uint64_t age = now > last ? now - last : 0;
    return VP_KEY_GUESS + (age < VP_KEY_GUESS ? age : VP_KEY_GUESS - 1);
}

/* A piece as the planner sees it (pager/stream/plan.c fills it). */
struct vp_piece_view {
    struct vp_uses u;
    uint64_t ahead_at; /* tick it last came in ahead of use (0: never) */
    uint32_t pin_seq;  /* order of pinning */
    uint8_t requested; /* asked for by an operation being issued */
    uint8_t pinned;
    uint8_t on_host;   /* neither resident nor moving */
};

/* The class and key of a piece at tick now (enum vp_stream_class), with
 * coming in ahead of use on (ahead: VPAGE_STREAM_AHEAD) or off (demand
 * paging: requests first, then what is resident by recency; the rest does
 * not come in). A piece never used (placed at its allocation) ranks last.
 * A piece that came in ahead and left before any use ranks last of the
 * predicted ones: its prediction was wrong (policy/README.md). */
void vp_stream_rank_piece(const struct vp_piece_view *v, uint64_t now, int ahead, uint8_t *cls, uint64_t *key);

/* Whether a wanted piece that no operation asked for comes in ahead of
 * use: only what the loop predicts, and never with ahead off. */
int vp_stream_comes_ahead(int ahead, uint8_t cls, uint64_t key);

/* Whether a piece whose long reuse gap was just seen is pinned: never
 * with ahead off or while it is in hot use; else vp_stream_pin. */
int vp_stream_pin_asked(double *acc, int ahead, int hot, uint64_t bytes, uint64_t pinned, uint64_t room,
                        uint64_t cold);

/* What one device's pieces came to at a plan. */
struct vp_stream_census {
    uint64_t budget;      /* what pieces may hold (books/account.h: vp_acct_budget) */
    uint64_t piece;       /* bytes of a piece */
    uint64_t hot, cold;   /* bytes of used pieces in hot use, and of the others */
    uint64_t window_want; /* VPAGE_STREAM_WINDOW (0: a quarter of the budget) */
    uint64_t reserve_want; /* VPAGE_STREAM_RESERVE */
};

/* The reserve (see vp_stream_split_budget) of a budget when used bytes
 * stream through it in pieces of piece bytes and want are asked
 * (VPAGE_STREAM_RESERVE): 0 while everything fits, else want, at most an
 * eighth of the budget, in whole pieces (less than one is none: it would
 * cost pins and let nothing come in). */
uint64_t vp_stream_reserve(uint64_t budget, uint64_t used, uint64_t want, uint64_t piece);

/* How a plan divides the budget. */
struct vp_stream_split {
    uint64_t window;    /* what streams through */
    uint64_t keep_free; /* kept free of pinned pieces: the window and the reserve, or 0 when everything fits */
    uint64_t pin_room;  /* what pinned pieces may take */
    uint64_t reserve;   /* kept free of wanted pieces: room for pieces to come in while others leave */
};

/* The window holds what streams through; when little must stream (the
 * overflow past the budget is small) a small window does (the overflow
 * and four pieces). When everything fits beside the hot pieces, all of it
 * is pinned and no window is kept; else the window is kept free of pins.
 *
 * While more than the budget streams, a reserve (reserve_want, at most an
 * eighth of the budget) is kept free of pins too, and the wanted set is
 * chosen within the budget less the reserve: pieces leave before the room
 * they held is needed, so a piece coming in finds room at once and its
 * copy runs while others leave. Without it, a piece comes in only once the
 * one it replaces has left (its hash read, its address unmapped): the bus
 * idles meanwhile. It costs its bytes in pins, brought in once a loop
 * more. Nothing is reserved while everything fits. */
struct vp_stream_split vp_stream_split_budget(const struct vp_stream_census *c);

/* A pinned piece, when hot pieces come to need the room. */
struct vp_pin {
    uint32_t seq;   /* order of pinning */
    uint64_t bytes;
    void *ref;      /* the pager's handle */
};

/* Reorders p[0..n) (every pinned piece of a device, pinned bytes in all)
 * so that the ones to unpin come first, the latest pinned first, and
 * returns how many to unpin for the pins to fit room. */
size_t vp_stream_unpins(struct vp_pin *p, size_t n, uint64_t pinned, uint64_t room);

/* An operation waiting for the pieces it needs: whether it waits on after
 * waited_s seconds, at the end of a period of VP_STREAM_WAIT_MS. busy:
 * operations on streamed memory of its device are still being issued or
 * run (the room may be theirs), or the pager's moves are under way (the
 * pieces, or their room, may come from them: a slow host, or valgrind's
 * pace, stretches a round past a period); was_busy: either was at the end
 * of the period before. Waiting costs the device nothing while those run,
 * where a kernel reading its memory over the bus may read it hundreds of
 * times; without them the pager is not serving this one and it goes ahead
 * (once they ended, the pager gets one more period). Never past
 * VP_STREAM_WAIT_MAX_MS in all. */
#define VP_STREAM_WAIT_MS 200
#define VP_STREAM_WAIT_MAX_MS 5000
int vp_stream_wait_on(double waited_s, int busy, int was_busy);

/* Ranks c[0..n) by class, then key (enum vp_stream_class); marks want on
 * the longest prefix whose bytes fit budget. Reorders c; returns the bytes
 * wanted. Pinned pieces rank by pinning order so that, if the budget
 * shrinks, the same ones fall out every time (ranked by use, those about
 * to be used would: a loop's least recent). */
uint64_t vp_stream_desire(struct vp_spc *c, size_t n, uint64_t budget);

#endif
