/* signal_open.c - weight files opened, mapped and closed both by the
 * program and by a signal handler that interrupts it (issue 20): vpage's
 * file hooks (interpose/libc.c) take the weights' lock, and a handler that
 * opens a file on a thread inside them must not wait for that thread.
 *
 *   signal_open [ROUNDS [US]]
 * makes a.safetensors in a new temporary folder, then ROUNDS (default
 * 3000) times opens, maps, makes writable, unmaps and closes it while
 * SIGALRM arrives every US microseconds (default 20; more under an
 * emulator, where a handler takes longer than that), its handler opening and closing
 * b.safetensors there. Prints "signal_open: ok" with the signals handled.
 * A deadlock hangs it (the suite's timeout fails it); before the hooks
 * knew, it hung within 5000 rounds every time. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

static char other[4096];
static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    int fd = open(other, O_RDONLY);
    if (fd >= 0) close(fd);
    handled++;
}

static int make(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    char buf[4096] = {0};
    int ok = write(fd, buf, sizeof buf) == (ssize_t)sizeof buf;
    close(fd);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 3000, us = argc > 2 ? atol(argv[2]) : 20;
    char dir[] = "/tmp/vpage-signal-XXXXXX", mine[4096];
    if (!mkdtemp(dir)) {
        perror("signal_open: mkdtemp");
        return 1;
    }
    snprintf(mine, sizeof mine, "%s/a.safetensors", dir);
    snprintf(other, sizeof other, "%s/b.safetensors", dir);
    if (make(mine) || make(other)) {
        perror("signal_open: making the files");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, us}, {0, us}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (long i = 0; i < rounds; i++) {
        int fd = open(mine, O_RDONLY);
        if (fd < 0) continue;
        void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            mprotect(p, 4096, PROT_READ | PROT_WRITE);
            munmap(p, 4096);
        }
        close(fd);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    unlink(mine);
    unlink(other);
    rmdir(dir);
    printf("signal_open: ok (%ld rounds, %d signals handled)\n", rounds, (int)handled);
    return handled ? 0 : 1;
}
