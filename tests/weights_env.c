/* weights_env.c - which weight-file patterns vpage's file hooks use: the
 * value of VPAGE_WEIGHT_FILES when the library loaded, read once then
 * (issue 20: options are not read from inside a libc hook).
 *
 *   weights_env [late]
 * With "late", sets VPAGE_WEIGHT_FILES=none first thing in main, as a
 * program changing its own environment would. Then writes DIR/m.safetensors
 * (DIR: $TMPDIR or /tmp), opens and maps it, copies its data part into a
 * device buffer (the fake driver) and prints "provenance: " and what
 * vpage_provenance says of that buffer ("" when the file is not tracked).
 * Run under the preload by tests/check_weights_env.sh. */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char HEADER[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";

static int make(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t n = sizeof HEADER - 1; /* little-endian, as the hosts vpage builds for */
    int ok = fwrite(&n, 8, 1, f) == 1 && fwrite(HEADER, 1, n, f) == n;
    for (int i = 0; i < 16; i++) ok = ok && fputc(i + 1, f) != EOF;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "late")) setenv("VPAGE_WEIGHT_FILES", "none", 1);
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/vpage-weights-env-%d.safetensors", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    if (make(path)) {
        perror("weights_env: writing the file");
        return 1;
    }
    int fd = open(path, O_RDONLY);
    size_t size = 8 + sizeof HEADER - 1 + 16;
    uint8_t *map = fd >= 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (map == MAP_FAILED) {
        perror("weights_env: mapping the file");
        unlink(path);
        return 1;
    }
    CUdevice d;
    CUcontext ctx;
    CUdeviceptr buf;
    if (cuInit(0) || cuDeviceGet(&d, 0) || cuDevicePrimaryCtxRetain(&ctx, d) || cuCtxSetCurrent(ctx) ||
        cuMemAlloc(&buf, 16) || cuMemcpyHtoD(buf, map + 8 + sizeof HEADER - 1, 16)) {
        fputs("weights_env: a driver call failed\n", stderr);
        unlink(path);
        return 1;
    }
    int (*prov)(uint64_t, char *, size_t) = (int (*)(uint64_t, char *, size_t))dlsym(RTLD_DEFAULT, "vpage_provenance");
    char what[512] = "";
    if (prov) prov(buf, what, sizeof what);
    printf("provenance: %s\n", what);
    munmap(map, size);
    unlink(path);
    return 0;
}
