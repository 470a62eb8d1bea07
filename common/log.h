/* log.h - messages on stderr.
 *
 * Contract
 *   Every line starts "vpage[pid]: " and is written with one write(2) from a
 *   stack buffer: no allocation, no stdio locks, safe in any thread and
 *   inside driver callbacks. A thread that is already printing (printing
 *   reached back into vpage) drops the nested message instead of recursing.
 *   vp_log prints when level <= VPAGE_LOG; vp_log_always ignores the level
 *   (the one-line errors about bad options, the refusal to run).
 *   vp_log_limited prints at most VPAGE_WARN_MAX copies per counter, then one
 *   line saying the rest are only counted.
 */
#ifndef VPAGE_COMMON_LOG_H
#define VPAGE_COMMON_LOG_H

#include <stdatomic.h>
#include <stdint.h>

#include "options.h"

void vp_log(enum vp_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vp_log_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vp_log_limited(enum vp_level level, atomic_uint_fast64_t *count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vp_error(...) vp_log(VP_ERROR, __VA_ARGS__)
#define vp_warn(...) vp_log(VP_WARN, __VA_ARGS__)
#define vp_info(...) vp_log(VP_INFO, __VA_ARGS__)
#define vp_debug(...) vp_log(VP_DEBUG, __VA_ARGS__)

#endif
