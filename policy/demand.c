/* demand.c - see demand.h. */
#include "demand.h"

#include <stdlib.h>

void vp_policy_demand_range(uint64_t size, uint64_t off, uint64_t chunk, uint64_t most, uint64_t *first,
                            uint64_t *count)
{
    uint64_t nchunks = (size + chunk - 1) / chunk;
    uint64_t f = off / chunk;
    uint64_t want = most / chunk;
    if (want == 0) want = 1;
    *first = f;
    *count = nchunks - f < want ? nchunks - f : want;
}

static int older_first(const void *a, const void *b)
{
    const struct vp_victim *x = a, *y = b;
    return x->last_use < y->last_use ? -1 : x->last_use > y->last_use;
}

size_t vp_policy_victims(struct vp_victim *c, size_t n, uint64_t need, uint64_t protect)
{
    if (n == 0) return 0;
    qsort(c, n, sizeof *c, older_first);
    uint64_t got = 0;
    size_t k = 0;
    while (k < n && got < need && c[k].last_use < protect) got += c[k++].bytes;
    return k;
}
