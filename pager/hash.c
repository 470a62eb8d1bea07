/* hash.c - see hash.h. */
#include "hash.h"

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

void vp_hash_ref(const uint64_t *w, uint64_t n, uint64_t h[2])
{
    uint64_t h1 = 0, h2 = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t m1 = fmix64(w[i] + (i + 1) * VP_HASH_K1);
        h1 += m1;
        h2 += fmix64(m1 ^ VP_HASH_K2);
    }
    h[0] = h1;
    h[1] = h2;
}

unsigned vp_hash_blocks(uint64_t nwords)
{
    /* about 32 words a thread, at most VP_HASH_MAX_BLOCKS blocks */
    uint64_t b = nwords / (VP_HASH_THREADS * 32ull);
    return b < 1 ? 1 : b > VP_HASH_MAX_BLOCKS ? VP_HASH_MAX_BLOCKS : (unsigned)b;
}

void vp_hash_combine(const uint64_t *partials, unsigned nblocks, uint64_t h[2])
{
    h[0] = h[1] = 0;
    for (unsigned b = 0; b < nblocks; b++) {
        h[0] += partials[2 * b];
        h[1] += partials[2 * b + 1];
    }
}

/* fmix64 of register x (t: a scratch register). The constants are those of
 * fmix64 above, as signed decimals (PTX's integer literals are signed). */
#define FMIX(x, t)                                                                                 \
    "\tshr.b64 " t ", " x ", 33;\n\txor.b64 " x ", " x ", " t ";\n"                                \
    "\tmul.lo.s64 " x ", " x ", -49064778989728563;\n"                                             \
    "\tshr.b64 " t ", " x ", 33;\n\txor.b64 " x ", " x ", " t ";\n"                                \
    "\tmul.lo.s64 " x ", " x ", -4265267296055464877;\n"                                           \
    "\tshr.b64 " t ", " x ", 33;\n\txor.b64 " x ", " x ", " t ";\n"

/* adds lane (lane ^ k)'s value of the 64-bit register x to x */
#define BFLY(x, k)                                                                                 \
    "\tmov.b64 {%r5, %r6}, " x ";\n"                                                               \
    "\tshfl.sync.bfly.b32 %r7, %r5, " k ", 31, -1;\n"                                              \
    "\tshfl.sync.bfly.b32 %r8, %r6, " k ", 31, -1;\n"                                              \
    "\tmov.b64 %rd14, {%r7, %r8};\n"                                                               \
    "\tadd.u64 " x ", " x ", %rd14;\n"
#define BFLY2(k) BFLY("%rd8", k) BFLY("%rd9", k)

const char vp_hash_ptx[] =
    ".version 7.0\n"
    ".target sm_70\n"
    ".address_size 64\n"
    "\n"
    ".visible .entry vp_hash(.param .u64 src, .param .u64 nwords, .param .u64 out)\n"
    "{\n"
    "\t.reg .pred %p<4>;\n"
    "\t.reg .b32 %r<16>;\n"
    "\t.reg .b64 %rd<32>;\n"
    "\t.shared .align 8 .b64 part[16];\n"
    "\tld.param.u64 %rd1, [src];\n"
    "\tld.param.u64 %rd2, [nwords];\n"
    "\tld.param.u64 %rd3, [out];\n"
    "\tcvta.to.global.u64 %rd1, %rd1;\n"
    "\tcvta.to.global.u64 %rd3, %rd3;\n"
    "\tmov.u32 %r1, %ctaid.x;\n"
    "\tmov.u32 %r2, %ntid.x;\n"
    "\tmov.u32 %r3, %tid.x;\n"
    "\tmov.u32 %r4, %nctaid.x;\n"
    "\tmul.wide.u32 %rd4, %r1, %r2;\n"
    "\tcvt.u64.u32 %rd5, %r3;\n"
    "\tadd.u64 %rd6, %rd4, %rd5;\n" /* i */
    "\tmul.wide.u32 %rd7, %r4, %r2;\n" /* stride */
    "\tmov.u64 %rd8, 0;\n"
    "\tmov.u64 %rd9, 0;\n"
    "LOOP:\n"
    "\tsetp.ge.u64 %p1, %rd6, %rd2;\n"
    "\t@%p1 bra DONE;\n"
    "\tshl.b64 %rd10, %rd6, 3;\n"
    "\tadd.u64 %rd11, %rd1, %rd10;\n"
    "\tld.global.nc.u64 %rd12, [%rd11];\n"
    "\tadd.u64 %rd13, %rd6, 1;\n"
    "\tmul.lo.s64 %rd13, %rd13, -7046029254386353131;\n"
    "\tadd.u64 %rd13, %rd13, %rd12;\n"
    FMIX("%rd13", "%rd15")
    "\tadd.u64 %rd8, %rd8, %rd13;\n"
    "\txor.b64 %rd16, %rd13, -2960836687051489901;\n"
    FMIX("%rd16", "%rd15")
    "\tadd.u64 %rd9, %rd9, %rd16;\n"
    "\tadd.u64 %rd6, %rd6, %rd7;\n"
    "\tbra LOOP;\n"
    "DONE:\n"
    BFLY2("16") BFLY2("8") BFLY2("4") BFLY2("2") BFLY2("1")
    "\tand.b32 %r9, %r3, 31;\n"
    "\tshr.u32 %r10, %r3, 5;\n"
    "\tsetp.ne.u32 %p2, %r9, 0;\n"
    "\t@%p2 bra SYNC;\n"
    "\tmov.u32 %r11, part;\n"
    "\tshl.b32 %r12, %r10, 4;\n"
    "\tadd.u32 %r11, %r11, %r12;\n"
    "\tst.shared.u64 [%r11], %rd8;\n"
    "\tst.shared.u64 [%r11+8], %rd9;\n"
    "SYNC:\n"
    "\tbar.sync 0;\n"
    "\tsetp.ne.u32 %p2, %r3, 0;\n"
    "\t@%p2 bra END;\n"
    "\tshr.u32 %r13, %r2, 5;\n"
    "\tmov.u64 %rd8, 0;\n"
    "\tmov.u64 %rd9, 0;\n"
    "\tmov.u32 %r11, part;\n"
    "\tmov.u32 %r12, 0;\n"
    "WL:\n"
    "\tsetp.ge.u32 %p3, %r12, %r13;\n"
    "\t@%p3 bra WDONE;\n"
    "\tld.shared.u64 %rd19, [%r11];\n"
    "\tld.shared.u64 %rd20, [%r11+8];\n"
    "\tadd.u64 %rd8, %rd8, %rd19;\n"
    "\tadd.u64 %rd9, %rd9, %rd20;\n"
    "\tadd.u32 %r11, %r11, 16;\n"
    "\tadd.u32 %r12, %r12, 1;\n"
    "\tbra WL;\n"
    "WDONE:\n"
    "\tmul.wide.u32 %rd21, %r1, 16;\n"
    "\tadd.u64 %rd22, %rd3, %rd21;\n"
    "\tst.global.u64 [%rd22], %rd8;\n"
    "\tst.global.u64 [%rd22+8], %rd9;\n"
    "END:\n"
    "\tret;\n"
    "}\n";
