/* options.h - vpage's options: one table, read from the environment once.
 *
 * Contract
 *   Every tunable is a row of VP_OPTIONS: environment name (VPAGE_ + NAME),
 *   type, default, bounds where numeric, one line of documentation. Nothing
 *   else in the library reads the environment.
 *   vp_options_load() parses them all (called once, at lazy init); the
 *   struct vp_options it fills is read-only afterwards. A malformed value is
 *   reported on one line naming the variable, the value and what is used
 *   instead; a malformed VPAGE_CAP is never replaced by "no limit": the load
 *   fails and the library refuses to run.
 *   Types: size (bytes, K/M/G/T suffixes, binary, optional 'B'/'iB', a
 *   decimal fraction allowed: 1.5G), bool (1/true/yes/on, 0/false/no/off),
 *   level (error/warn/info/debug), string, cap (see vp_cap_parse), choice
 *   (one of the names the option's doc line lists).
 */
#ifndef VPAGE_COMMON_OPTIONS_H
#define VPAGE_COMMON_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vp.h"

enum vp_level { VP_ERROR, VP_WARN, VP_INFO, VP_DEBUG };
enum vp_paging { VP_PAGING_OFF, VP_PAGING_DEMAND, VP_PAGING_STREAM };
enum vp_clean_evict { VP_EVICT_COLLAPSE, VP_EVICT_WRITEBACK };
enum vp_stream_place { VP_PLACE_HOST, VP_PLACE_DEVICE };
enum vp_policy_opt { VP_POLICY_OPT_LRU, VP_POLICY_OPT_LOOP };
enum vp_cupti { VP_CUPTI_AUTO, VP_CUPTI_ON, VP_CUPTI_OFF };
enum vp_table_window { VP_TABLE_WINDOW_RULE, VP_TABLE_WINDOW_TIMED };

#define VP_PATTERN_MAX 128 /* bytes of one VPAGE_WEIGHT_FILES pattern, with its NUL */
#define VP_STREAM_RESERVE_DEFAULT "256M" /* VPAGE_STREAM_RESERVE's (vpage-table's --reserve too) */

struct vp_cap {
    uint64_t all;                  /* cap for unlisted devices, VP_NO_CAP if none */
    uint64_t dev[VP_MAX_DEVICES];  /* per-device cap, VP_NO_CAP if none */
};

/*  X(NAME, field, type, default, doc) */
#define VP_OPTIONS(X)                                                              \
    X(CAP, cap, CAP, "none",                                                       \
      "device memory cap: one size for every device (16G), per device "            \
      "(0:16G,1:24G), or none")                                                    \
    X(LOG, log, LEVEL, "warn", "log level on stderr: error, warn, info, debug")    \
    X(STATS, stats, BOOL, "off", "print a table of counted bytes and calls to "    \
      "stderr at exit")                                                            \
    X(STATS_FILE, stats_file, STRING, "", "write the stats as JSON to this path "  \
      "at exit; %p becomes the process id")                                        \
    X(TRACE, trace, STRING, "", "write a trace of stream mode's moves and of "   \
      "the operations on streamed memory to this path (appended; %p becomes "    \
      "the process id); read it with scripts/vpage-trace")                       \
    X(TABLE, table, STRING, "", "stream mode: the page table of the program's " \
      "loop: read from this path at start if it is there (the step is then "     \
      "replayed from the first: pieces come in ahead of use by the recorded "    \
      "step), written at exit (one step, found in its launches); %p becomes "    \
      "the process id; read it with vpage-table")                                \
    X(CUPTI, cupti, CHOICE, "auto", "stream mode, with VPAGE_TABLE: the "         \
      "kernels' times on the device from CUPTI's activity records, written in "    \
      "the table (auto: when it can be loaded, else one info line; on: the same, " \
      "a warning when it cannot; off: never loaded, times 0; another tool that "   \
      "takes CUPTI's activity buffers, torch.profiler or Nsight, gets none while " \
      "vpage has them)")                                                          \
    X(LIBCUDA, libcuda, STRING, "libcuda.so.1", "the driver library to load")      \
    X(WEIGHT_FILES, weight_files, STRING, "*.safetensors,*.bin,*.pt,*.pth,*.ckpt,*.gguf", \
      "weight files to track (shell patterns on the file name, comma-separated; "  \
      "none: track nothing; read when the library loads, before the program "    \
      "runs)")                                                                     \
    X(WARN_MAX, warn_max, SIZE, "20", "most copies of one repeated warning "       \
      "(then they are counted only)")                                              \
    X(PAGING, paging, CHOICE, "off", "off: allocations past the cap fail; demand: " \
      "cuMemAlloc memory and the default pool's cuMemAllocAsync are paged (host " \
      "RAM holds them, the pager keeps what kernels touch resident under the "    \
      "cap); stream: that memory lives in host RAM and pieces are copied into "   \
      "device memory of exact size ahead of use (pager/stream.h, pager/apool.h)") \
    X(PAGED_LIMIT, paged_limit, SIZE, "0", "most bytes of paged allocations per " \
      "device (they live in host RAM); 0: the host's RAM")                        \
    X(POLICY, policy, CHOICE, "lru", "which chunks the pager lets in and evicts: " \
      "lru (every chunk a launch touches; least recently used leave) or loop "    \
      "(by next use estimated from the last interval; see policy/demand.h)")      \
    X(CHUNK, chunk, SIZE, "64M", "bytes the pager moves at a time (a multiple "   \
      "of 2M)")                                                                   \
    X(STREAM_WINDOW, stream_window, SIZE, "0", "stream mode: device bytes kept " \
      "free of pinned pieces for what streams through; 0: a quarter of the "     \
      "budget (policy/stream.h)")                                                 \
    X(STREAM_RESERVE, stream_reserve, SIZE, VP_STREAM_RESERVE_DEFAULT, "stream mode, while more " \
      "than the cap streams: device bytes the plan keeps free of wanted "       \
      "pieces and of pins (at most an eighth of the budget, in whole pieces), " \
      "so that a piece coming in finds room at once and its copy runs while "   \
      "others leave; 0: each piece waits for the one it replaces to leave")   \
    X(TABLE_WINDOW, table_window, CHOICE, "rule", "stream mode, with "          \
      "VPAGE_TABLE: the replayed table's window (the budget its pins leave to " \
      "what streams): rule: twice the most bytes one launch touches; timed: "   \
      "the window whose replay of the table simulates fastest from its "         \
      "kernels' times at 55 GB/s each way (vpage-table simulate "               \
      "--best-window), found by a thread of its own once the table is read, "   \
      "the rule's serving until then; VPAGE_STREAM_WINDOW, when not 0, wins")   \
    X(TABLE_LEAVE_STALE, table_leave_stale, BOOL, "off", "stream mode, with " \
      "VPAGE_TABLE: a piece a launch touches where the table's launch does "    \
      "not, the first such launch on it within a step (a stale word of the "    \
      "kernel's parameters, as a rule), is left on the host for it, its host "  \
      "memory mapped, instead of brought in before the launch; a second such "  \
      "launch ranks it online (replay_off_pieces) either way")                  \
    X(TABLE_LEAVE_THIN, table_leave_thin, BOOL, "off", "stream mode, with "    \
      "VPAGE_TABLE: a launch the table's times say is too short to have read "  \
      "what it points at (an embedding's lookup: it reads a row of a table of " \
      "a GiB) leaves those pieces on the host, their host memory mapped, "      \
      "where they are not resident, and the step's plan does not count them "   \
      "(thin_left; vpage-table show lists such launches)")                      \
    X(STREAM_PLACE, stream_place, CHOICE, "host", "stream mode: where a new "  \
      "allocation's pieces start: host (they come in when an operation uses "   \
      "them) or device (while the cap has room, as on a GPU of that size)")     \
    X(STREAM_HASH, stream_hash, BOOL, "on", "stream mode: a piece operations "  \
      "touched leaves without a copy back when its hash, taken on the device, " \
      "is the one of its host memory (a one-word change always shows; "        \
      "pager/hash.h); off: every touched piece is copied back")                 \
    X(STREAM_LAZY_MAP, stream_lazy_map, BOOL, "on", "stream mode: a piece "    \
      "that leaves the device is left unmapped (cheap for the driver) until "   \
      "an operation vpage sees touches its allocation, which then maps its "    \
      "host memory; off: mapped back at once, so what the hooks cannot see "    \
      "reads it remotely")                                                      \
    X(STREAM_FREE_EARLY, stream_free_early, BOOL, "on", "stream mode: the "   \
      "pieces a round sends out are remapped and their room given back "       \
      "before the next plan, without waiting for the round's copies in, so "    \
      "that the next round may use it; off: a round ends as one after its "     \
      "copies in")                                                              \
    X(STREAM_MAP_EARLY, stream_map_early, BOOL, "off", "stream mode: a piece " \
      "coming in to an unmapped address gets its slot mapped there while its "  \
      "copy runs (the operations that need it still wait for the copy), so "    \
      "that nothing is left to remap once the copy is done; off: mapped after " \
      "the copy")                                                               \
    X(STREAM_AHEAD, stream_ahead, BOOL, "on", "stream mode: pieces come in "    \
      "ahead of use, in the order the loop seen so far predicts, and part of "  \
      "a loop larger than the budget stays pinned; off: demand paging, a "      \
      "piece comes in only when an operation asks for it and the least "        \
      "recently used leave first")                                              \
    X(STREAM_FIT, stream_fit, BOOL, "on", "stream mode: while every streamed " \
      "piece is resident, the program's operations are not fenced (no lock, "   \
      "no event: free when nothing moves); the first move after waits for the " \
      "device once; off: every operation on streamed memory is fenced")        \
    X(STREAM_PREMADE, stream_premade, SIZE, "1G", "stream mode: host memory "  \
      "of pieces made ahead, by a thread of its own, while the program makes "   \
      "streamed allocations: as many bytes as it allocated in the last second, " \
      "at most this many, within VPAGE_PAGED_LIMIT; given back a second after "  \
      "the last allocation (0: each allocation makes its own)")                  \
    X(STREAM_THREADS, stream_threads, SIZE, "4", "stream mode: threads that "   \
      "remap pieces at once, the pager's own included (1 to 16; the driver "    \
      "remaps different ranges in parallel)")                                   \
    X(CLEAN_EVICT, clean_evict, CHOICE, "collapse", "how chunks that are clean "  \
      "copies of weight-file bytes leave the device: collapse (read-mostly "       \
      "duplicate dropped, no bus traffic) or writeback (copied back to the host)") \
    X(DROP_FILE_PAGES, drop_file_pages, BOOL, "on", "stream mode: the pages "   \
      "of a mapped weight file leave the host's page cache once copied into "     \
      "streamed memory, whose bytes vpage keeps in host memory itself (the "      \
      "model is then held once, not twice; a later load reads them from the "     \
      "disk again; given back on a thread of its own, the copies do not wait); " \
      "off: they stay cached")                                                   \
    X(HELP, help, BOOL, "off", "print every option with its value and origin "     \
      "on first CUDA use")

struct vp_options {
    struct vp_cap cap;
    enum vp_level log;
    bool stats;
    char stats_file[512];
    char trace[512];
    char table[512];
    char libcuda[512];
    char weight_files[512];
    uint64_t warn_max;
    int paging;       /* enum vp_paging */
    uint64_t paged_limit;
    uint64_t chunk;
    uint64_t stream_window;
    uint64_t stream_reserve;
    uint64_t stream_threads;
    uint64_t stream_premade;
    bool stream_hash;
    bool stream_lazy_map;
    bool stream_free_early;
    bool stream_map_early;
    bool table_leave_stale;
    bool table_leave_thin;
    bool stream_ahead;
    bool stream_fit;
    int policy;       /* enum vp_policy_opt */
    int clean_evict;  /* enum vp_clean_evict */
    bool drop_file_pages;
    int stream_place; /* enum vp_stream_place */
    int cupti;        /* enum vp_cupti */
    int table_window; /* enum vp_table_window */
    bool help;
    /* where each value came from: 0 default, 1 environment, 2 bad value */
    unsigned char origin[32];
};

/* The options in force (defaults until vp_options_load runs). */
extern struct vp_options vp_opt;

/* Parses every option from the environment into vp_opt. Returns 0, or -1
 * when VPAGE_CAP is malformed (already reported on stderr). */
int vp_options_load(void);

/* Prints every option with value, origin and doc line to stderr. */
void vp_options_print(void);

/* Parsers, exposed for tests. Each returns 0 on success, -1 with *why set
 * to a static description on failure. */
int vp_parse_size(const char *s, uint64_t *out, const char **why);
int vp_parse_bool(const char *s, bool *out, const char **why);
int vp_parse_level(const char *s, enum vp_level *out, const char **why);
int vp_cap_parse(const char *s, struct vp_cap *out, const char **why);

/* VPAGE_WEIGHT_FILES as the file hooks use it: the patterns, or "" for
 * none. Read on its own, once, when the library loads (the program opens
 * its weight files before CUDA starts, and nothing may be reported then;
 * the table's line about a bad value comes at vp_options_load): a later
 * change of the environment does not change them. It never waits: a
 * caller that comes while they are being read (an open from another
 * library's constructor) reads them into own and gets own back. */
#define VP_PATTERNS_BYTES 512
const char *vp_weight_patterns(char own[VP_PATTERNS_BYTES]);

/* Cap of one device, VP_NO_CAP when none applies. */
uint64_t vp_cap_of(int dev);

/* Formats bytes as "1.50 GiB" into buf (at least 16 bytes). */
const char *vp_fmt_bytes(uint64_t b, char *buf, size_t len);

#endif
