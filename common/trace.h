/* trace.h - the trace (VPAGE_TRACE): one line per event of the stream
 * pager and of the program's operations on streamed memory, for reading
 * afterwards (scripts/vpage-trace).
 *
 * Contract
 *   Off unless VPAGE_TRACE names a file (%p becomes the process id):
 *   vp_trace_on() is then one relaxed load. The file is opened at the first
 *   event, so nothing happens before the program's first CUDA call; lines
 *   go through a buffer under one leaf lock (no driver call and no other
 *   vpage lock is taken under it), flushed when it fills and at exit
 *   (vp_trace_close, from the exit dump). A child after fork drops the
 *   parent's buffer and file and opens its own at its first event (the
 *   same name unless it holds %p: then both append, lines whole).
 *
 *   Format: tab-separated text; field 1 is microseconds since the trace
 *   began, field 2 the event; the rest depend on the event:
 *     alloc  dev base bytes pieces piece_bytes   a streamed allocation
 *     free   dev base
 *     op     dev tick what waited_us base...     an operation on streamed
 *            memory (what: a kernel's name, copy, graph; tick 0 for those
 *            that are not uses), the allocations it touches ("all": every one)
 *     in     dev base piece bytes ahead tick cls a piece came in (ahead: before
 *                                                any operation asked for it; tick:
 *                                                the launch it was planned at then,
 *                                                else 0; cls: the class it ranked in
 *                                                then, enum vp_stream_class of
 *                                                policy/stream.h, else -1). Lines follow the order
 *                                                events ended: an operation's is
 *                                                written once it stopped waiting,
 *                                                so ticks tell what came first
 *     out    dev base piece bytes written        a piece left (written: copied back;
 *                                                not when untouched, or its hash
 *                                                showed it unchanged)
 *     map    dev base piece bytes us             a bare piece's host memory mapped
 *                                                for an operation (VPAGE_STREAM_LAZY_MAP)
 *     pin    dev base piece bytes                / unpin: kept resident across the loop, or no more
 *     round  dev moves copy_us remap_us          a round of moves ended
 *     freed  dev moves copy_us remap_us          a round's out-moves ended ahead of
 *                                                the rest (VPAGE_STREAM_FREE_EARLY): its
 *                                                out lines follow this line, its in
 *                                                lines its round line
 *     plan   dev budget hot cold pinned window   a plan that made moves
 *     idle   why us                             the pager slept with no round in
 *                                                flight (why: 0 nothing to move,
 *                                                bits 1 a move waits for operations
 *                                                on its allocation, 2 for room)
 *   Addresses in hex, sizes in bytes.
 */
#ifndef VPAGE_COMMON_TRACE_H
#define VPAGE_COMMON_TRACE_H

#include <stdatomic.h>

extern atomic_int vp_trace_state; /* 0 unknown, 1 on, -1 off */

/* True when events are traced (decided at the first call, from VPAGE_TRACE). */
int vp_trace_on_slow(void);
static inline int vp_trace_on(void)
{
    int s = atomic_load_explicit(&vp_trace_state, memory_order_relaxed);
    return s ? s > 0 : vp_trace_on_slow();
}

/* Writes one event line: the time, then event, then fmt's fields (which
 * start with a tab). */
void vp_trace(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Flushes and closes the file (exit). */
void vp_trace_close(void);

/* The child after fork: the parent's buffer and file are not its own. */
void vp_trace_reset_child(void);

#endif
