/* pageout.h - a weight file's pages given back to the kernel in the
 * background, off the thread that copied them (VPAGE_DROP_FILE_PAGES).
 *
 * Contract
 *   vp_pageout_queue(addr, len, tag) asks for madvise(MADV_PAGEOUT) of the
 *   whole pages of [addr, addr+len), later, on a thread of its own. The
 *   thread starts at the first call, blocks every signal (they are the
 *   program's) and calls no CUDA. A range that continues the last one queued
 *   (same tag, starting where it ends) and that the thread has not taken yet
 *   grows it: a loader's consecutive tensors become one call, and the page
 *   two tensors share goes too. When the queue is full, or the thread cannot
 *   start, the caller gives its range back itself: a loader faster than the
 *   kernel is slowed, never queued without bound.
 *   A page-out is a hint and never changes a byte: a file page is read again
 *   from the file, an anonymous one is swapped or kept. So a range the
 *   program unmaps (or maps anew) before its turn comes to no harm, and
 *   nothing waits for the queue at an munmap or at exit.
 *   tell(tag, bytes, ns), set once by vp_pageout_init, is called after each
 *   madvise that succeeded, with the bytes of its whole pages and the time
 *   it took, on the thread that made it, no lock of this file held.
 *   vp_pageout_drain() waits until nothing is queued or in flight (the
 *   report, tests).
 *
 * Locks: one mutex of its own, under which only the queue changes (no call
 * out of this file but the log's is made holding it). Fork: vp_pageout_reset_child() in
 * the child (no thread there, an empty queue, the mutex made anew).
 */
#ifndef VPAGE_BOOKS_PAGEOUT_H
#define VPAGE_BOOKS_PAGEOUT_H

#include <stddef.h>
#include <stdint.h>

void vp_pageout_init(void (*tell)(int tag, uint64_t bytes, uint64_t ns));
void vp_pageout_queue(uintptr_t addr, size_t len, int tag);
void vp_pageout_drain(void);
void vp_pageout_reset_child(void);

#endif
