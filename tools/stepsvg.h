/* stepsvg.h - a picture of one simulated step (policy/plan.h's
 * vp_plan_times) as an SVG timeline, for vpage-table draw.
 *
 * Contract
 *   Writes one self-contained SVG document to out: four lanes over the
 *   steady-state step's span, left to right in time: the kernels (each
 *   launch a bar, a wait before it in red), the copies in (host to device),
 *   the copies back (device to host, dirty pieces leaving), and the room
 *   held on the device against the budget (a dashed line). Reads only what
 *   it is given; sorts tm->events in place (by time, frees first). Returns
 *   0, or -1 when out of memory or out fails.
 */
#ifndef VPAGE_TOOLS_STEPSVG_H
#define VPAGE_TOOLS_STEPSVG_H

#include <stdint.h>
#include <stdio.h>

#include "../policy/plan.h"

int vp_step_svg(FILE *out, const struct vp_step *s, const struct vp_plan *p, struct vp_plan_times *tm,
                uint64_t budget, const char *title);

#endif
