/* spc's integer neuron kernels: QLeaky and QDelayLine of docs/integer-spec.md, each optionally
 * fused with the deterministic firing rule QFire (and, after QLeaky, its reset), over a chunk of
 * time steps, vectorised over the columns (batch × neurons). See integer_native.py, which builds
 * this file on first use (spc.native) and falls back to spc/runtime/integer.py's numpy kernels,
 * the reference these must equal bit for bit.
 *
 * Arrays are time-major, row-major [T, M]; every function handles the columns [m0, m1) only, so
 * that threads can split the columns between them. Per-column parameters are [M] (or [k, M]) arrays
 * the caller expands from the per-channel ones. Inputs are INPUT (int32_t or int64_t: the file is
 * compiled once for each, suffix i32 / i64); membranes are int32 (a state of W <= 32 bits), spikes
 * uint8, all arithmetic int64 (no product of the spec overflows it). Each function returns the
 * number of saturation events (elements that sat_W changed), or −1 when out of memory.
 */
#include <stdint.h>
#include <stdlib.h>

#define JOIN2(a, b) a##_##b
#define JOIN(a, b) JOIN2(a, b)
#define NAME(f) JOIN(f, SUFFIX)
#define BLOCK 256 /* columns per block: a block's rows stay in L1 across the taps */

/* sat_W, counting the events (branch-free, so that loops over columns vectorise) */
static inline int64_t sat(int64_t v, int64_t limit, long *events) {
    int64_t c = v > limit ? limit : v;
    c = c < -limit ? -limit : c;
    *events += c != v;
    return c;
}

/* sign(v) · (|v| >> n): an arithmetic shift of v plus 2^n − 1 where v is negative */
static inline int64_t trunc0(int64_t v, int n) {
    return (v + ((v >> 63) & (((int64_t)1 << n) - 1))) >> n;
}

static inline int64_t align(int64_t x, int shift) {
    return shift >= 0 ? (int64_t)((uint64_t)x << shift) : x >> -shift;
}

/* One QLeaky step on one column, then (fires) the firing rule and its reset: `mode`, `fires` and
 * `reset` are constants in every call (see leaky), so each combination compiles to its own
 * branch-free, vectorised loop. Mode 0 'int12' (amount d: v·(4096 − d) fits int64 as an int32
 * times an int32), 1 'shift' (amount n; −1: no leak); reset 0 none, 1 to zero, 2 by subtraction. */
static inline int64_t leaky_step(int32_t *v, INPUT x, int32_t amount, int mode, int shift, int64_t limit, int fires, int reset, int64_t threshold, int strict, uint8_t *spike, long *events) {
    int64_t d;
    if (mode == 0)
        d = trunc0((int64_t)*v * (int64_t)(4096 - amount), 12);
    else
        d = amount < 0 ? (int64_t)*v : (int64_t)*v - ((int64_t)*v >> (amount < 0 ? 0 : amount));
    int64_t u = sat(d + align(x, shift), limit, events);
    int64_t next = u;
    if (fires) {
        int64_t fired = strict ? u > threshold : u >= threshold;
        *spike = (uint8_t)fired;
        if (reset == 1)
            next = fired ? 0 : u;
        else if (reset == 2)
            next = sat(u - (fired ? threshold : 0), limit, events);
    }
    *v = (int32_t)next;
    return u;
}

#define LEAKY_ROWS(MODE, FIRES, RESET)                                                                                                                                        \
    for (long t = 0; t < T; t++) {                                                                                                                                            \
        const INPUT *restrict xr = x + t * M;                                                                                                                                 \
        int32_t *restrict hr = h + t * M;                                                                                                                                     \
        uint8_t *restrict sr = s + (FIRES ? t * M : 0);                                                                                                                       \
        for (long m = b0; m < b1; m++)                                                                                                                                        \
            hr[m] = (int32_t)leaky_step(v + m, xr[m], amount[m], MODE, shift, limit, FIRES, RESET, FIRES ? threshold[m] : 0, strict, sr + (FIRES ? m : 0), &events); \
    }

/* QLeaky: v = sat_W(decay(v) + align(x[t], shift)); h[t] = v; then, when s is not NULL, the firing
 * rule against threshold[m] (strict: >) with its reset. v [M] is the state, carried in and out. */
long NAME(leaky)(const INPUT *x, int32_t *h, uint8_t *s, long T, long M, long m0, long m1, int32_t *v, const int32_t *amount, int mode, int shift, int width, const int64_t *threshold, int strict, int reset) {
    int64_t limit = (int64_t)((1ULL << (width - 1)) - 1);
    long events = 0;
    uint8_t none = 0;
    if (!s)
        s = &none;
    for (long b0 = m0; b0 < m1; b0 += BLOCK) {
        long b1 = m1 - b0 < BLOCK ? m1 : b0 + BLOCK;
        int fires = s != &none, key = (mode * 2 + fires) * 3 + (fires ? reset : 0);
        switch (key) {
        case 0: LEAKY_ROWS(0, 0, 0) break;
        case 3: LEAKY_ROWS(0, 1, 0) break;
        case 4: LEAKY_ROWS(0, 1, 1) break;
        case 5: LEAKY_ROWS(0, 1, 2) break;
        case 6: LEAKY_ROWS(1, 0, 0) break;
        case 9: LEAKY_ROWS(1, 1, 0) break;
        case 10: LEAKY_ROWS(1, 1, 1) break;
        case 11: LEAKY_ROWS(1, 1, 2) break;
        }
    }
    return events;
}

/* acc[0:n] += w · row[0:n] with one tap w for every column (shared), or w[0:n] per column; ACC is
 * the accumulator's type (int32 where the caller proved the sums fit: twice the lanes). */
#define MAC(ACC, ROW)                                      \
    if (shared) {                                          \
        ACC wi = (ACC)w[0];                                \
        for (long m = 0; m < n; m++)                       \
            ((ACC *)acc)[m] += wi * (ACC)(ROW)[m];         \
    } else {                                               \
        for (long m = 0; m < n; m++)                       \
            ((ACC *)acc)[m] += (ACC)w[m] * (ACC)(ROW)[m];  \
    }

/* One step of a delay line over the n columns of a block: acc = bias + Σ_i taps_i · x[t − lag_i]. */
#define DELAY_STEP(ACC)                                                                      \
    for (long m = 0; m < n; m++)                                                             \
        ((ACC *)acc)[m] = (ACC)bias[b0 + m];                                                 \
    for (long i = 0; i < k; i++) {                                                           \
        long past = t - (k - 1 - i) * dilation;                                              \
        const int32_t *restrict w = taps + i * (shared ? 1 : M) + (shared ? 0 : b0);          \
        if (past >= 0) {                                                                     \
            const INPUT *restrict row = x + past * M + b0;                                   \
            MAC(ACC, row)                                                                    \
        } else {                                                                             \
            const int64_t *restrict row = history + (R + past) * M + b0;                     \
            MAC(ACC, row)                                                                    \
        }                                                                                    \
    }                                                                                        \
    for (long m = 0; m < n; m++) {                                                           \
        int64_t u = sat((int64_t)((ACC *)acc)[m], limit, &events);                           \
        hr[m] = (int32_t)u;                                                                  \
        if (sr)                                                                              \
            sr[m] = (uint8_t)(strict ? u > threshold[b0 + m] : u >= threshold[b0 + m]);      \
    }

/* QDelayLine: h[t] = sat_W(Σ_{i<k} taps[i] · x[t − (k−1−i)·dilation] + bias[m]), the inputs before
 * this chunk's first step read from history [R, M] (R = (k−1)·dilation rows, oldest first); taps
 * [k] shared by every column, or [k, M] per column; then, when s is not NULL, the firing rule (no
 * reset: a delay line has no state to reset). narrow: the caller proved every sum and partial sum
 * fits int32 (max|x| · Σ|taps| + |bias| < 2^31), so the sums run in int32. */
long NAME(delay_line)(const INPUT *x, int32_t *h, uint8_t *s, long T, long M, long m0, long m1, const int64_t *history, const int32_t *taps, const int64_t *bias, long k, long dilation, int width, const int64_t *threshold, int strict, int shared, int narrow) {
    int64_t limit = (int64_t)((1ULL << (width - 1)) - 1);
    long R = (k - 1) * dilation, events = 0;
    int64_t *acc = malloc(BLOCK * sizeof(int64_t));
    if (!acc)
        return -1;
    for (long b0 = m0; b0 < m1; b0 += BLOCK) {
        long n = m1 - b0 < BLOCK ? m1 - b0 : BLOCK;
        for (long t = 0; t < T; t++) {
            int32_t *hr = h + t * M + b0;
            uint8_t *sr = s ? s + t * M + b0 : NULL;
            if (narrow) {
                DELAY_STEP(int32_t)
            } else {
                DELAY_STEP(int64_t)
            }
        }
    }
    free(acc);
    return events;
}
