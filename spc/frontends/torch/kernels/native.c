/* spc's fused neuron kernels for the CPU: filter + firing rule + surrogate gradient in one pass
 * over time, vectorised over the columns (batch × neurons). See native.py, which builds this file
 * with gcc on first use and falls back to the portable torch kernels when it cannot.
 *
 * Arrays are time-major, row-major [T, M]. Every function handles the columns [m0, m1) only, so
 * that threads can split the columns between them. Compiled twice: REAL = float (suffix f32) and
 * REAL = double (suffix f64).
 *
 * Epilogue `mode`: 0 writes the membrane h, 1 the spikes h >= th, 2 the spikes h > th (strict);
 * the per-channel FIR also has MOMENTS (below).
 * Surrogate (modes 1, 2): d s / d h = (alpha / 2) / (1 + (pi/2 · alpha · (h − th))²), SpikingJelly's ATan.
 */
#include <stdlib.h>
#include <string.h>

typedef REAL real;
#define JOIN2(a, b) a##_##b
#define JOIN(a, b) JOIN2(a, b)
#define NAME(f) JOIN(f, SUFFIX)
#define HALF_PI 1.57079632679489661923

static inline real epilogue(real h, int mode, real th) {
    return mode == 0 ? h : (mode == 1 ? (real)(h >= th) : (real)(h > th));
}

/* The gradient reaching the membrane: g itself for mode 0, else g times the ATan surrogate. */
static inline real membrane_grad(real g, real h, int mode, real th, real alpha) {
    if (mode == 0)
        return g;
    real c = (real)HALF_PI * alpha * (h - th);
    return g * (alpha / 2) / (1 + c * c);
}

/* One vector register of reals, as wide as the CPU's (-march=native): a wider generic vector
 * would be split by the compiler into spills (512-bit vectors on an AVX2 CPU ran 3x slower). The
 * FIR keeps a block of R registers of columns in registers across its k taps. */
#if defined(__AVX512F__)
#define VECTOR_BYTES 64
#elif defined(__AVX__)
#define VECTOR_BYTES 32
#else
#define VECTOR_BYTES 16
#endif
typedef real vec __attribute__((vector_size(VECTOR_BYTES)));
#define LANES ((long)(sizeof(vec) / sizeof(real)))
#define R 4
#define BLOCK (R * LANES)

static inline vec load(const real *p) {
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store(real *p, vec v) {
    memcpy(p, &v, sizeof v);
}

/* acc[0:n] = bias + Σ_{j < count} w[j] · rows[j][0:n], rows[j] = base + j·stride: a full block
 * (n = BLOCK) in registers, or a shorter tail. */
static inline void dot_rows(real *restrict acc, const real *restrict base, long stride, const real *restrict w, long count, real bias, long n) {
    if (n == BLOCK) {
        vec a[R];
        for (int r = 0; r < R; r++)
            a[r] = (vec){0} + bias;
        for (long j = 0; j < count; j++) {
            vec wj = (vec){0} + w[j];
            for (int r = 0; r < R; r++)
                a[r] += wj * load(base + j * stride + r * LANES);
        }
        memcpy(acc, a, sizeof a);
        return;
    }
    for (long m = 0; m < n; m++)
        acc[m] = bias;
    for (long j = 0; j < count; j++)
        for (long m = 0; m < n; m++)
            acc[m] += w[j] * base[j * stride + m];
}

/* The FIR kernels run over panels of P columns, each from the first step to the last (or back),
 * keeping the panel's last k rows in a ring that stays in L1: every row is read from memory once and
 * then k times from the ring, instead of k times from rows a whole row length apart (which fall into
 * the same L1 sets and miss). A ring has 2k slots of P reals; row r lives in slot r mod k and again
 * in slot r mod k + k, so that any k consecutive rows are k consecutive slots. */
#ifndef RING_BYTES
#define RING_BYTES 8192 /* the k slots a step reads */
#endif
#define MAX_PANEL 1024
/* Partial sums of gradients in the kernel's type hold about this many terms per lane before they
 * are added into float64. */
#define FLUSH_TERMS 256
/* Rows a panel asks for ahead of their use: its rows are a row length apart, too far for the
 * hardware's prefetchers to follow. */
#ifndef AHEAD
#define AHEAD 4
#endif

static long panel_columns(long k) {
    long p = RING_BYTES / (k * (long)sizeof(real)) / BLOCK * BLOCK;
    return p < BLOCK ? BLOCK : (p > MAX_PANEL ? MAX_PANEL : p);
}

static inline long modulo(long a, long k) {
    return ((a % k) + k) % k;
}

/* The first of the k consecutive slots that hold rows r0 .. r0 + k−1. */
static inline real *ring_window(real *ring, long r0, long k, long P) {
    return ring + modulo(r0, k) * P;
}

/* Row r of the [T, M] array a, columns [c0, c0 + n) (zeros for r outside 0 .. T−1), into its two
 * slots of the ring. */
static inline void ring_put(real *ring, const real *a, long r, long T, long M, long c0, long n, long k, long P) {
    real *slot = ring_window(ring, r, k, P);
    if (r < 0 || r >= T)
        memset(slot, 0, (size_t)n * sizeof(real));
    else
        memcpy(slot, a + r * M + c0, (size_t)n * sizeof(real));
    memcpy(slot + k * P, slot, (size_t)n * sizeof(real));
}

static inline void prefetch_row(const real *a, long r, long T, long M, long c0, long n, int write) {
    for (long m = 0; r >= 0 && r < T && m < n; m += 64 / (long)sizeof(real)) {
        if (write)
            __builtin_prefetch(a + r * M + c0 + m, 1);
        else
            __builtin_prefetch(a + r * M + c0 + m, 0);
    }
}

/* FIR: h[t] = bias + Σ_j w[j] · x[t − (k−1) + j] (zeros before t = 0); out = epilogue(h).
 * Returns 0, or −1 when out of memory. */
int NAME(fir_forward)(const real *x, real *out, long T, long M, long m0, long m1, const real *w, long k, real bias, int mode, real th) {
    long P = panel_columns(k);
    real *ring = malloc((size_t)(2 * k * P) * sizeof(real)), acc[BLOCK];
    if (!ring)
        return -1;
    for (long c0 = m0; c0 < m1; c0 += P) {
        long n = m1 - c0 < P ? m1 - c0 : P;
        for (long r = -(k - 1); r < 0; r++)
            ring_put(ring, x, r, T, M, c0, n, k, P);
        for (long t = 0; t < T; t++) {
            prefetch_row(x, t + AHEAD, T, M, c0, n, 0);
            prefetch_row(out, t + AHEAD, T, M, c0, n, 1);
            ring_put(ring, x, t, T, M, c0, n, k, P);
            const real *window = ring_window(ring, t - (k - 1), k, P);
            for (long b = 0; b < n; b += BLOCK) {
                long nb = n - b < BLOCK ? n - b : BLOCK;
                dot_rows(acc, window + b, P, w, k, bias, nb);
                real *restrict o = out + t * M + c0 + b;
                for (long m = 0; m < nb; m++)
                    o[m] = epilogue(acc[m], mode, th);
            }
        }
    }
    free(ring);
    return 0;
}

/* part[j] += Σ_m gh[m] · rows[j][m] for j < k, rows[j] = base + j·stride, and part[k] += Σ_m gh[m],
 * over n columns: a full block into the vector accumulators vpart[j·R + r] (one per register of the
 * block, so that no sum waits for another), a shorter tail into the float64 sums. */
static inline void accumulate_dots(vec *restrict vpart, double *restrict part, const real *restrict gh, const real *restrict base, long stride, long k, long n) {
    if (n == BLOCK) {
        for (int r = 0; r < R; r++) {
            vec g = load(gh + r * LANES);
            for (long j = 0; j < k; j++)
                vpart[j * R + r] += g * load(base + j * stride + r * LANES);
            vpart[k * R + r] += g;
        }
        return;
    }
    for (long m = 0; m < n; m++) {
        for (long j = 0; j < k; j++)
            part[j] += gh[m] * base[j * stride + m];
        part[k] += gh[m];
    }
}

/* Backward of fir_forward, from the last step to the first, panel by panel: gh = membrane_grad(g, h)
 * (h recomputed from the ring of x's rows t − (k−1) .. t), gx[t] = Σ_j w[j] · gh[t + k−1 − j] (from
 * a ring of gh's rows t .. t + k−1; rows after T − 1 are zeros), and into sums[0:k+1] (zeroed by the
 * caller) the taps' gradients Σ gh[t] · x[t − (k−1) + j] and the bias's Σ gh. The taps' partial
 * sums are vectors in the kernel's type, added into float64 every few steps (about FLUSH_TERMS
 * terms per lane). Returns 0, or −1 when out of memory. */
int NAME(fir_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const real *w, long k, real bias, int mode, real th, real alpha, double *sums) {
    long P = panel_columns(k), every = FLUSH_TERMS / (P / BLOCK) > 0 ? FLUSH_TERMS / (P / BLOCK) : 1;
    real *xring = malloc((size_t)(4 * k * P) * sizeof(real)), *ghring = xring + 2 * k * P, acc[BLOCK];
    vec *vpart = aligned_alloc(sizeof(vec), (size_t)((k + 1) * R) * sizeof(vec));
    if (!xring || !vpart) {
        free(xring);
        free(vpart);
        return -1;
    }
    memset(vpart, 0, (size_t)((k + 1) * R) * sizeof(vec));
    for (long c0 = m0; c0 < m1; c0 += P) {
        long n = m1 - c0 < P ? m1 - c0 : P;
        for (long r = T; r < T + k; r++)
            ring_put(ghring, g, r, T, M, c0, n, k, P); /* zeros */
        for (long r = T - k + 1; r < T; r++)
            ring_put(xring, x, r, T, M, c0, n, k, P);
        for (long t = T - 1; t >= 0; t--) {
            prefetch_row(x, t - (k - 1) - AHEAD, T, M, c0, n, 0);
            prefetch_row(g, t - AHEAD, T, M, c0, n, 0);
            prefetch_row(gx, t - AHEAD, T, M, c0, n, 1);
            ring_put(xring, x, t - (k - 1), T, M, c0, n, k, P);
            /* xw: rows t − (k−1) .. t of x; gw: rows t + k−1 down to t of gh (a negative stride) */
            const real *xw = ring_window(xring, t - (k - 1), k, P), *gw = ring_window(ghring, t, k, P) + (k - 1) * P;
            real *restrict gh = ghring + modulo(t, k) * P, *restrict twin = gh + k * P;
            const real *restrict gr = g + t * M + c0;
            for (long b = 0; b < n; b += BLOCK) {
                long nb = n - b < BLOCK ? n - b : BLOCK;
                if (mode != 0)
                    dot_rows(acc, xw + b, P, w, k, bias, nb);
                for (long m = b; m < b + nb; m++)
                    gh[m] = twin[m] = mode == 0 ? gr[m] : membrane_grad(gr[m], acc[m - b], mode, th, alpha);
                dot_rows(gx + t * M + c0 + b, gw + b, -P, w, k, 0, nb);
                accumulate_dots(vpart, sums, gh + b, xw + b, P, k, nb);
            }
            if ((T - t) % every == 0 || t == 0) {
                for (long j = 0; j <= k; j++)
                    for (int r = 0; r < R; r++) {
                        for (long l = 0; l < LANES; l++)
                            sums[j] += vpart[j * R + r][l];
                        vpart[j * R + r] = (vec){0};
                    }
            }
        }
    }
    free(xring);
    free(vpart);
    return 0;
}

/* One step of a chain of leaky stages over W columns: s_i = decay[i] · s_i + gain[i] · s_{i−1}, with
 * s_{−1} = u, the step's input. Returns the last stage, the membrane. */
static inline const real *chain_step(real *s, long W, const real *u, const double *decay, const double *gain, long stages) {
    for (long i = 0; i < stages; i++) {
        real *restrict si = s + i * W, a = (real)decay[i], b = (real)gain[i];
        const real *restrict in = u;
        for (long m = 0; m < W; m++)
            si[m] = a * si[m] + b * in[m];
        u = si;
    }
    return u;
}

/* A chain of leaky stages, the stepwise form of LI (one stage) and SPSN (two):
 * s_i[t] = decay[i] · s_i[t−1] + gain[i] · s_{i−1}[t], with s_{−1} = x; h = s_last; out = epilogue(h).
 * Returns 0, or −1 when out of memory. */
int NAME(chain_forward)(const real *x, real *out, long T, long M, long m0, long m1, const double *decay, const double *gain, long stages, int mode, real th) {
    long W = m1 - m0;
    real *s = calloc((size_t)(stages * W), sizeof(real));
    if (!s)
        return -1;
    for (long t = 0; t < T; t++) {
        const real *restrict u = chain_step(s, W, x + t * M + m0, decay, gain, stages);
        real *restrict o = out + t * M + m0;
        for (long m = 0; m < W; m++)
            o[m] = epilogue(u[m], mode, th);
    }
    free(s);
    return 0;
}

/* Backward of chain_forward. Modes 1, 2 first rerun the chain forward to write gh into gx; then the
 * adjoint runs from the last step to the first, in place: μ_i = decay[i] · μ_i + v, v = gain[i] · μ_i
 * from the last stage to the first, starting from v = gh[t]; gx[t] = v. Returns 0 or −1. */
int NAME(chain_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const double *decay, const double *gain, long stages, int mode, real th, real alpha) {
    long W = m1 - m0;
    real *s = calloc((size_t)(stages * W), sizeof(real));
    if (!s)
        return -1;
    for (long t = 0; mode != 0 && t < T; t++) {
        const real *restrict u = chain_step(s, W, x + t * M + m0, decay, gain, stages);
        const real *restrict gr = g + t * M + m0;
        real *restrict o = gx + t * M + m0;
        for (long m = 0; m < W; m++)
            o[m] = membrane_grad(gr[m], u[m], mode, th, alpha);
    }
    memset(s, 0, (size_t)(stages * W) * sizeof(real)); /* now the adjoint states μ */
    for (long t = T - 1; t >= 0; t--) {
        const real *v = (mode == 0 ? g : gx) + t * M + m0; /* gh; becomes o in place */
        real *o = gx + t * M + m0;
        for (long i = stages - 1; i >= 0; i--) {
            real *restrict mu = s + i * W, a = (real)decay[i], b = (real)gain[i];
            for (long m = 0; m < W; m++)
                mu[m] = a * mu[m] + v[m];
            for (long m = 0; m < W; m++)
                o[m] = b * mu[m];
            v = o;
        }
    }
    free(s);
    return 0;
}

/* Leaky integrate-and-fire with reset, SpikingJelly's LIFNode measured from v_reset:
 * h[t] = decay · v + gain · x[t]; s = h >= th; v = h · (1 − s) (reset 0: to zero) or h − th · s
 * (reset 1: by subtraction). Writes the spikes and, for the backward pass, h. Returns 0 or −1. */
int NAME(lif_forward)(const real *x, real *out, real *hs, long T, long M, long m0, long m1, real decay, real gain, real th, int reset) {
    long W = m1 - m0;
    real *v = calloc((size_t)W, sizeof(real));
    if (!v)
        return -1;
    for (long t = 0; t < T; t++) {
        const real *restrict xr = x + t * M + m0;
        real *restrict o = out + t * M + m0, *restrict hr = hs + t * M + m0;
        for (long m = 0; m < W; m++) {
            real h = decay * v[m] + gain * xr[m];
            real s = (real)(h >= th);
            hr[m] = h;
            o[m] = s;
            v[m] = reset ? h - th * s : h * (1 - s);
        }
    }
    free(v);
    return 0;
}

/* Backward of lif_forward, through the reset as autograd would (the surrogate flows through s
 * in the reset too): gh = g · φ + gv · ∂v/∂h, with ∂v/∂h = (1 − s) − h · φ (to zero) or 1 − th · φ
 * (subtraction); gx[t] = gain · gh; the gradient reaching v[t−1] is decay · gh. Returns 0 or −1. */
int NAME(lif_backward)(const real *hs, const real *g, real *gx, long T, long M, long m0, long m1, real decay, real gain, real th, int reset, real alpha) {
    long W = m1 - m0;
    real *gv = calloc((size_t)W, sizeof(real));
    if (!gv)
        return -1;
    for (long t = T - 1; t >= 0; t--) {
        const real *restrict hr = hs + t * M + m0, *restrict gr = g + t * M + m0;
        real *restrict o = gx + t * M + m0;
        for (long m = 0; m < W; m++) {
            real h = hr[m], phi = membrane_grad(1, h, 1, th, alpha);
            real dv = reset ? 1 - th * phi : (1 - (real)(h >= th)) - h * phi;
            real gh = gr[m] * phi + gv[m] * dv;
            o[m] = gain * gh;
            gv[m] = decay * gh;
        }
    }
    free(gv);
    return 0;
}

/* ---- per-channel kernels ------------------------------------------------------------------------
 * Their coefficients are per channel, [count, C] row-major; column col belongs to channel
 * (col / inner) % C, inner the product of the dims after the channels. A thread copies the
 * coefficients of its columns into per-position rows (`layout`), which its inner loops read as
 * plain vectors, and sums its gradients per position (`sums`) before adding them into its channels'
 * sums[count, C] (a row of sums per thread, zeroed by the caller). */

#define MOMENTS 3 /* the per-channel FIR's mode that accumulates Σh, Σh² instead of writing */

/* Where the per-channel values of a thread's columns [m0, m1) live: column m0 + c at position
 * (c + shift) mod L, with L the channels' period C·inner (so that a thread's per-position rows do
 * not grow with the batch, and stay in L1 for a few hundred channels) or its W columns when these are
 * fewer; position i belongs to channel ((base + i) / inner) mod C. */
typedef struct {
    long C, inner, L, shift, base;
} layout;

static layout layout_of(long C, long inner, long m0, long m1) {
    long P = C * inner;
    if (P < m1 - m0)
        return (layout){C, inner, P, m0 % P, m0 - m0 % P};
    return (layout){C, inner, m1 - m0, 0, m0};
}

static long channel_at(const layout *lay, long i) {
    return (lay->base + i) / lay->inner % lay->C;
}

/* The columns [c, c + n) of the next block: at most `most`, within one period (so that its
 * per-position values are contiguous); *p is the position of c. */
static inline long span(const layout *lay, long c, long W, long most, long *p) {
    long n = W - c < most ? W - c : most;
    *p = (c + lay->shift) % lay->L;
    return n < lay->L - *p ? n : lay->L - *p;
}

/* The per-position rows out[j·L + i] = coef[j·C + channel(i)], j < count; NULL when out of memory. */
static real *per_position(const layout *lay, const real *coef, long count) {
    real *out = malloc((size_t)(count * lay->L) * sizeof(real));
    for (long i = 0; out && i < lay->L; i++)
        for (long j = 0; j < count; j++)
            out[j * lay->L + i] = coef[j * lay->C + channel_at(lay, i)];
    return out;
}

/* Per-position sums of products, for the gradients of per-channel coefficients: vectorised partial
 * sums in the kernel's type, added into float64 totals every `every` steps, by when each partial
 * sum holds about FLUSH_TERMS terms (as fir_backward does). */
typedef struct {
    long count, L, every, steps;
    real *part;    /* [count, L] */
    double *total; /* [count, L] */
} sums;

static int sums_init(sums *a, const layout *lay, long count, long W) {
    long per_step = W / lay->L; /* columns per position */
    *a = (sums){count, lay->L, per_step < FLUSH_TERMS ? FLUSH_TERMS / per_step : 1, 0, NULL, NULL};
    a->part = calloc((size_t)(count * lay->L), sizeof(real));
    a->total = calloc((size_t)(count * lay->L), sizeof(double));
    return a->part && a->total;
}

/* part[j][p + m] += u[m] · v[m] (v NULL: u[m]) for m < n. */
static inline void sums_add(sums *a, long j, long p, const real *restrict u, const real *restrict v, long n) {
    real *restrict part = a->part + j * a->L + p;
    for (long m = 0; v && m < n; m++)
        part[m] += u[m] * v[m];
    for (long m = 0; !v && m < n; m++)
        part[m] += u[m];
}

/* total[j][p + m] += u[m] · v[m] (v NULL: u[m]) in double, where a product of two reals is exact:
 * for statistics whose difference cancels (Σh²/n − (Σh/n)²), which the partial sums would round. */
static inline void sums_add_exact(sums *a, long j, long p, const real *restrict u, const real *restrict v, long n) {
    double *restrict total = a->total + j * a->L + p;
    for (long m = 0; v && m < n; m++)
        total[m] += (double)u[m] * v[m];
    for (long m = 0; !v && m < n; m++)
        total[m] += u[m];
}

/* An FIR's gradient sums: part[j][p + m] += u[m] · rows[j − j0][off + m] for the taps j0 <= j < k
 * that reach, and part[k][p + m] += u[m] for the bias; a full block in registers (one call per
 * block, not per tap: n is short). */
static inline void sums_add_taps(sums *a, long p, const real *u, const real *const *rows, long off, long j0, long k, long n) {
    if (n != BLOCK) {
        for (long j = j0; j < k; j++)
            sums_add(a, j, p, u, rows[j - j0] + off, n);
        sums_add(a, k, p, u, NULL, n);
        return;
    }
    vec g[R];
    for (int r = 0; r < R; r++)
        g[r] = load(u + r * LANES);
    for (long j = j0; j < k; j++) {
        real *part = a->part + j * a->L + p;
        for (int r = 0; r < R; r++)
            store(part + r * LANES, load(part + r * LANES) + g[r] * load(rows[j - j0] + off + r * LANES));
    }
    real *part = a->part + k * a->L + p;
    for (int r = 0; r < R; r++)
        store(part + r * LANES, load(part + r * LANES) + g[r]);
}

static void sums_flush(sums *a) {
    for (long i = 0; i < a->count * a->L; i++) {
        a->total[i] += a->part[i];
        a->part[i] = 0;
    }
}

/* The end of a step: the partial sums go into the totals every `every` steps. */
static void sums_step(sums *a) {
    if (++a->steps % a->every == 0)
        sums_flush(a);
}

/* The end of a kernel: when it ran (ok), out[j·C + channel(i)] += the sums, j < count; then frees
 * them (a zeroed struct, never initialised, adds nothing). Returns 0, or −1 when not ok. */
static int sums_finish(sums *a, const layout *lay, double *out, int ok) {
    for (long i = 0; ok && i < a->L; i++)
        for (long j = 0; j < a->count; j++)
            out[j * lay->C + channel_at(lay, i)] += a->total[j * a->L + i] + a->part[j * a->L + i];
    free(a->part);
    free(a->total);
    return ok ? 0 : -1;
}

/* acc[0:n] = bias[0:n] (0 when NULL) + Σ_{j < count} w[j·ws + m] · rows[j][off + m]: dot_rows with
 * per-column weights, row j of w at stride ws. */
static inline void dot_columns(real *restrict acc, const real *const *rows, long off, const real *w, long ws, const real *bias, long count, long n) {
    if (n == BLOCK) {
        vec a[R];
        for (int r = 0; r < R; r++)
            a[r] = bias ? load(bias + r * LANES) : (vec){0};
        for (long j = 0; j < count; j++)
            for (int r = 0; r < R; r++)
                a[r] += load(w + j * ws + r * LANES) * load(rows[j] + off + r * LANES);
        memcpy(acc, a, sizeof a);
        return;
    }
    for (long m = 0; m < n; m++)
        acc[m] = bias ? bias[m] : 0;
    for (long j = 0; j < count; j++) {
        const real *restrict row = rows[j] + off, *restrict wj = w + j * ws;
        for (long m = 0; m < n; m++)
            acc[m] += wj[m] * row[m];
    }
}

/* rows[i] = the row t − (k−1−j)·d of x, at column m0, for the taps j = j0 + i that reach a step
 * >= 0; returns j0. */
static long past_rows(const real **rows, const real *x, long t, long M, long m0, long k, long d) {
    long j0 = k - 1 - t / d > 0 ? k - 1 - t / d : 0;
    for (long j = j0; j < k; j++)
        rows[j - j0] = x + (t - (k - 1 - j) * d) * M + m0;
    return j0;
}

/* The transpose of past_rows over a ring of the last `slots` rows (row s at slot s mod slots):
 * rows[i] = the row t + (k−1−j)·d for the taps j = j0 + i that reach a step <= T − 1; returns j0. */
static long future_rows(const real **rows, const real *ring, long stride, long slots, long t, long T, long k, long d) {
    long j0 = k - 1 - (T - 1 - t) / d > 0 ? k - 1 - (T - 1 - t) / d : 0;
    for (long j = j0; j < k; j++)
        rows[j - j0] = ring + (t + (k - 1 - j) * d) % slots * stride;
    return j0;
}

/* Row stride of a ring of rows of W columns: a cache line longer, so that the rows a block reads do
 * not fall into one L1 set. */
static long ring_stride(long W) {
    return W + 64 / (long)sizeof(real);
}

/* Per-channel FIR with dilation d, coefficients [k+1, C] (the taps, then the bias):
 * h[t] = bias + Σ_j w_j · x[t − (k−1−j)·d] (zeros before t = 0); out = epilogue(h), or for mode
 * MOMENTS nothing: Σh and Σh² of each channel go into sums[2, C]. Returns 0, or −1 when out of memory. */
int NAME(cfir_forward)(const real *x, real *out, long T, long M, long m0, long m1, const real *coef, long C, long inner, long k, long d, int mode, real th, double *sums_out) {
    long W = m1 - m0;
    layout lay = layout_of(C, inner, m0, m1);
    long L = lay.L;
    real *w = per_position(&lay, coef, k + 1), h[BLOCK];
    const real **rows = malloc((size_t)k * sizeof *rows);
    sums moments = {0};
    int ok = w && rows && (mode != MOMENTS || sums_init(&moments, &lay, 2, W));
    for (long t = 0; ok && t < T; t++) {
        long j0 = past_rows(rows, x, t, M, m0, k, d);
        for (long c = 0, p, n; c < W; c += n) {
            n = span(&lay, c, W, BLOCK, &p);
            dot_columns(h, rows, c, w + j0 * L + p, L, w + k * L + p, k - j0, n);
            if (mode == MOMENTS) {
                sums_add_exact(&moments, 0, p, h, NULL, n);
                sums_add_exact(&moments, 1, p, h, h, n);
            }
            real *restrict o = out + t * M + m0 + c;
            for (long m = 0; mode != MOMENTS && m < n; m++)
                o[m] = epilogue(h[m], mode, th);
        }
    }
    free(w);
    free(rows);
    return sums_finish(&moments, &lay, sums_out, ok);
}

/* Backward of cfir_forward, from the last step to the first: gh = g for mode 0, membrane_grad(g, h)
 * for modes 1, 2, and for MOMENTS (g unused) gh = q0 + q1 · (h − q2) with per-channel q [3, C]
 * (the gradient of a mean q0·n and a variance around q2); gx[t] = Σ_j w_j · gh[t + (k−1−j)·d];
 * into sums[k+1, C] the taps' Σ gh[t] · x[t − (k−1−j)·d] and the bias's Σ gh. The last (k−1)·d + 1
 * rows of gh live in a ring. Returns 0 or −1. */
int NAME(cfir_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const real *coef, long C, long inner, long k, long d, int mode, real th, real alpha, const real *moments, double *sums_out) {
    long W = m1 - m0, slots = (k - 1) * d + 1, stride = ring_stride(W);
    layout lay = layout_of(C, inner, m0, m1);
    long L = lay.L;
    real *w = per_position(&lay, coef, k + 1), h[BLOCK] = {0}; /* h: unread in mode 0 */
    real *q = mode == MOMENTS ? per_position(&lay, moments, 3) : NULL;
    real *ring = malloc((size_t)(slots * stride) * sizeof(real));
    const real **xrows = malloc((size_t)k * sizeof *xrows), **grows = malloc((size_t)k * sizeof *grows);
    sums grads = {0};
    int ok = w && ring && xrows && grows && (q || mode != MOMENTS) && sums_init(&grads, &lay, k + 1, W);
    for (long t = T - 1; ok && t >= 0; t--) {
        long j0 = past_rows(xrows, x, t, M, m0, k, d), j1 = future_rows(grows, ring, stride, slots, t, T, k, d);
        real *restrict gh = ring + t % slots * stride;
        const real *restrict gr = g + t * M + m0;
        for (long c = 0, p, n; c < W; c += n) {
            n = span(&lay, c, W, BLOCK, &p);
            if (mode != 0)
                dot_columns(h, xrows, c, w + j0 * L + p, L, w + k * L + p, k - j0, n);
            for (long m = 0; m < n; m++) {
                long i = c + m;
                gh[i] = mode == MOMENTS ? q[p + m] + q[L + p + m] * (h[m] - q[2 * L + p + m]) : membrane_grad(gr[i], h[m], mode, th, alpha);
            }
            dot_columns(gx + t * M + m0 + c, grows, c, w + j1 * L + p, L, NULL, k - j1, n);
            sums_add_taps(&grads, p, gh + c, xrows, c, j0, k, n);
        }
        sums_step(&grads);
    }
    free(w);
    free(q);
    free(ring);
    free(xrows);
    free(grows);
    return sums_finish(&grads, &lay, sums_out, ok);
}

/* e^v for |v| <= 87 (float), 708 (double), written to vectorise (libm's exp does not without
 * -ffast-math): e^v = 2^n · e^r with n = round(v / ln 2), |r| <= ln 2 / 2, e^r by its Taylor
 * polynomial to the type's precision (7 terms for float, 13 for double: below 2 ulp in all), and 2^n
 * put into the exponent bits, where it stays a normal number. */
typedef __typeof__(__builtin_choose_expr(sizeof(real) == 4, (int)0, (long long)0)) word;
static inline real exp_real(real v) {
    const int single = sizeof(real) == 4, terms = single ? 7 : 13, mantissa = single ? 23 : 52, bias = single ? 127 : 1023;
    const real ln2_hi = 0.693145751953125, ln2_lo = 1.42860682030941723212e-6; /* n · ln2_hi is exact */
    static const real inverse[14] = {1, 1, 1. / 2, 1. / 3, 1. / 4, 1. / 5, 1. / 6, 1. / 7, 1. / 8, 1. / 9, 1. / 10, 1. / 11, 1. / 12, 1. / 13};
    real n = (real)(word)(v * (real)1.44269504088896340736 + (real)__builtin_copysign(0.5, v)); /* half away from 0 */
    real r = (v - n * ln2_hi) - n * ln2_lo, p = 1;
    for (int i = terms; i >= 1; i--)
        p = 1 + p * r * inverse[i];
    word bits = ((word)n + bias) << mantissa;
    real scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* z[0:n] ← σ(z[0:n]) = 1 / (1 + e^−z), z first clamped into exp_real's range (σ is saturated long
 * before). The clamp has a loop of its own: GCC does not vectorise a loop in which a float-to-int
 * conversion follows a select. */
static inline void sigmoids(real *restrict z, long n) {
    const real limit = sizeof(real) == 4 ? 87 : 708;
    for (long m = 0; m < n; m++)
        z[m] = z[m] < -limit ? -limit : z[m] > limit ? limit : z[m];
    for (long m = 0; m < n; m++)
        z[m] = 1 / (1 + exp_real(-z[m]));
}

/* DSN's gates a = σ(bias + Σ_j w_j · x[t−k+1+j]) into z for the next block of columns, at c (rows
 * from past_rows, whose first tap is j0; w the per-position taps, then bias); returns the block's
 * length, *p its position. */
static inline long gates(real *z, const layout *lay, const real *w, const real *const *rows, long c, long W, long j0, long k, long *p) {
    long n = span(lay, c, W, BLOCK, p), L = lay->L;
    dot_columns(z, rows, c, w + j0 * L + *p, L, w + k * L + *p, k - j0, n);
    sigmoids(z, n);
    return n;
}

/* DSN, the gated leaky membrane: the gate's per-channel FIR z = bias + Σ_j w_j · x[t−k+1+j]
 * (coefficients [k+1, C]), a = σ(z), h[t] = a · h[t−1] + (1 − a) · x[t]; out = epilogue(h).
 * Returns 0 or −1. */
int NAME(dsn_forward)(const real *x, real *out, long T, long M, long m0, long m1, const real *coef, long C, long inner, long k, int mode, real th) {
    long W = m1 - m0;
    layout lay = layout_of(C, inner, m0, m1);
    real *w = per_position(&lay, coef, k + 1), *h = calloc((size_t)W, sizeof(real)), z[BLOCK];
    const real **rows = malloc((size_t)k * sizeof *rows);
    int ok = w && h && rows;
    for (long t = 0; ok && t < T; t++) {
        long j0 = past_rows(rows, x, t, M, m0, k, 1);
        const real *restrict xr = x + t * M + m0;
        real *restrict o = out + t * M + m0;
        for (long c = 0, p, n; c < W; c += n) {
            n = gates(z, &lay, w, rows, c, W, j0, k, &p);
            for (long m = 0; m < n; m++) {
                long i = c + m;
                h[i] = z[m] * h[i] + (1 - z[m]) * xr[i];
                o[i] = epilogue(h[i], mode, th);
            }
        }
    }
    free(w);
    free(h);
    free(rows);
    return ok ? 0 : -1;
}

/* Backward of dsn_forward. First the membrane h is recomputed into gx; then from the last step to
 * the first: gh = g (mode 0) or membrane_grad(g, h); the adjoint λ[t] = gh[t] + a[t+1] · λ[t+1];
 * the gate's gradient gz = λ · (h[t−1] − x[t]) · a(1 − a); gx[t] = (1 − a) · λ + Σ_j w_j · gz[t+k−1−j]
 * (overwriting h[t], no longer needed); into sums[k+1, C] the gate's taps' Σ gz[t] · x[t−k+1+j] and
 * its bias's Σ gz. The last k rows of gz live in a ring. Returns 0 or −1. */
int NAME(dsn_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const real *coef, long C, long inner, long k, int mode, real th, real alpha, double *sums_out) {
    if (NAME(dsn_forward)(x, gx, T, M, m0, m1, coef, C, inner, k, 0, 0) != 0)
        return -1;
    long W = m1 - m0, stride = ring_stride(W);
    layout lay = layout_of(C, inner, m0, m1);
    long L = lay.L;
    real *w = per_position(&lay, coef, k + 1), *ring = malloc((size_t)(k * stride) * sizeof(real));
    real *lambda = calloc((size_t)(3 * W), sizeof(real)), *next = lambda + W, *zeros = lambda + 2 * W, z[BLOCK], direct[BLOCK]; /* next: a[t+1] */
    const real **xrows = malloc((size_t)k * sizeof *xrows), **zrows = malloc((size_t)k * sizeof *zrows);
    sums grads = {0};
    int ok = w && ring && lambda && xrows && zrows && sums_init(&grads, &lay, k + 1, W);
    for (long t = T - 1; ok && t >= 0; t--) {
        long j0 = past_rows(xrows, x, t, M, m0, k, 1), j1 = future_rows(zrows, ring, stride, k, t, T, k, 1);
        real *restrict gz = ring + t % k * stride, *o = gx + t * M + m0;
        const real *restrict xr = x + t * M + m0, *restrict gr = g + t * M + m0, *before = t ? o - M : zeros; /* h[t−1] */
        for (long c = 0, p, n; c < W; c += n) {
            n = gates(z, &lay, w, xrows, c, W, j0, k, &p);
            for (long m = 0; m < n; m++) {
                long i = c + m;
                real a = z[m], gh = membrane_grad(gr[i], o[i], mode, th, alpha);
                real l = gh + next[i] * lambda[i];
                lambda[i] = l;
                next[i] = a;
                gz[i] = l * (before[i] - xr[i]) * a * (1 - a);
                direct[m] = (1 - a) * l;
            }
            dot_columns(o + c, zrows, c, w + j1 * L + p, L, direct, k - j1, n);
            sums_add_taps(&grads, p, gz + c, xrows, c, j0, k, n);
        }
        sums_step(&grads);
    }
    free(w);
    free(ring);
    free(lambda);
    free(xrows);
    free(zrows);
    return sums_finish(&grads, &lay, sums_out, ok);
}

/* One step of a damped rotation: s ← A · s + v for complex s = su + i·sr, A = re + i·im, v = vu + i·vr. */
static inline void rotate(real *su, real *sr, real re, real im, real vu, real vr) {
    real u = *su, r = *sr;
    *su = re * u - im * r + vu;
    *sr = im * u + re * r + vr;
}

/* PRF's resonator, per channel coefficients [3, C] (re, im, gain): s[t] = A · s[t−1] + x[t] with
 * A = re + i·im, the membrane h = gain · Re s (the stepwise Resonator cell's u); out = epilogue(h).
 * Returns 0 or −1. */
int NAME(resonator_forward)(const real *x, real *out, long T, long M, long m0, long m1, const real *coef, long C, long inner, int mode, real th) {
    long W = m1 - m0;
    layout lay = layout_of(C, inner, m0, m1);
    real *q = per_position(&lay, coef, 3), *s = calloc((size_t)(2 * W), sizeof(real));
    int ok = q && s;
    real *restrict su = s, *restrict sr = s + W;
    for (long t = 0; ok && t < T; t++) {
        const real *restrict xr = x + t * M + m0;
        real *restrict o = out + t * M + m0;
        for (long c = 0, p, n; c < W; c += n) {
            n = span(&lay, c, W, W, &p);
            const real *restrict re = q + p, *restrict im = q + lay.L + p, *restrict gain = q + 2 * lay.L + p;
            for (long m = 0; m < n; m++) {
                rotate(su + c + m, sr + c + m, re[m], im[m], xr[c + m], 0);
                o[c + m] = epilogue(gain[m] * su[c + m], mode, th);
            }
        }
    }
    free(q);
    free(s);
    return ok ? 0 : -1;
}

/* Backward of resonator_forward, in two sweeps. Forward in time, with the state s its tangent
 * w = ∂s/∂A (w[t] = A · w[t−1] + s[t−1]; s is holomorphic in A, so ∂s/∂re = w and ∂s/∂im = i·w):
 * gh = g or membrane_grad(g, h) goes into gx, and Σ gh · Re w, Σ gh · Im w, Σ gh · Re s into
 * sums[3, C] (times gain, −gain and 1 the gradients of re, im and gain). Then backward in time, the
 * adjoint μ ← Ā · μ + gain · gh (Ā, the transposed rotation) gives gx[t] = Re μ, in place.
 * Returns 0 or −1. */
int NAME(resonator_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const real *coef, long C, long inner, int mode, real th, real alpha, double *sums_out) {
    long W = m1 - m0;
    layout lay = layout_of(C, inner, m0, m1);
    real *q = per_position(&lay, coef, 3), *s = calloc((size_t)(4 * W), sizeof(real));
    sums grads = {0};
    int ok = q && s && sums_init(&grads, &lay, 3, W);
    real *restrict su = s, *restrict sr = s + W, *restrict wu = s + 2 * W, *restrict wr = s + 3 * W;
    for (long t = 0; ok && t < T; t++) {
        const real *restrict xr = x + t * M + m0, *restrict gr = g + t * M + m0;
        real *restrict o = gx + t * M + m0;
        for (long c = 0, p, n; c < W; c += n) {
            n = span(&lay, c, W, W, &p);
            const real *restrict re = q + p, *restrict im = q + lay.L + p, *restrict gain = q + 2 * lay.L + p;
            for (long m = 0; m < n; m++) {
                long i = c + m;
                rotate(wu + i, wr + i, re[m], im[m], su[i], sr[i]);
                rotate(su + i, sr + i, re[m], im[m], xr[i], 0);
                o[i] = membrane_grad(gr[i], gain[m] * su[i], mode, th, alpha);
            }
            sums_add(&grads, 0, p, o + c, wu + c, n);
            sums_add(&grads, 1, p, o + c, wr + c, n);
            sums_add(&grads, 2, p, o + c, su + c, n);
        }
        sums_step(&grads);
    }
    real *restrict mu_u = su, *restrict mu_r = sr; /* the adjoint state, from zero */
    for (long m = 0; ok && m < 2 * W; m++)
        s[m] = 0;
    for (long t = T - 1; ok && t >= 0; t--) {
        real *restrict o = gx + t * M + m0;
        for (long c = 0, p, n; c < W; c += n) {
            n = span(&lay, c, W, W, &p);
            const real *restrict re = q + p, *restrict im = q + lay.L + p, *restrict gain = q + 2 * lay.L + p;
            for (long m = 0; m < n; m++) {
                rotate(mu_u + c + m, mu_r + c + m, re[m], -im[m], gain[m] * o[c + m], 0);
                o[c + m] = mu_u[c + m];
            }
        }
    }
    free(q);
    free(s);
    return sums_finish(&grads, &lay, sums_out, ok);
}

/* ---- elementwise random gate: MPE-PSN's training draws ------------------------------------------
 * A counter-based hash of the element's index i = t·M + m (so that the draws do not depend on how
 * threads split the columns) and a 64-bit key (k0, k1): two rounds of the `lowbias32` integer mixer
 * (C. Wellons), of which the top 24 bits make a uniform u in [0, 1). kernels/fused.py computes the
 * same numbers in torch for the fall-back. */
typedef unsigned int u32;
static inline u32 mix32(u32 v) {
    v ^= v >> 16;
    v *= 0x7feb352dU;
    v ^= v >> 15;
    v *= 0x846ca68bU;
    v ^= v >> 16;
    return v;
}

/* open[m] = 1 − b for the n elements of row t at column c: b = (u < σ(x)), u the hashed uniform;
 * z is scratch of n reals. */
static inline void gate_row(real *restrict open, real *restrict z, const real *restrict x, unsigned long long first, long n, u32 k0, u32 k1) {
    for (long m = 0; m < n; m++)
        z[m] = x[m];
    sigmoids(z, n);
    for (long m = 0; m < n; m++) {
        unsigned long long i = first + (unsigned long long)m;
        u32 h = mix32(mix32((u32)i ^ k0) ^ (u32)(i >> 32) ^ k1);
        real u = (real)(h >> 8) * (real)(1.0 / 16777216.0);
        open[m] = (real)!(u < z[m]);
    }
}

/* MPE-PSN in training: the gate b ~ Bernoulli(σ(x)) drawn by the hash with key (k0, k1), the
 * estimate e = (1 − b) · x, h = x + tau · e (variant 1, "B") or x + tau · e[t−1] (variant 0, "A");
 * out = epilogue(h). Returns 0 or −1. */
int NAME(mpe_forward)(const real *x, real *out, long T, long M, long m0, long m1, int variant, real tau, long k0, long k1, int mode, real th) {
    long W = m1 - m0;
    real *open = malloc((size_t)(3 * W) * sizeof(real)), *z = open + W, *late = open + 2 * W; /* late: e[t−1] */
    if (!open)
        return -1;
    memset(late, 0, (size_t)W * sizeof(real));
    for (long t = 0; t < T; t++) {
        const real *restrict xr = x + t * M + m0;
        real *restrict o = out + t * M + m0;
        gate_row(open, z, xr, (unsigned long long)(t * M + m0), W, (u32)k0, (u32)k1);
        for (long m = 0; m < W; m++) {
            real e = open[m] * xr[m], h = xr[m] + tau * (variant ? e : late[m]);
            late[m] = e;
            o[m] = epilogue(h, mode, th);
        }
    }
    free(open);
    return 0;
}

/* Backward of mpe_forward, from the last step to the first, the gate redrawn: gh = g (mode 0) or
 * membrane_grad(g, h); gx[t] = gh[t] · (1 + tau · (1 − b[t])) ("B") or gh[t] + tau · (1 − b[t]) ·
 * gh[t+1] ("A"); the threshold's gradient −Σ gh goes into sums[0] (partial sums per column in the
 * kernel's type, added into a float64 total every FLUSH_TERMS steps). Returns 0 or −1. */
int NAME(mpe_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, int variant, real tau, long k0, long k1, int mode, real th, real alpha, double *sums_out) {
    long W = m1 - m0;
    real *buf = calloc((size_t)(5 * W), sizeof(real));
    if (!buf)
        return -1;
    real *open = buf, *before = buf + W, *z = buf + 2 * W, *next = buf + 3 * W, *part = buf + 4 * W; /* before: 1 − b[t−1]; next: gh[t+1] */
    double total = 0;
    if (!variant && T > 0)
        gate_row(open, z, x + (T - 1) * M + m0, (unsigned long long)((T - 1) * M + m0), W, (u32)k0, (u32)k1);
    for (long t = T - 1; t >= 0; t--) {
        const real *restrict xr = x + t * M + m0, *restrict gr = g + t * M + m0;
        real *restrict o = gx + t * M + m0;
        const real *restrict xp = z; /* x[t−1], zeros at t = 0 */
        if (variant)
            gate_row(open, z, xr, (unsigned long long)(t * M + m0), W, (u32)k0, (u32)k1);
        else if (t > 0) {
            gate_row(before, z, xr - M, (unsigned long long)((t - 1) * M + m0), W, (u32)k0, (u32)k1);
            xp = xr - M;
        } else {
            memset(before, 0, (size_t)W * sizeof(real));
            memset(z, 0, (size_t)W * sizeof(real));
        }
        for (long m = 0; m < W; m++) {
            real h = xr[m] + tau * (variant ? open[m] * xr[m] : before[m] * xp[m]);
            real gh = membrane_grad(gr[m], h, mode, th, alpha);
            part[m] += gh;
            o[m] = variant ? gh * (1 + tau * open[m]) : gh + tau * open[m] * next[m];
            next[m] = gh;
        }
        if (!variant) {
            real *swap = open;
            open = before;
            before = swap;
        }
        if ((T - t) % FLUSH_TERMS == 0 || t == 0)
            for (long m = 0; m < W; m++) {
                total += part[m];
                part[m] = 0;
            }
    }
    sums_out[0] -= total;
    free(buf);
    return 0;
}

/* ---- PSU: two leaky integrators with sigmoid feedback ---------------------------------------------
 * d[t] = a · (d[t−1] + x[t]), r[t] = a · (r[t−1] − θ · σ(d[t−1])) (r[0] = 0), V = d + r, a = 1/τ;
 * out = epilogue(V). The state between steps is d and q = r − θ · σ(d), zero at t = 0. */

/* One PSU step over n columns: d, q updated in place; V into v; σ(d) into s. */
static inline void psu_step(real *restrict d, real *restrict q, real *restrict s, real *restrict v, const real *restrict xr, long n, real a, real theta) {
    for (long m = 0; m < n; m++) {
        d[m] = a * (d[m] + xr[m]);
        s[m] = d[m];
    }
    sigmoids(s, n);
    for (long m = 0; m < n; m++) {
        real r = a * q[m];
        v[m] = d[m] + r;
        q[m] = r - theta * s[m];
    }
}

#define PSU_COLUMNS 512 /* columns of a tile of the backward pass (its buffers stay in L2) */

/* PSU forward; the states (d, q) before every step t that is a multiple of K go into checkpoints
 * ck [ceil(T/K), 2, M] (ck NULL: none). Returns 0 or −1. */
int NAME(psu_forward)(const real *x, real *out, long T, long M, long m0, long m1, real *ck, long K, real a, real theta, int mode, real th) {
    long W = m1 - m0;
    real *buf = calloc((size_t)(4 * W), sizeof(real));
    if (!buf)
        return -1;
    real *d = buf, *q = buf + W, *s = buf + 2 * W, *v = buf + 3 * W;
    for (long t = 0; t < T; t++) {
        if (ck && t % K == 0) {
            memcpy(ck + (t / K) * 2 * M + m0, d, (size_t)W * sizeof(real));
            memcpy(ck + (t / K) * 2 * M + M + m0, q, (size_t)W * sizeof(real));
        }
        psu_step(d, q, s, v, x + t * M + m0, W, a, theta);
        real *restrict o = out + t * M + m0;
        for (long m = 0; m < W; m++)
            o[m] = epilogue(v[m], mode, th);
    }
    free(buf);
    return 0;
}

/* Backward of psu_forward by the adjoint recurrence, in tiles of K steps × PSU_COLUMNS columns from
 * the last step to the first: each tile reruns its steps from its checkpoint, keeping σ(d) and
 * gV = g (mode 0) or membrane_grad(g, V); then backwards, with Λd, Λr the adjoints of d[t+1], r[t+1]:
 * Λd ← gV + a · Λd − θ · σ'(d) · a · Λr, Λr ← gV + a · Λr, gx[t] = a · Λd. Returns 0 or −1. */
int NAME(psu_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const real *ck, long K, real a, real theta, int mode, real th, real alpha) {
    long W = m1 - m0, C = W < PSU_COLUMNS ? W : PSU_COLUMNS;
    real *buf = malloc((size_t)((2 * K + 3) * C + 2 * W) * sizeof(real));
    if (!buf)
        return -1;
    real *sig = buf, *gv = buf + K * C, *d = buf + 2 * K * C, *q = d + C, *v = q + C, *lam_d = v + C, *lam_r = lam_d + W;
    memset(lam_d, 0, (size_t)(2 * W) * sizeof(real));
    for (long t0 = (T - 1) / K * K; T > 0 && t0 >= 0; t0 -= K) {
        long t1 = t0 + K < T ? t0 + K : T;
        for (long c = 0; c < W; c += C) {
            long n = W - c < C ? W - c : C;
            memcpy(d, ck + (t0 / K) * 2 * M + m0 + c, (size_t)n * sizeof(real));
            memcpy(q, ck + (t0 / K) * 2 * M + M + m0 + c, (size_t)n * sizeof(real));
            for (long t = t0; t < t1; t++) {
                real *restrict s = sig + (t - t0) * C, *restrict gr = gv + (t - t0) * C;
                const real *restrict gt = g + t * M + m0 + c;
                psu_step(d, q, s, v, x + t * M + m0 + c, n, a, theta);
                for (long m = 0; m < n; m++)
                    gr[m] = membrane_grad(gt[m], v[m], mode, th, alpha);
            }
            real *restrict ld = lam_d + c, *restrict lr = lam_r + c;
            for (long t = t1 - 1; t >= t0; t--) {
                const real *restrict s = sig + (t - t0) * C, *restrict gr = gv + (t - t0) * C;
                real *restrict o = gx + t * M + m0 + c;
                for (long m = 0; m < n; m++) {
                    real l = gr[m] + a * ld[m] - theta * s[m] * (1 - s[m]) * a * lr[m];
                    lr[m] = gr[m] + a * lr[m];
                    ld[m] = l;
                    o[m] = a * l;
                }
            }
        }
    }
    free(buf);
    return 0;
}
