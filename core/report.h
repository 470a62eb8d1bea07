/* report.h - the stats report: what vpage counted, moved and saw.
 *
 * Contract
 *   One document joins every module's part: counted bytes per device and
 *   kind (books/account.h), the counters per entry point (common/stats.h),
 *   the kernels launched most (books/registry.h), the weight files
 *   (books/weights.h), and the pager's report with the stream-ordered
 *   cache's fields (pager/pager.h, pager/apool.h). Each module writes its
 *   part through an emitter (vp_emit_fn); no module below reaches up here.
 *   Written as JSON (VPAGE_STATS_FILE) and as a table on stderr
 *   (VPAGE_STATS) at exit, only in a process that made CUDA calls, and
 *   readable at any time through the exported vpage_stats_json()
 *   (include/vpage.h). Rendering allocates (malloc) once and takes only
 *   the modules' own locks, one at a time.
 */
#ifndef VPAGE_CORE_REPORT_H
#define VPAGE_CORE_REPORT_H

#include <stddef.h>

/* Writes the JSON document into buf (always NUL-terminated when len > 0).
 * Returns the length the whole document needs, like snprintf. */
size_t vp_report_json(char *buf, size_t len);

/* The exit-time report (see contract). */
void vp_report_at_exit(void);

#endif
