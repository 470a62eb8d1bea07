/* test_table.c - the page table's file (books/table.h): written and read
 * back the same, and every kind of bad file refused with its reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../books/table.h"
#include "../books/tablestep.h"

static uint64_t allocs[3] = {4194304, 2097152, 1000};
static uint32_t orders[3] = {2, 5, 9};
static char kernels[2][VP_TABLE_NAME] = {"gemm", "add"};
static struct vp_table_op ops[4] = {{0, 1000, 0, 2}, {1, 200, 2, 1}, {0, 1000, 3, 2}, {1, 5, 5, 0}};
static struct vp_table_span spans[5] = {{0, 0, 1, 0}, {1, 0, 0, 1}, {2, 0, 0, 0}, {0, 1, 1, 0}, {2, 0, 0, 1}};

static struct vp_table sample(void)
{
    struct vp_table t = {2, 0, 2097152, 123, 3, 2, 4, 5, allocs, orders, kernels, ops, spans};
    t.fingerprint = vp_table_fingerprint(&t);
    return t;
}

/* The sample's text, with every occurrence of from replaced by to. */
static char *text_with(const char *from, const char *to)
{
    struct vp_table t = sample();
    static char buf[4096], out[4096];
    vp_table_write(&t, buf, sizeof buf);
    if (!from) return buf;
    char *at = strstr(buf, from);
    cr_assert(at, "the sample has no '%s'", from);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
    return out;
}

static void refused(const char *text, size_t len, const char *reason)
{
    struct vp_table t;
    const char *why = NULL;
    cr_assert_eq(vp_table_parse(text, len, &t, &why), -1, "accepted: %s", text);
    cr_assert(why && strstr(why, reason), "refused because '%s', not '%s'", why ? why : "(none)", reason);
    cr_assert(!t.ops && !t.nops && !t.alloc_bytes, "a refusal leaves nothing");
}

Test(table, written_and_read_back_the_same)
{
    struct vp_table t = sample(), back;
    const char *text = text_with(NULL, NULL), *why = NULL;
    cr_assert_eq(vp_table_parse(text, strlen(text), &back, &why), 0, "%s: %s", why, text);
    cr_assert_eq(back.fingerprint, t.fingerprint);
    cr_assert_eq(back.piece, 2097152);
    cr_assert_eq(back.other, 123);
    cr_assert(back.nallocs == 3 && back.nkernels == 2 && back.nops == 4 && back.nspans == 5);
    cr_assert(!memcmp(back.alloc_bytes, allocs, sizeof allocs));
    cr_assert(!memcmp(back.alloc_order, orders, sizeof orders));
    cr_assert_eq(back.version, 2);
    cr_assert_str_eq(back.kernel[1], "add");
    for (int i = 0; i < 4; i++)
        cr_assert(back.ops[i].kernel == ops[i].kernel && back.ops[i].dur_ns == ops[i].dur_ns &&
                  back.ops[i].first_span == ops[i].first_span && back.ops[i].nspans == ops[i].nspans, "op %d", i);
    for (int j = 0; j < 5; j++) {
        cr_assert(back.spans[j].alloc == spans[j].alloc && back.spans[j].first == spans[j].first &&
                  back.spans[j].last == spans[j].last && back.spans[j].write == spans[j].write, "span %d", j);
    }
    cr_assert_eq(vp_table_pieces(&back, 0), 2);
    cr_assert_eq(vp_table_pieces(&back, 2), 1, "a short last piece");
    vp_table_free(&back);
}

Test(table, a_file_of_another_kind_or_version_is_refused)
{
    refused("hello\n", 6, "not a vpage table");
    const char *v3 = text_with("vpage-table 2", "vpage-table 3");
    refused(v3, strlen(v3), "another version");
    refused("", 0, "not a vpage table");
}

Test(table, a_file_cut_short_is_refused)
{
    const char *text = text_with(NULL, NULL);
    size_t n = strlen(text);
    refused(text, n - 4, "cut short");            /* no end line */
    refused(text, n - 1, "cut short");            /* no last newline */
    for (size_t k = 1; k < n - 1; k += 7) {      /* anywhere */
        struct vp_table t;
        const char *why;
        cr_assert_eq(vp_table_parse(text, k, &t, &why), -1, "a prefix of %zu bytes was accepted", k);
    }
}

Test(table, a_version_1_file_is_read_with_orders_by_line)
{
    struct vp_table t = sample(), back;
    t.version = 1;
    t.fingerprint = vp_table_fingerprint(&t);
    char buf[4096];
    vp_table_write(&t, buf, sizeof buf);
    cr_assert(strstr(buf, "vpage-table 1\n") && strstr(buf, "\nalloc 1000\n"), "%s", buf);
    const char *why = NULL;
    cr_assert_eq(vp_table_parse(buf, strlen(buf), &back, &why), 0, "%s", why);
    cr_assert(back.version == 1 && back.alloc_order[0] == 0 && back.alloc_order[2] == 2);
    cr_assert_neq(t.fingerprint, sample().fingerprint, "version 2's fingerprint covers the orders");
    vp_table_free(&back);
}

Test(table, orders_missing_or_out_of_order_are_refused)
{
    const char *t1 = text_with("alloc 1000 9", "alloc 1000");
    refused(t1, strlen(t1), "order");
    const char *t2 = text_with("alloc 1000 9", "alloc 1000 5");
    refused(t2, strlen(t2), "order");
    const char *t3 = text_with("alloc 1000 9", "alloc 1000 9 1");
    refused(t3, strlen(t3), "more fields");
}

Test(table, a_fingerprint_that_is_not_its_contents_is_refused)
{
    const char *text = text_with("kernel add", "kernel adx");
    refused(text, strlen(text), "fingerprint");
}

Test(table, numbers_past_their_limits_are_refused)
{
    const char *t1 = text_with("alloc 1000", "alloc 99999999999999999999999999");
    refused(t1, strlen(t1), "too large");
    const char *t2 = text_with("op 1 5", "op 7 5");
    refused(t2, strlen(t2), "a kernel the table does not have");
    const char *t3 = text_with("0:0-1 ", "0:0-2 ");
    refused(t3, strlen(t3), "past its allocation");
    const char *t4 = text_with("0:0-1 ", "9:0-1 ");
    refused(t4, strlen(t4), "an allocation the table does not have");
    const char *t5 = text_with("0:0-1 ", "0:1-0 ");
    refused(t5, strlen(t5), "malformed");
    const char *t6 = text_with("piece 2097152", "piece 0");
    refused(t6, strlen(t6), "piece");
}

Test(table, names_and_lines_that_do_not_follow_the_format_are_refused)
{
    const char *t1 = text_with("kernel add", "kernel a\x1b[2Jd");
    refused(t1, strlen(t1), "printable");
    const char *t2 = text_with("kernel add", "kernel a d");
    refused(t2, strlen(t2), "printable");
    char longname[300];
    memset(longname, 'k', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    char with[320];
    snprintf(with, sizeof with, "kernel %s", longname);
    const char *t3 = text_with("kernel add", with);
    refused(t3, strlen(t3), "too long");
    const char *t4 = text_with("end\n", "end\nop 0 1\n");
    refused(t4, strlen(t4), "after the end");
    const char *t5 = text_with("op 1 5", "op 1 5 ");
    refused(t5, strlen(t5), "malformed");
    const char *t6 = text_with("alloc 1000 9", "alloc 1000 9\nweights 7");
    refused(t6, strlen(t6), "unknown line");
}

Test(table, a_launch_with_too_many_spans_is_refused)
{
    char many[64 * 8 + 32] = "op 1 5";
    for (int i = 0; i < VP_TABLE_MAX_SPANS + 1; i++) strcat(many, " 2:0-0");
    const char *text = text_with("op 1 5", many);
    refused(text, strlen(text), "too many spans");
}

Test(table, a_launch_cupti_did_not_time_takes_its_kernels_median)
{
    /* CUPTI's records time only some launches of a kernel (joined by name
     * under PyTorch): the planner's step gives the others the median of
     * that kernel's timed ones; a kernel never timed keeps no time */
    static uint64_t bytes[1] = {2097152};
    static uint32_t order[1] = {0};
    static struct vp_table_op o[6] = {{0, 0, 0, 1}, {0, 100, 1, 1}, {0, 300, 2, 1},
                                      {0, 200, 3, 1}, {1, 0, 4, 1}, {1, 0, 5, 1}};
    static struct vp_table_span sp[6]; /* each launch its own span: piece 0 of allocation 0 */
    struct vp_table t = {2, 0, 2097152, 0, 1, 2, 6, 6, bytes, order, kernels, o, sp};
    struct vp_table_step f;
    cr_assert_eq(vp_table_step_make(&t, &f), 0);
    cr_assert_eq(f.estimated, 1);
    cr_assert_eq(f.compute_ns, 800, "100 + 300 + 200 timed, 200 estimated: %llu", (unsigned long long)f.compute_ns);
    cr_assert(f.ops[0].dur_s > 199e-9 && f.ops[0].dur_s < 201e-9, "%g", f.ops[0].dur_s);
    cr_assert(f.ops[4].dur_s == 0 && f.ops[5].dur_s == 0, "a kernel never timed stays untimed");
    vp_table_step_free(&f);
}

Test(table, a_launch_too_short_to_read_what_it_points_at_loses_its_pieces)
{
    /* an embedding of 16 pieces looked up in 5 us (thin: it read a row),
     * a weight read in 350 us; a launch CUPTI did not time is not judged,
     * even where its kernel's median would call it thin */
    static uint64_t bytes[2] = {1ull << 30, 64ull << 20};
    static uint32_t order[2] = {0, 1};
    static struct vp_table_op o[4] = {{0, 5000, 0, 1}, {1, 350000, 1, 1}, {1, 0, 2, 1}, {0, 0, 3, 1}};
    static struct vp_table_span sp[4] = {{0, 0, 15, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}, {0, 1, 1, 0}};
    struct vp_table t = {2, 0, 64ull << 20, 0, 2, 2, 4, 4, bytes, order, kernels, o, sp};
    struct vp_table_step f;
    uint8_t thin[4];
    cr_assert_eq(vp_table_step_make(&t, &f), 0);
    cr_assert_eq(vp_table_step_thin(&t, &f, thin), 0);
    cr_assert(thin[0] && !thin[1] && !thin[2] && !thin[3], "%d %d %d %d", thin[0], thin[1], thin[2], thin[3]);
    cr_assert_eq(f.ops[0].n, 0, "the thin launch touches nothing the step plans for");
    cr_assert_eq(f.ops[1].n, 1);
    cr_assert_eq(f.thin_ops, 1);
    cr_assert(!f.thin[0] && !f.thin[1] && f.thin[2] && f.thin[15] && !f.thin[16], "pieces 0 and 1 have other uses");
    cr_assert_eq(f.thin_bytes, 14ull << 26, "%llu", (unsigned long long)f.thin_bytes);
    vp_table_step_free(&f);
}
