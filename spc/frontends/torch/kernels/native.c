/* spc's fused neuron kernels for the CPU: filter + firing rule + surrogate gradient in one pass
 * over time, vectorised over the columns (batch × neurons). See native.py, which builds this file
 * with gcc on first use and falls back to the portable torch kernels when it cannot.
 *
 * Arrays are time-major, row-major [T, M]. Every function handles the columns [m0, m1) only, so
 * that threads can split the columns between them. Compiled twice: REAL = float (suffix f32) and
 * REAL = double (suffix f64).
 *
 * Epilogue `mode`: 0 writes the membrane h, 1 the spikes h >= th, 2 the spikes h > th (strict).
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

/* One 512-bit register of reals (split by the compiler where the CPU has narrower ones); the FIR
 * keeps a block of R registers of columns in registers across its k taps. */
typedef real vec __attribute__((vector_size(64)));
#define LANES ((long)(sizeof(vec) / sizeof(real)))
#define R 4
#define BLOCK (R * LANES)

static inline vec load(const real *p) {
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
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

/* FIR: h[t] = bias + Σ_j w[j] · x[t − (k−1) + j] (zeros before t = 0); out = epilogue(h). */
void NAME(fir_forward)(const real *x, real *out, long T, long M, long m0, long m1, const real *w, long k, real bias, int mode, real th) {
    real acc[BLOCK];
    for (long t = 0; t < T; t++) {
        long j0 = k - 1 - t > 0 ? k - 1 - t : 0;
        for (long b0 = m0; b0 < m1; b0 += BLOCK) {
            long n = m1 - b0 < BLOCK ? m1 - b0 : BLOCK;
            dot_rows(acc, x + (t - (k - 1) + j0) * M + b0, M, w + j0, k - j0, bias, n);
            real *restrict o = out + t * M + b0;
            for (long m = 0; m < n; m++)
                o[m] = epilogue(acc[m], mode, th);
        }
    }
}

/* part[j] += gh · rows[j] for j < count, rows[j] = base + j·stride, and part[count] += gh · 1, over
 * n columns: a full block into the vector accumulators vpart (reading rows the caller has just
 * brought into L1), a shorter tail into the scalars. */
static inline void accumulate_dots(vec *restrict vpart, double *restrict part, const real *restrict gh, const real *restrict base, long stride, long count, long n) {
    if (n == BLOCK) {
        vec g[R], total = {0};
        for (int r = 0; r < R; r++) {
            g[r] = load(gh + r * LANES);
            total += g[r];
        }
        for (long j = 0; j < count; j++)
            for (int r = 0; r < R; r++)
                vpart[j] += g[r] * load(base + j * stride + r * LANES);
        vpart[count] += total;
        return;
    }
    for (long m = 0; m < n; m++) {
        for (long j = 0; j < count; j++)
            part[j] += gh[m] * base[j * stride + m];
        part[count] += gh[m];
    }
}

/* Backward of fir_forward, from the last step to the first: gh = membrane_grad(g, h),
 * gx[t] = Σ_j w[j] · gh[t + k−1 − j], and into sums[0:k+1] (zeroed by the caller) the taps'
 * gradients Σ gh[t] · x[t − (k−1) + j] and the bias's Σ gh. The last k rows of gh of the columns
 * live in a ring buffer of 2k slots: row r at slot (T − 1 − r) mod k and at that slot plus k, so
 * that the rows t+S, ..., t that gx[t] reads are always k consecutive slots; rows after T − 1
 * read zeros. Slots are a cache line longer than the columns, so that the k rows a block reads do
 * not fall into one L1 set. Returns 0, or −1 when out of memory. */
int NAME(fir_backward)(const real *x, const real *g, real *gx, long T, long M, long m0, long m1, const real *w, long k, real bias, int mode, real th, real alpha, double *sums) {
    long W = m1 - m0, S = k - 1, stride = W + 64 / (long)sizeof(real);
    real *ring = calloc((size_t)(2 * k * stride), sizeof(real));
    double *part = malloc((size_t)(k + 1) * sizeof(double));
    vec *vpart = aligned_alloc(sizeof(vec), (size_t)(k + 1) * sizeof(vec));
    if (!ring || !part || !vpart) {
        free(ring);
        free(part);
        free(vpart);
        return -1;
    }
    real acc[BLOCK];
    for (long t = T - 1; t >= 0; t--) {
        long j0 = S - t > 0 ? S - t : 0, slot = (T - 1 - t) % k;
        real *restrict gh = ring + slot * stride, *restrict twin = ring + (slot + k) * stride;
        const real *window = ring + (slot + k - S) * stride; /* rows t+S, ..., t */
        const real *xrows = x + (t - S + j0) * M;
        memset(part, 0, (size_t)(k + 1) * sizeof(double));
        memset(vpart, 0, (size_t)(k + 1) * sizeof(vec));
        for (long b0 = m0; b0 < m1; b0 += BLOCK) {
            long n = m1 - b0 < BLOCK ? m1 - b0 : BLOCK, c = b0 - m0;
            const real *restrict gr = g + t * M + b0;
            if (mode != 0)
                dot_rows(acc, xrows + b0, M, w + j0, k - j0, bias, n);
            for (long m = 0; m < n; m++)
                gh[c + m] = twin[c + m] = mode == 0 ? gr[m] : membrane_grad(gr[m], acc[m], mode, th, alpha);
            dot_rows(gx + t * M + b0, window + c, stride, w, k, 0, n);
            accumulate_dots(vpart + j0, part + j0, gh + c, xrows + b0, M, k - j0, n);
        }
        for (long j = j0; j <= k; j++)
            for (long l = 0; l < LANES; l++)
                part[j] += vpart[j][l];
        for (long j = j0; j <= k; j++)
            sums[j] += part[j];
    }
    free(ring);
    free(part);
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
