/* vp.h - small definitions shared by every part of libvpage.
 *
 * Glossary
 *   counted bytes  device memory vpage attributes to the program: plain and
 *                  pitched allocations, pool reservations, device-located VMM
 *                  chunks, managed allocations and arrays.
 *   cap            the most counted bytes a device may hold (VPAGE_CAP).
 *   hook           a driver entry point vpage wraps (interpose/hooks.h).
 *   real           the driver's own function behind a hook (struct vp_real).
 */
#ifndef VPAGE_COMMON_VP_H
#define VPAGE_COMMON_VP_H

#include <stdint.h>

#define VP_EXPORT __attribute__((visibility("default")))
#define vp_likely(x) __builtin_expect(!!(x), 1)
#define vp_unlikely(x) __builtin_expect(!!(x), 0)

/* Devices vpage keeps books for; ordinals past this are passed through
 * uncounted, with a warning. */
#define VP_MAX_DEVICES 64

/* Bytes kept of a kernel's name, its end included (books/registry.h): longer
 * names (C++ templates) are cut there wherever vpage keeps or compares them. */
#define VP_KERNEL_NAME 192

#define VP_NO_CAP UINT64_MAX

/* Where a report goes: each module writes its part of the stats (JSON or
 * table lines) through one of these (core/report.c). */
typedef void (*vp_emit_fn)(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
