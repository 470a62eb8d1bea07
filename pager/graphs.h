/* graphs.h - what a CUDA graph replay touches, learned from the operations
 * captured into it.
 *
 * Contract
 *   A graph replay is one cuGraphLaunch: the kernels inside are not seen.
 *   They are seen once, while a thread captures them (cuStreamBeginCapture
 *   .. cuStreamEndCapture): every operation the capturing thread issues
 *   meanwhile (a kernel launch, copy or memset, pager/pager.h) adds the
 *   paged addresses it carries to the thread's capture set. When the
 *   capture ends with a graph, the set (sorted, each address once) belongs
 *   to that graph; cuGraphInstantiate* copies it to the executable graph,
 *   and cuGraphExecUpdate gives an executable graph the set of the graph
 *   it is updated from.
 *   A replay of an executable graph with a set is an operation that uses
 *   the set's addresses, as a kernel launch would: the pager brings their
 *   pieces in before it (vp_pager_graph_begin, pager/pager.h). It still fences every
 *   paged allocation ("all"), as a graph of unknown contents does: a graph
 *   changed after its capture (nodes added or set, cuGraphExecUpdate) is
 *   not seen, and its set only misses pieces to bring in, never correctness.
 *
 *   Sets are kept for at most VP_GRAPHS_MAX graphs and as many executable
 *   graphs (the oldest forgotten first), each of at most VP_GRAPHS_ADDRS
 *   addresses (the first ones). A capture that ends on another thread
 *   than it began, or fails, gives no set. Operations of the capturing
 *   thread on streams it does not capture are counted in (a set larger
 *   than the graph's costs pieces brought in, not correctness).
 *
 *   Threads: the capture set is the thread's own; the tables of graphs
 *   have a leaf mutex. Fork: the child forgets every set (its CUDA context
 *   is gone).
 */
#ifndef VPAGE_PAGER_GRAPHS_H
#define VPAGE_PAGER_GRAPHS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/hooks.h"

#define VP_GRAPHS_MAX 256
#define VP_GRAPHS_ADDRS (1u << 20)

/* The calling thread began (+1) or ended (-1) a capture; at its end, graph
 * is what it gave (NULL: it failed). */
void vp_graphs_capture(int delta, CUgraph graph);

/* True when the calling thread is capturing (one thread-local load). */
int vp_graphs_capturing(void);

/* The paged addresses ptrs[0..n) (within [lo, hi)) of an operation the
 * capturing thread issues. */
void vp_graphs_note(const uint64_t *ptrs, size_t n, uint64_t lo, uint64_t hi);

/* graph was instantiated as exec, or exec updated from it: exec's set is
 * graph's (none when graph has none). */
void vp_graphs_instantiated(CUgraph graph, CUgraphExec exec);

/* A graph or an executable graph destroyed: its set goes. */
void vp_graphs_forget(CUgraph graph, CUgraphExec exec);

/* Before a replay of exec: its set's addresses (sorted), *n of them,
 * and a reference to give back with vp_graphs_release once they are read;
 * NULL when it has none. */
const uint64_t *vp_graphs_take(CUgraphExec exec, size_t *n, void **ref);
void vp_graphs_release(void *ref);

/* Replays that found a set, and graphs captured with one (for the report). */
uint64_t vp_graphs_replays_known(void);
uint64_t vp_graphs_captured(void);

/* The child after fork. */
void vp_graphs_reset_child(void);

#endif
