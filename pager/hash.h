/* hash.h - a 128-bit hash of device memory, computed on the device, so
 * that the stream pager can tell a piece that operations touched but did
 * not change (weights read by a kernel) from one they wrote, and skip
 * copying the former back.
 *
 * Contract
 *   The hash of n 64-bit words w[0..n) is the pair
 *       h1 = sum over i of m1(i),  m1(i) = fmix64(w[i] + (i + 1) * VP_HASH_K1)
 *       h2 = sum over i of m2(i),  m2(i) = fmix64(m1(i) ^ VP_HASH_K2)
 *   (sums modulo 2^64; fmix64 is MurmurHash3's finaliser, a bijection).
 *   For each i, m1(i) is a bijection of w[i]: a change of one word always
 *   changes h1. A change of several words leaves both sums equal only if
 *   their differences cancel in both lanes, which for data not built to
 *   collide happens with probability about 2^-128. Sums commute, so the
 *   device adds in any order and the result does not depend on the launch
 *   geometry.
 *
 *   vp_hash_ref computes it on the host (the fake driver's kernel and the
 *   GPU suite's check use it). vp_hash_ptx is the kernel "vp_hash" in PTX
 *   (JIT-compiled by the driver at cuModuleLoadData), parameters
 *   (const u64 *src, u64 nwords, u64 *out): block b writes its partial
 *   sums to out[2b] and out[2b+1]; the caller adds the partials of all
 *   blocks (vp_hash_combine). Blocks must be VP_HASH_THREADS threads.
 */
#ifndef VPAGE_PAGER_HASH_H
#define VPAGE_PAGER_HASH_H

#include <stdint.h>

#define VP_HASH_K1 0x9e3779b97f4a7c15ull
#define VP_HASH_K2 0xd6e8feb86659fd93ull
#define VP_HASH_THREADS 256
#define VP_HASH_MAX_BLOCKS 256

extern const char vp_hash_ptx[];

/* Blocks to launch for nwords words (1..VP_HASH_MAX_BLOCKS). */
unsigned vp_hash_blocks(uint64_t nwords);

/* Adds the partials of nblocks blocks into h[2]. */
void vp_hash_combine(const uint64_t *partials, unsigned nblocks, uint64_t h[2]);

/* The hash of w[0..n) computed here. */
void vp_hash_ref(const uint64_t *w, uint64_t n, uint64_t h[2]);

#endif
