/* test_weights.c - device bytes copied out of a mapped weight file are
 * known as clean copies of named tensors until something writes them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "helpers.h"

struct wfile {
    char path[128];
    uint8_t *map;
    size_t size, data_start;
};

static const char *HEADER = "{\"__metadata__\":{\"format\":\"pt\"},"
                            "\"embed.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]},"
                            "\"block.0.attn.qkv\":{\"dtype\":\"BF16\",\"shape\":[8,8],\"data_offsets\":[64,192]},"
                            "\"head.bias\":{\"dtype\":\"F16\",\"shape\":[16],\"data_offsets\":[192,224]}}";
#define DATA_LEN 224

/* Maps the written file at w->path as a loader does (its data part of n
 * bytes from data_start), and closes the fd. */
static void map_file(struct wfile *w, size_t data_start, size_t n, int prot)
{
    w->data_start = data_start;
    w->size = data_start + n;
    int fd = open(w->path, O_RDONLY);
    cr_assert(fd >= 0);
    w->map = mmap(NULL, w->size, prot, MAP_PRIVATE, fd, 0);
    cr_assert(w->map != MAP_FAILED);
    close(fd);
}

/* Writes a weight file (a real safetensors file unless header is given),
 * then opens and maps it as a loader does, and closes the fd. */
static void make_file(struct wfile *w, const char *name, const char *header, int prot)
{
    snprintf(w->path, sizeof w->path, "/tmp/vpage-test-%d-%s", (int)getpid(), name);
    const char *h = header ? header : HEADER;
    uint64_t n = strlen(h);
    FILE *f = fopen(w->path, "wb");
    cr_assert_not_null(f);
    fwrite(&n, 8, 1, f); /* little-endian on x86-64 */
    fwrite(h, 1, n, f);
    for (int i = 0; i < DATA_LEN; i++) fputc(i * 7 + 1, f);
    fclose(f);
    map_file(w, 8 + n, DATA_LEN, prot);
}

/* A device buffer holding a copy of the whole data part, straight from the mapping. */
static CUdeviceptr copy_whole(struct cu *c, const struct wfile *w)
{
    CUdeviceptr d;
    CU_OK(c->cuMemAlloc(&d, DATA_LEN));
    CU_OK(c->cuMemcpyHtoD(d, w->map + w->data_start, DATA_LEN));
    return d;
}

static void drop_file(struct wfile *w)
{
    munmap(w->map, w->size);
    unlink(w->path);
}

static const char *prov(uint64_t dptr)
{
    static char buf[512];
    int (*f)(uint64_t, char *, size_t) = (int (*)(uint64_t, char *, size_t))dlsym(RTLD_DEFAULT, "vpage_provenance");
    cr_assert_not_null(f);
    f(dptr, buf, sizeof buf);
    return buf;
}

static void expect_prov(uint64_t dptr, const struct wfile *w, uint64_t off, const char *tensor)
{
    char want[512];
    snprintf(want, sizeof want, "%s:%llu:%s", w->path, (unsigned long long)off, tensor);
    cr_assert_str_eq(prov(dptr), want);
}

TEST_EACH_WAY(weights, whole_file_copy_names_every_tensor)
{
    struct cu c;
    load_or_die(&c, w);
    struct wfile f;
    make_file(&f, "model.safetensors", NULL, PROT_READ);
    CUdeviceptr d = copy_whole(&c, &f);
    cr_assert_eq(memcmp((void *)(uintptr_t)d, f.map + f.data_start, DATA_LEN), 0, "the copy itself happened");
    expect_prov(d, &f, f.data_start, "embed.weight");
    expect_prov(d + 64 + 5, &f, f.data_start + 69, "block.0.attn.qkv");
    expect_prov(d + 223, &f, f.data_start + 223, "head.bias");
    cr_assert_str_eq(prov(d + DATA_LEN), "");
    char want[256];
    snprintf(want, sizeof want, "\"header\": \"ok\", \"tensors\": 3, \"device_clean_bytes\": %d, \"tensors_on_device\": 3",
             DATA_LEN);
    cr_assert(strstr(stats(), want) != NULL, "%s", stats());
    drop_file(&f);
}

Test(weights, writes_and_frees_end_a_clean_copy)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "w.safetensors", NULL, PROT_READ);
    CUdeviceptr d = copy_whole(&c, &f);
    /* a memset in the middle splits the copy in two */
    CU_OK(c.cuMemsetD8(d + 70, 0, 10));
    expect_prov(d + 69, &f, f.data_start + 69, "block.0.attn.qkv");
    cr_assert_str_eq(prov(d + 70), "");
    cr_assert_str_eq(prov(d + 79), "");
    expect_prov(d + 80, &f, f.data_start + 80, "block.0.attn.qkv");
    /* an async memset of words, and a copy from ordinary memory */
    CU_OK(c.cuMemsetD32Async(d + 192, 7, 2, NULL));
    cr_assert_str_eq(prov(d + 199), "");
    expect_prov(d + 200, &f, f.data_start + 200, "head.bias");
    char plain[16] = {0};
    CU_OK(c.cuMemcpyHtoD(d, plain, sizeof plain));
    cr_assert_str_eq(prov(d), "");
    expect_prov(d + 16, &f, f.data_start + 16, "embed.weight");
    /* a device-to-device copy into it */
    CUdeviceptr e;
    CU_OK(c.cuMemAlloc(&e, 64));
    CU_OK(c.cuMemcpyDtoD(d + 16, e, 8));
    cr_assert_str_eq(prov(d + 20), "");
    expect_prov(d + 24, &f, f.data_start + 24, "embed.weight");
    /* freeing ends it all */
    CU_OK(c.cuMemFree(d));
    cr_assert_str_eq(prov(d + 100), "");
    cr_assert_str_eq(prov(d + 210), "");
    drop_file(&f);
}

Test(weights, two_d_and_peer_copies_end_a_clean_copy)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "shaped.safetensors", NULL, PROT_READ);
    CUdeviceptr d = copy_whole(&c, &f), e;
    CU_OK(c.cuMemAlloc(&e, DATA_LEN));
    /* two rows of 8 bytes, pitch 32, starting at byte 64 + 4 */
    uint8_t rows[16] = {0};
    CUDA_MEMCPY2D c2 = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = rows, .srcPitch = 8,
                        .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = d + 64, .dstXInBytes = 4,
                        .dstPitch = 32, .WidthInBytes = 8, .Height = 2};
    CU_OK(c.cuMemcpy2D(&c2));
    expect_prov(d + 67, &f, f.data_start + 67, "block.0.attn.qkv");
    cr_assert_str_eq(prov(d + 68), "");
    cr_assert_str_eq(prov(d + 64 + 32 + 11), "", "the last row's last byte");
    expect_prov(d + 64 + 32 + 12, &f, f.data_start + 108, "block.0.attn.qkv");
    /* a peer copy into the tail */
    CUcontext ctx = (CUcontext)(uintptr_t)0x100;
    CU_OK(c.cuMemcpyPeer(d + 200, ctx, e, ctx, 24));
    expect_prov(d + 199, &f, f.data_start + 199, "head.bias");
    cr_assert_str_eq(prov(d + 200), "");
    drop_file(&f);
}

Test(weights, tensor_by_tensor_async_copies)
{
    struct cu c;
    load_or_die(&c, WAY_DLSYM);
    struct wfile f;
    make_file(&f, "t.safetensors", NULL, PROT_READ);
    CUdeviceptr a, b;
    CU_OK(c.cuMemAlloc(&a, 128));
    CU_OK(c.cuMemAlloc(&b, 32));
    CU_OK(c.cuMemcpyHtoDAsync(a, f.map + f.data_start + 64, 128, NULL));
    CU_OK(c.cuMemcpy(b, (CUdeviceptr)(uintptr_t)(f.map + f.data_start + 192), 32)); /* unified copy */
    expect_prov(a, &f, f.data_start + 64, "block.0.attn.qkv");
    expect_prov(b + 31, &f, f.data_start + 223, "head.bias");
    cr_assert(strstr(stats(), "\"tensors_on_device\": 2") != NULL, "%s", stats());
    drop_file(&f);
}

Test(weights, staged_copies_are_matched_by_content)
{
    /* safetensors 0.8 copies each tensor from the mapping into a pinned
     * buffer on the CPU, then to the device from there */
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "staged.safetensors", NULL, PROT_READ);
    uint8_t staging[128];
    CUdeviceptr a, b, z;
    CU_OK(c.cuMemAlloc(&a, 128));
    CU_OK(c.cuMemAlloc(&b, 32));
    CU_OK(c.cuMemAlloc(&z, 32));
    memcpy(staging, f.map + f.data_start + 64, 128);
    CU_OK(c.cuMemcpyHtoDAsync(a, staging, 128, NULL));
    expect_prov(a + 1, &f, f.data_start + 65, "block.0.attn.qkv");
    memcpy(staging, f.map + f.data_start + 192, 32);
    CU_OK(c.cuMemcpyHtoD(b, staging, 32));
    expect_prov(b, &f, f.data_start + 192, "head.bias");
    staging[31] ^= 1; /* same size, different bytes: no match */
    CU_OK(c.cuMemcpyHtoD(z, staging, 32));
    cr_assert_str_eq(prov(z), "");
    /* a unified copy's source may be device memory, which vpage must not
     * read on the host: b holds exactly head.bias's bytes, yet the copy is
     * not matched by content */
    CU_OK(c.cuMemcpy(z, b, 32));
    cr_assert_str_eq(prov(z), "", "a device-to-device cuMemcpy is no copy of the file");
    drop_file(&f);
}

Test(weights, pread_loaders_are_matched_while_the_file_is_open)
{
    /* safetensors' pread backend: an open fd, pread into a buffer, copy */
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "pread.safetensors", NULL, PROT_READ);
    munmap(f.map, f.size); /* no mapping at all */
    int fd = open(f.path, O_RDONLY);
    cr_assert(fd >= 0);
    uint8_t buf[128];
    cr_assert_eq(pread(fd, buf, 64, (off_t)f.data_start), 64);
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, 64));
    CU_OK(c.cuMemcpyHtoD(d, buf, 64));
    expect_prov(d + 8, &f, f.data_start + 8, "embed.weight");
    close(fd); /* closed: a copy of the same bytes is no longer matched */
    CUdeviceptr e;
    CU_OK(c.cuMemAlloc(&e, 64));
    CU_OK(c.cuMemcpyHtoD(e, buf, 64));
    cr_assert_str_eq(prov(e), "");
    unlink(f.path);
}

Test(weights, a_copy_costs_the_same_next_to_a_file_of_many_tensors, .timeout = 120)
{
    /* 100000 one-byte tensors, all 'x', read by a pread loader (the file
     * open, not mapped): a one-byte copy of something else compares it
     * with a few of them, not all (it took 25-34 s next to 10^6, one open
     * and read of the file each); a copy of 'x' is named */
    enum { N = 100000 };
    char path[256];
    snprintf(path, sizeof path, "/tmp/vpage-test-%d-many.safetensors", (int)getpid());
    size_t cap = (size_t)N * 96 + 64, n = 0;
    char *h = malloc(cap);
    cr_assert_not_null(h);
    n += (size_t)snprintf(h + n, cap - n, "{");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(h + n, cap - n, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                              i ? "," : "", i, i, i + 1);
    n += (size_t)snprintf(h + n, cap - n, "}");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t len = n;
    fwrite(&len, 8, 1, f);
    fwrite(h, 1, n, f);
    for (int i = 0; i < N; i++) fputc('x', f);
    fclose(f);
    free(h);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0);
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, 8));
    char y = 'y', x = 'x';
    CU_OK(c.cuMemcpyHtoD(d, &y, 1));
    cr_assert_str_eq(prov(d), "");
    const char *j = strstr(stats(), "\"tensors_compared\": ");
    cr_assert_not_null(j, "%s", stats());
    unsigned long long compared = strtoull(j + strlen("\"tensors_compared\": "), NULL, 10);
    cr_assert_leq(compared, 8, "a one-byte copy was compared with %llu tensors", compared);
    CU_OK(c.cuMemcpyHtoD(d + 1, &x, 1));
    cr_assert(strstr(prov(d + 1), ":t") != NULL, "a copy of a tensor's byte is named: '%s'", prov(d + 1));
    close(fd);
    unlink(path);
}

/* A copy of the first 64 data bytes of w, taken from a mapping of fd. */
static CUdeviceptr copy_through(struct cu *c, const struct wfile *w, int fd)
{
    uint8_t *m = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, fd, 0);
    cr_assert(m != MAP_FAILED);
    CUdeviceptr d;
    CU_OK(c->cuMemAlloc(&d, 64));
    CU_OK(c->cuMemcpyHtoD(d, m + w->data_start, 64));
    munmap(m, w->size);
    return d;
}

Test(weights, an_fd_number_reused_after_dup2_close_range_or_fclose_is_not_the_old_file)
{
    /* a weight file's fd replaced by another file through a call that
     * closes it without close(): what is read through it is no copy of
     * the weight file (its mapping was taken for one, offsets and all) */
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f, g;
    make_file(&f, "reused.safetensors", NULL, PROT_READ);
    make_file(&g, "plain.dat", NULL, PROT_READ); /* not a weight file, and other bytes: */
    FILE *gw = fopen(g.path, "r+b");
    cr_assert_not_null(gw);
    fseek(gw, (long)g.data_start, SEEK_SET);
    for (int i = 0; i < DATA_LEN; i++) fputc(0xAB, gw);
    fclose(gw);
    for (int way = 0; way < 3; way++) {
        int fd = open(f.path, O_RDONLY);
        cr_assert(fd >= 0);
        expect_prov(copy_through(&c, &f, fd) + 8, &f, f.data_start + 8, "embed.weight");
        int other = open(g.path, O_RDONLY);
        cr_assert(other >= 0);
        if (way == 0) {
            cr_assert_eq(dup2(other, fd), fd);
            close(other);
        } else if (way == 1) {
            cr_assert_eq(close_range((unsigned)fd, (unsigned)fd, 0), 0);
            cr_assert_eq(dup2(other, fd), fd);
            close(other);
        } else {
            FILE *fp = fdopen(fd, "r");
            cr_assert_not_null(fp);
            fclose(fp);
            cr_assert_eq(dup2(other, fd), fd);
            close(other);
        }
        cr_assert_str_eq(prov(copy_through(&c, &f, fd) + 8), "", "way %d: the reused fd taken for the weight file", way);
        close(fd);
    }
    drop_file(&f);
    drop_file(&g);
}

Test(weights, the_fortified_open_is_seen)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "fortified.safetensors", NULL, PROT_READ);
    munmap(f.map, f.size); /* only the mapping through the fortified open's fd can name the copy */
    int (*open2)(const char *, int) = (int (*)(const char *, int))dlsym(RTLD_DEFAULT, "__open_2");
    cr_assert_not_null(open2);
    int fd = open2(f.path, O_RDONLY);
    cr_assert(fd >= 0);
    expect_prov(copy_through(&c, &f, fd) + 8, &f, f.data_start + 8, "embed.weight");
    close(fd);
    unlink(f.path);
}

Test(weights, a_weight_file_cut_short_under_its_mapping_costs_no_sigbus)
{
    /* a re-save while the program runs: the mapped file is truncated;
     * a copy from a staging buffer is then compared with the mapping's
     * tensors, whose pages are gone (a plain read raises SIGBUS) */
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "shrunk.safetensors", NULL, PROT_READ);
    uint8_t staged[64];
    memcpy(staged, f.map + f.data_start, 64); /* the first tensor's bytes */
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, 64));
    CU_OK(c.cuMemcpyHtoD(d, staged, 64)); /* matched: the header is read */
    expect_prov(d + 8, &f, f.data_start + 8, "embed.weight");
    cr_assert_eq(truncate(f.path, 0), 0);
    CU_OK(c.cuMemcpyHtoD(d, staged, 64)); /* compared with pages that are gone */
    cr_assert_str_eq(prov(d), "", "bytes the file no longer has");
    drop_file(&f);
}

Test(weights, a_hostile_header_is_tracked_without_names)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "bad.safetensors",
              "{\"a\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]},"
              "\"b\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[50,150]}}", PROT_READ);
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, DATA_LEN));
    struct capture k;
    capture_begin(&k);
    CUresult rc = c.cuMemcpyHtoD(d, f.map + f.data_start, DATA_LEN);
    const char *err = capture_end(&k);
    CU_OK(rc);
    cr_assert(strstr(err, "not a valid safetensors header (tensors overlap)") != NULL, "stderr: %s", err);
    expect_prov(d + 3, &f, f.data_start + 3, "");
    cr_assert(strstr(stats(), "\"header\": \"rejected\"") != NULL, "%s", stats());
    drop_file(&f);
}

Test(weights, only_matching_files)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile txt;
    make_file(&txt, "notes.txt", NULL, PROT_READ);
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, DATA_LEN));
    CU_OK(c.cuMemcpyHtoD(d, txt.map + txt.data_start, DATA_LEN));
    cr_assert_str_eq(prov(d), "", "a .txt file is not a weight file");
    drop_file(&txt);
}

Test(weights, writable_private_mappings_count_until_written)
{
    /* torch's UntypedStorage.from_file maps weights PROT_READ|PROT_WRITE, MAP_PRIVATE */
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile rw;
    make_file(&rw, "rw.safetensors", NULL, PROT_READ | PROT_WRITE);
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, DATA_LEN));
    volatile uint8_t touch = rw.map[rw.data_start + 3]; /* read: the page stays the file's */
    (void)touch;
    CU_OK(c.cuMemcpyHtoD(d, rw.map + rw.data_start, DATA_LEN));
    expect_prov(d, &rw, rw.data_start, "embed.weight");
    rw.map[rw.data_start + 3] ^= 1; /* a private write: the page is the process's now */
    CU_OK(c.cuMemcpyHtoD(d, rw.map + rw.data_start, DATA_LEN));
    cr_assert_str_eq(prov(d), "", "a written private page is not the file's");
    drop_file(&rw);
}

Test(weights, unmapped_ranges_are_forgotten)
{
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    struct wfile f;
    make_file(&f, "u.safetensors", NULL, PROT_READ);
    uint8_t *src = f.map + f.data_start;
    size_t size = f.size;
    munmap(f.map, size);
    /* the same addresses, now anonymous memory */
    uint8_t *anon = mmap(f.map, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    cr_assert(anon == f.map);
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, DATA_LEN));
    CU_OK(c.cuMemcpyHtoD(d, src, DATA_LEN));
    cr_assert_str_eq(prov(d), "");
    munmap(anon, size);
    unlink(f.path);
}

/* A safetensors file of one U8 tensor of n bytes in the current folder (on
 * disk: a page cache to give back), mapped read-only and read through, so
 * every page is cached. */
static void make_big(struct wfile *w, size_t n)
{
    snprintf(w->path, sizeof w->path, "vpage-test-%d-big.safetensors", (int)getpid());
    char h[128];
    int hl = snprintf(h, sizeof h, "{\"w\":{\"dtype\":\"U8\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", n, n);
    FILE *f = fopen(w->path, "wb");
    cr_assert_not_null(f);
    uint64_t len = (uint64_t)hl;
    fwrite(&len, 8, 1, f);
    fwrite(h, 1, (size_t)hl, f);
    for (size_t i = 0; i < n; i++) fputc((int)(i * 13 % 251), f);
    cr_assert_eq(fflush(f), 0);
    cr_assert_eq(fsync(fileno(f)), 0, "written back: dirty pages are not dropped at once");
    cr_assert_eq(fclose(f), 0);
    map_file(w, 8 + (size_t)hl, n, PROT_READ);
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < w->size; i += 4096) sum += w->map[i];
    (void)sum;
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* madvise as the library finds it (this executable exports it): the
 * thread that gives pages back is seen. */
static _Atomic long pageout_tid, pageouts;
__attribute__((visibility("default"))) int madvise(void *addr, size_t len, int advice)
{
    if (advice == MADV_PAGEOUT) {
        atomic_store(&pageout_tid, syscall(SYS_gettid));
        atomic_fetch_add(&pageouts, 1);
    }
    return (int)syscall(SYS_madvise, addr, len, advice);
}

/* Pages of [p, p+n) in the page cache (mincore). */
static size_t cached_pages(const uint8_t *p, size_t n)
{
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p & ~(ps - 1);
    size_t pages = ((uintptr_t)p + n - a + ps - 1) / ps, in = 0;
    unsigned char *v = malloc(pages);
    cr_assert_not_null(v);
    cr_assert_eq(mincore((void *)a, pages * ps, v), 0);
    for (size_t i = 0; i < pages; i++) in += v[i] & 1;
    free(v);
    return in;
}

/* Writes and maps a file of one n-byte tensor, read through (cached),
 * copies the tensor into a new allocation (streamed under stream mode),
 * checks the device bytes and drops the file; returns the pages of the
 * tensor that were still cached after the copy. */
static size_t cached_after_copy(size_t n)
{
    struct wfile file, *f = &file;
    make_big(f, n);
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    const uint8_t *src = f->map + f->data_start;
    cr_assert_geq(cached_pages(src, n), n / 4096 - 1, "read through: cached");
    CUdeviceptr d;
    CU_OK(c.cuMemAlloc(&d, n));
    CU_OK(c.cuMemcpyHtoD(d, src, n));
    (void)stats(); /* the report waits for the pages given back in the background */
    size_t left = cached_pages(src, n);
    uint8_t *back = malloc(n);
    cr_assert_not_null(back);
    CU_OK(c.cuMemcpyDtoH(back, d, n));
    cr_assert_eq(memcmp(back, src, n), 0, "the device holds the file's bytes (the mapping reads them again)");
    free(back);
    CU_OK(c.cuMemFree(d));
    unlink(f->path);
    munmap(f->map, f->size);
    return left;
}

Test(weights, pages_copied_into_streamed_memory_leave_the_page_cache)
{
    /* stream mode keeps the bytes of its memory in host memory itself: the
     * weight file's cached pages would hold the model a second time */
    pager_env("stream", 64, "2M");
    size_t n = 8 << 20, left = cached_after_copy(n);
    /* a page the kernel cannot take off its LRU lists at that moment (a
     * per-CPU batch just faulted in) may stay: most must go */
    cr_assert_leq(left, n / 4096 / 8, "%zu of %zu pages still cached after the copy", left, n / 4096);
    cr_assert(strstr(stats(), "\"pages_given_back\": 8384512") || strstr(stats(), "\"pages_given_back\": 8388608"),
              "%s", stats());
    const char *ns = strstr(stats(), "\"give_back_ns\": ");
    cr_assert(ns && strtoull(ns + 16, NULL, 10) > 0, "the time giving pages back took is counted: %s", stats());
}

Test(weights, the_copying_thread_does_not_wait_for_its_pages_to_go)
{
    /* giving 28 GB of a checkpoint's pages back took 2.3 s of a load's
     * copies on an H100: another thread does it */
    pager_env("stream", 64, "2M");
    size_t n = 8 << 20, left = cached_after_copy(n);
    cr_assert_leq(left, n / 4096 / 8, "%zu of %zu pages still cached after the copy", left, n / 4096);
    cr_assert_gt(atomic_load(&pageouts), 0, "no page-out");
    cr_assert_neq(atomic_load(&pageout_tid), syscall(SYS_gettid), "the copying thread gave its pages back");
}

Test(weights, the_option_keeps_the_pages_cached)
{
    pager_env("stream", 64, "2M");
    setenv("VPAGE_DROP_FILE_PAGES", "off", 1);
    size_t n = 8 << 20, left = cached_after_copy(n);
    cr_assert_geq(left, n / 4096 - 1, "only %zu of %zu pages cached", left, n / 4096);
    cr_assert(strstr(stats(), "\"pages_given_back\": 0"), "%s", stats());
    cr_assert(strstr(stats(), "\"give_back_ns\": 0"), "%s", stats());
}

Test(weights, pages_copied_into_memory_vpage_does_not_keep_stay_cached)
{
    /* paging off: the device holds the only copy vpage knows; the page
     * cache is the program's to keep */
    size_t n = 8 << 20, left = cached_after_copy(n);
    cr_assert_geq(left, n / 4096 - 1, "only %zu of %zu pages cached", left, n / 4096);
}
