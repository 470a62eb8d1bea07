/* stream.h - the stream pager (VPAGE_PAGING=stream): exact device
 * residency through the driver's virtual memory management.
 *
 * Contract
 *   vp_pager_stream (pager/pager.h), in pager/stream/ (internal.h says which
 *   file does what). cuMemAlloc_v2 allocations (and the paged
 *   allocations of pager/apool.h's cache) are backed by
 *   host-located physical memory (cuMemCreate, CU_MEM_LOCATION_TYPE_HOST_NUMA)
 *   mapped at the program's address: the device reads and writes what is
 *   not resident over the bus, so a piece the pager did not bring in costs
 *   speed, never correctness. They count against VPAGE_PAGED_LIMIT, not the
 *   cap.
 *
 *   A piece (VPAGE_CHUNK bytes, rounded to the driver's granularity) is
 *   made resident by copying it into device memory of its own (a "slot",
 *   counted against the cap as kind "resident" from before its creation
 *   until after its release) and remapping the program's address to the
 *   slot; it leaves by copying back (if an operation touched it since it
 *   came in and, with VPAGE_STREAM_HASH, its hash taken on the device is
 *   no longer that of its host memory: pager/hash.h) and unmapping the
 *   address. With VPAGE_STREAM_LAZY_MAP (default) the address then maps
 *   nothing (the piece is "bare") until an operation its op_begin
 *   fences touches its allocation: that operation's thread maps the host
 *   memory first. Without it the host memory is mapped back in the move,
 *   and so it is after the first operation that touches every streamed
 *   allocation (a graph replay: each would map every bare piece again).
 *   Unlike managed memory, the device's own use is exactly the slots:
 *   nothing the driver keeps behind the pager's books
 *   (bench/probes/uvm_keep.c).
 *
 *   Which pieces are resident is the policy's (policy/stream.h): pieces
 *   come in ahead of use, by the next use the loop seen so far predicts,
 *   and part of a loop larger than the budget stays pinned. With
 *   VPAGE_STREAM_AHEAD=off it is demand paging instead: a piece comes in
 *   only when an operation asks for it, nothing is pinned, and the least
 *   recently used resident pieces leave first.
 *
 *   With VPAGE_STREAM_PLACE=device a new allocation's pieces start in
 *   slots while the cap has room (their bytes are undefined, as
 *   cuMemAlloc's are: nothing is copied); pieces placed and not yet used
 *   rank last and leave first.
 *
 *   Between the unmap and the map of a move the address is not mapped: a
 *   kernel or copy touching it then would fault the context. So a piece
 *   moves only while no operation that may touch its allocation is being
 *   issued or is in flight, and operations wait for moves of the
 *   allocations they touch:
 *   - every launch and copy the hooks see calls its op_begin with the
 *     pointers it carries (for kernels: every 8-byte word of the parameters
 *     that falls inside a streamed allocation, by-value structs included:
 *     pager/launch.h) and op_end after issuing, which records an event on its stream;
 *     the whole allocation a pointer falls in is taken as touched;
 *   - a graph replay touches everything (its kernels are not seen);
 *   - the pager moves a piece of an allocation only when no operation on it
 *     is being issued and the event of the latest one has completed.
 *   What the hooks cannot see (pointers stored in device memory and
 *   dereferenced by a kernel, copies through entry points vpage does not
 *   wrap) is not protected (with lazy mapping it faults on a bare piece): this mode is for programs whose kernels get
 *   their buffers as parameters, as PyTorch's and cuBLAS's do.
 *
 *   Threads: the pager thread (started at the first streamed allocation)
 *   plans and makes every move, on streams of its own; helpers
 *   (VPAGE_STREAM_THREADS in all, pager/shared.h's pool) remap the runs of a
 *   round at once. It plans again
 *   after an operation that needs a piece not resident, uses a piece that
 *   is neither pinned nor hot, or ends while a move waits for it, and
 *   while moves are under way; a loop whose pieces all stay resident is
 *   not planned (a plan holds the lock every launch takes). A launching thread
 *   waits for pieces its launch needs that the pager is bringing in, so the
 *   program does not run far ahead of the data, for as long as the policy
 *   says (vp_stream_wait_on, policy/stream.h). Then it goes ahead (stat
 *   wait_timeouts) and its kernel reads over the bus.
 *
 *   Locks: one mutex, last in the lock order but for two leaf locks: the
 *   event ring's and the trace's (common/trace.h). The exceptions to vpage's rule that no lock is held across a
 *   driver call are here: planning asks cuEventQuery (which does not block)
 *   with both held; the ring's lock is held across cuEventCreate, Query and
 *   Record, and across cuEventSynchronize when a slot comes round again
 *   while its operation is still in flight (4096 operations outstanding)
 *   or an allocation is freed. Not yet measured to matter; moving these
 *   calls out of the locks was written but not run on a GPU, so it is not
 *   in.
 */
#ifndef VPAGE_PAGER_STREAM_H
#define VPAGE_PAGER_STREAM_H

#include "pager.h"

extern const struct vp_pager_ops vp_pager_stream;

#endif
