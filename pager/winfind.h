/* winfind.h - the replayed table's window from the step's times
 * (VPAGE_TABLE_WINDOW=timed, pager/replay.h), found off the pager's lock.
 *
 * Contract
 *   vp_winfind_start copies the step and runs vp_replay_window_timed
 *   (policy/replay.h: six replays of the step, seconds for a large one) on
 *   a detached thread of its own that takes no signal and makes no CUDA
 *   call, at VP_WINFIND_BUS bytes a second each way; once per process
 *   (later calls do nothing). vp_winfind_found is 0 until that window is
 *   found, then the window: the caller (pager/replay.c, under the stream
 *   pager's mutex) keeps its own rule meanwhile. When the copy or the
 *   thread cannot be had it says so once and nothing is ever found. The
 *   thread owns its copy: the table may be dropped while it runs. A child
 *   after fork finds nothing (the thread is the parent's).
 */
#ifndef VPAGE_PAGER_WINFIND_H
#define VPAGE_PAGER_WINFIND_H

#include <stdint.h>

#include "../policy/plan.h"

#define VP_WINFIND_BUS 55e9 /* the H100's pinned copies each way (../shared/DEVICE-FACTS.md) */

/* Starts finding the window of step s under budget, in pieces of piece. */
void vp_winfind_start(const struct vp_step *s, uint64_t budget, uint64_t piece);

/* The window found; 0 while none is. */
uint64_t vp_winfind_found(void);

#endif
