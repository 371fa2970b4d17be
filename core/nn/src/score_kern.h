/* The scorer's forward pass, included by score.c once per instruction set with KSUF (a name
 * suffix) and KATTR (a function attribute: the target, or nothing) defined. Each layer computes
 * y[j] = act(b[j] + sum_i x[i] W[i][j]) with the sum taken for i = 0, 1, ... in order, one float
 * multiply and one float add per term (no fused multiply-add: score.c is built as ISO C, which
 * turns contraction off), so every variant gives the same bits; the loops over j are what the
 * compiler vectorises. */

#define KCAT2_(a, b) a##_##b
#define KCAT_(a, b) KCAT2_(a, b)
#define K(name) KCAT_(name, KSUF)

/* y[j] = act(z[j]) for j < n, the switch outside the loops so that they vectorise. */
KATTR static inline __attribute__((always_inline)) void
K(act_copy)(float *restrict y, const float *restrict z, int n, fedc_act act) {
    switch (act) {
    case FEDC_ACT_RELU:
        for (int j = 0; j < n; j++)
            y[j] = z[j] > 0.0f ? z[j] : 0.0f;
        break;
    case FEDC_ACT_LEAKY_RELU:
        for (int j = 0; j < n; j++)
            y[j] = z[j] > 0.0f ? z[j] : FEDC_LEAKY_SLOPE * z[j];
        break;
    case FEDC_ACT_LINEAR:
        for (int j = 0; j < n; j++)
            y[j] = z[j];
        break;
    default:
        for (int j = 0; j < n; j++)
            y[j] = fedc__act(act, z[j]);
        break;
    }
}

/* b + x . w for a layer with one output: 16 partial sums (term i goes to sum i mod 16), then
 * added in a fixed tree, so that a long dot product is not one chain of dependent additions.
 * The row and the batch paths both use it, so they agree bit for bit. */
KATTR static inline float K(dot)(const float *restrict x, const float *restrict w, float b,
                                 int in) {
    float part[16] = {0};
    int i = 0;
    for (; i + 16 <= in; i += 16)
        for (int l = 0; l < 16; l++)
            part[l] += x[i + l] * w[i + l];
    for (int l = 0; i < in; i++, l++)
        part[l] += x[i] * w[i];
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            part[l] += part[l + h];
    return b + part[0];
}

/* Columns [0, n) of the single-row layer, n <= 64, whose sums stay in acc (registers, when n is
 * a constant the compiler sees after inlining). ldw is the row length of w. */
KATTR static inline __attribute__((always_inline)) void
K(row_block)(float *restrict y, const float *restrict x, const float *restrict w,
             const float *restrict b, int in, int ldw, int n, fedc_act act) {
    float acc[64];
    for (int j = 0; j < n; j++)
        acc[j] = b[j];
    for (int i = 0; i < in; i++) {
        const float xi = x[i];
        const float *restrict wi = w + (size_t)i * ldw;
        for (int j = 0; j < n; j++)
            acc[j] += xi * wi[j];
    }
    K(act_copy)(y, acc, n, act);
}

/* y(out) = act(x(in) W(in, out) + b): the single-row layer, in blocks of 64, 32 or 16 columns
 * (constant sizes) and a last block of what is left. */
KATTR static void K(row_dense)(float *restrict y, const float *restrict x, const float *restrict w,
                               const float *restrict b, int in, int out, fedc_act act) {
    if (out == 1) {
        y[0] = fedc__act(act, K(dot)(x, w, b[0], in));
        return;
    }
    int j0 = 0;
    for (; j0 + 64 <= out; j0 += 64)
        K(row_block)(y + j0, x, w + j0, b + j0, in, out, 64, act);
    if (j0 + 32 <= out) {
        K(row_block)(y + j0, x, w + j0, b + j0, in, out, 32, act);
        j0 += 32;
    }
    if (j0 + 16 <= out) {
        K(row_block)(y + j0, x, w + j0, b + j0, in, out, 16, act);
        j0 += 16;
    }
    if (j0 < out)
        K(row_block)(y + j0, x, w + j0, b + j0, in, out, out - j0, act);
}

/* The same layer over rows rows: y(rows, out) from x(rows, in), in blocks of SCORE_RB rows by
 * SCORE_JB columns whose sums stay in a local block while the inputs are swept once. */
KATTR static void K(tile_dense)(float *restrict y, const float *restrict x, const float *restrict w,
                                const float *restrict b, int rows, int in, int out, fedc_act act) {
    if (out == 1) {
        for (int r = 0; r < rows; r++)
            y[r] = fedc__act(act, K(dot)(x + (size_t)r * in, w, b[0], in));
        return;
    }
    float acc[SCORE_RB][SCORE_JB];
    for (int r0 = 0; r0 < rows; r0 += SCORE_RB) {
        const int rb = rows - r0 < SCORE_RB ? rows - r0 : SCORE_RB;
        const float *restrict xr = x + (size_t)r0 * in;
        for (int j0 = 0; j0 < out; j0 += SCORE_JB) {
            const int jb = out - j0 < SCORE_JB ? out - j0 : SCORE_JB;
            const float *restrict wj = w + j0;
            if (rb == SCORE_RB && jb == SCORE_JB) {
                /* The common case, with constant trip counts for the vectoriser. */
                for (int r = 0; r < SCORE_RB; r++)
                    for (int j = 0; j < SCORE_JB; j++)
                        acc[r][j] = b[j0 + j];
                for (int i = 0; i < in; i++) {
                    const float *restrict wi = wj + (size_t)i * out;
                    for (int r = 0; r < SCORE_RB; r++) {
                        const float xi = xr[(size_t)r * in + i];
                        for (int j = 0; j < SCORE_JB; j++)
                            acc[r][j] += xi * wi[j];
                    }
                }
            } else {
                for (int r = 0; r < rb; r++)
                    for (int j = 0; j < jb; j++)
                        acc[r][j] = b[j0 + j];
                for (int i = 0; i < in; i++) {
                    const float *restrict wi = wj + (size_t)i * out;
                    for (int r = 0; r < rb; r++) {
                        const float xi = xr[(size_t)r * in + i];
                        for (int j = 0; j < jb; j++)
                            acc[r][j] += xi * wi[j];
                    }
                }
            }
            for (int r = 0; r < rb; r++)
                K(act_copy)(y + (size_t)(r0 + r) * out + j0, acc[r], jb, act);
        }
    }
}

/* One row through the whole network: standardise into the workspace, then layer by layer
 * between its two buffers; the last layer writes out. */
KATTR static void K(score_one)(float *restrict out, const fedc_scorer *s, const float *restrict x,
                               float *restrict work) {
    const int nf = s->n_in, L = s->n_layers;
    float *restrict a = work, *restrict t = work + s->buf_floats;
    for (int j = 0; j < nf; j++)
        a[j] = (x[j] - s->mean[j]) / s->std[j];
    for (int l = 0; l < L; l++) {
        float *y = l + 1 < L ? t : out;
        K(row_dense)(y, a, s->w[l], s->b[l], s->sizes[l], s->sizes[l + 1], s->act[l]);
        float *swap = a;
        a = t;
        t = swap;
    }
    if (s->softmax)
        softmax_rows(out, 1, s->n_out);
}

/* rows (<= FEDC_SCORE_TILE) rows through the whole network. */
KATTR static void K(score_tile)(float *restrict out, const fedc_scorer *s, const float *restrict x,
                                int rows, float *restrict work) {
    const int nf = s->n_in, L = s->n_layers;
    float *restrict a = work, *restrict t = work + s->buf_floats;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nf; j++)
            a[(size_t)r * nf + j] = (x[(size_t)r * nf + j] - s->mean[j]) / s->std[j];
    for (int l = 0; l < L; l++) {
        float *y = l + 1 < L ? t : out;
        K(tile_dense)(y, a, s->w[l], s->b[l], rows, s->sizes[l], s->sizes[l + 1], s->act[l]);
        float *swap = a;
        a = t;
        t = swap;
    }
    if (s->softmax)
        softmax_rows(out, rows, s->n_out);
}

#undef K
#undef KCAT_
#undef KCAT2_
