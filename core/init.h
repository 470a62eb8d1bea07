/* init.h - the start-up wiring: lazy start, fork, exit.
 *
 * Contract
 *   Nothing runs at load time: the library may be preloaded into every
 *   process of a job (shells, timeout, compilers). vp_init() runs once, on
 *   the first lookup or call of a driver function, in whichever thread
 *   makes it: the options, the driver, the pager (pager/pager.h), the fork
 *   handlers. A driver call vpage makes while starting (or anything that
 *   reaches back into vpage from the same thread) sees "not ready" and
 *   passes through. At exit (the library's destructor, only in a process
 *   that started) the pager stops, the report is written and the trace
 *   closed.
 *
 *   Lock order (outer first), for the fork handler and anyone adding locks:
 *     registry mutex (books/registry.h) -> tensor maps -> ptrs -> handles ->
 *     arrays -> pools (core/mem.c) -> async cache (pager/apool.h) -> its
 *     block map -> weights (books/weights.h) -> the pager's mutex -> the
 *     stream pager's event ring; the trace's lock (common/trace.h) is a
 *     leaf under any of them. The fork handler does not take it: the child
 *     makes it anew and drops the parent's buffer.
 *   No vpage lock is held across a driver call, except in the stream
 *   pager (event queries and records; pager/stream.h lists them).
 */
#ifndef VPAGE_CORE_INIT_H
#define VPAGE_CORE_INIT_H

/* Safe to call from any thread, any number of times; cheap once done.
 * Returns 0 once the driver is loaded, -1 if it could not be (the caller
 * passes through or fails as the driver would when absent). */
int vp_init(void);

/* True when vpage refuses to run: the shims then fail cuInit and every
 * allocation. It refuses on a malformed VPAGE_CAP, and, with a cap set
 * or paging on (vp_capped), rather than let the program run uncapped:
 * when the driver cannot be loaded (every driver call then fails as
 * without one), or when the program finds a driver function in another
 * copy of the driver than the one vpage wraps (vp_refuse_foreign). Each
 * refusal is one line, whatever VPAGE_LOG says. */
int vp_refused(void);

/* Why, for cuInit's line ("" when not refused). */
const char *vp_refused_why(void);

/* A cap is set on some device, or paging is on. */
int vp_capped(void);

/* The driver could not be loaded (not: vpage is still starting). */
int vp_driver_failed(void);

/* The program found name at fn, in another copy of the driver than
 * vpage's, with a cap set: refuses from now on (see vp_refused). */
void vp_refuse_foreign(const char *name, const void *fn);

#endif
