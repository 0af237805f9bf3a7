/* Exact integer products on 16-bit operand pairs (specs/arithmetic.md §7.5).
 *
 * out(m, q) = bias[m] + sum_k A[m, k] * B[k, q]   computed modulo 2^32 (int32 wrap-around),
 * written sign-extended to int64. A is the weight operand (int16 values, packed by the
 * caller in pairs of consecutive k, tiles of MR rows); B is read from the caller's array
 * (a convolution's input patches or a matrix) and packed here, block by block, into pairs
 * of consecutive k for tiles of NR columns, so no im2col matrix is ever built.
 *
 * Every step is exact modulo 2^32: a pair product a0*b0 + a1*b1 of int16 values (the AVX2
 * instruction vpmaddwd, or the portable C below) wraps only in the one case
 * (-2^15)*(-2^15)*2 = 2^31, which it returns as -2^31, equal modulo 2^32; int32 additions
 * wrap modulo 2^32. Hence an output whose true value lies in [-2^31, 2^31) is exact (§7.5).
 * Products of 8-bit activations by weights in [-64, 64] may instead run on byte quads
 * (u8 x s8, vpmaddubsw; see tile_u8_rows), with the same result.
 *
 * The functions are plain C called through ctypes (which releases the GIL): the caller
 * splits the columns q among threads. The module also defines an empty Python extension
 * module so that setuptools builds and installs it like any other.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HW_X86 1
#else
#define HW_X86 0
#endif

#define MR 6  /* rows of A per tile (broadcast operand) */
#define NR 16 /* columns of B per tile (two vectors of 8 int32 pairs) */

/* Element types of the B source array. */
/* (float64 sources hold integer values, e.g. centred codes q - z of a float reference) */
enum { T_I8 = 0, T_U8 = 1, T_I16 = 2, T_U16 = 3, T_I32 = 4, T_I64 = 5, T_F64 = 6 };

/* Geometry of the B operand: either convolution patches of an NCHW input (k = (kh, kw, c)
 * row-major, channels padded to an even count; q = (n, oh, ow) row-major) or a strided matrix
 * (element (k, q) at src[k*sk + q*sq]). Values are read as (v - offset); padding positions
 * of a convolution hold pad_value. */
typedef struct {
    const void *src;
    int64_t type;
    int64_t is_conv;
    /* matrix */
    int64_t sk, sq;
    /* convolution */
    int64_t C, H, W, sn, sc; /* channels, height, width, image stride, channel stride */
    int64_t KH, KW, SH, SW, PT, PL, DH, DW, OH, OW;
    int64_t offset, pad_value;
    int64_t K; /* reduction length (unpadded) */
    int64_t quad; /* convolution on byte quads: x - offset in [0, 255], weights in [-64, 64] */
} bsrc_t;

/* Write n pairs dst[i] = (s0[i*step] - off, s1[i*step] - off) as int16 halves. */
#define COPY_PAIRS(T)                                                                    \
    static void pairs_##T(uint32_t *dst, const T *s0, const T *s1, int64_t step, int64_t n, \
                          int64_t off) {                                                 \
        if (step == 1) {                                                                 \
            for (int64_t i = 0; i < n; i++)                                              \
                dst[i] = (uint32_t)(uint16_t)(int16_t)((int64_t)s0[i] - off) |          \
                         (uint32_t)(uint16_t)(int16_t)((int64_t)s1[i] - off) << 16;      \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                dst[i] = (uint32_t)(uint16_t)(int16_t)((int64_t)s0[i * step] - off) |   \
                         (uint32_t)(uint16_t)(int16_t)((int64_t)s1[i * step] - off) << 16; \
        }                                                                                \
    }
COPY_PAIRS(int8_t)
COPY_PAIRS(uint8_t)
COPY_PAIRS(int16_t)
COPY_PAIRS(uint16_t)
COPY_PAIRS(int32_t)
COPY_PAIRS(int64_t)
COPY_PAIRS(double)

static int use_avx2(void);

#if HW_X86
/* pairs_int64_t with step 1, four pairs per step (int64 codes, the golden model's). */
__attribute__((target("avx2"))) static void pairs_i64_avx2(uint32_t *dst, const int64_t *s0,
                                                           const int64_t *s1, int64_t n,
                                                           int64_t off) {
    const __m256i vo = _mm256_set1_epi64x(off), lo16 = _mm256_set1_epi64x(0xffff);
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i a = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(s0 + i)), vo);
        __m256i b = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(s1 + i)), vo);
        /* each 64-bit lane: low half of a | low half of b << 16, in its low 32 bits */
        __m256i p = _mm256_or_si256(_mm256_and_si256(a, lo16), _mm256_slli_epi64(b, 16));
        __m256i q = _mm256_permutevar8x32_epi32(p, even);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_castsi256_si128(q));
    }
    for (; i < n; i++)
        dst[i] = (uint32_t)(uint16_t)(int16_t)(s0[i] - off) |
                 (uint32_t)(uint16_t)(int16_t)(s1[i] - off) << 16;
}
#endif

/* Pairs from elements i0 + i*step and i1 + i*step of src (type t). */
static void copy_pairs(uint32_t *dst, const void *src, int t, int64_t i0, int64_t i1,
                       int64_t step, int64_t n, int64_t off) {
    switch (t) {
    case T_I8: pairs_int8_t(dst, (const int8_t *)src + i0, (const int8_t *)src + i1, step, n, off); break;
    case T_U8: pairs_uint8_t(dst, (const uint8_t *)src + i0, (const uint8_t *)src + i1, step, n, off); break;
    case T_I16: pairs_int16_t(dst, (const int16_t *)src + i0, (const int16_t *)src + i1, step, n, off); break;
    case T_U16: pairs_uint16_t(dst, (const uint16_t *)src + i0, (const uint16_t *)src + i1, step, n, off); break;
    case T_I32: pairs_int32_t(dst, (const int32_t *)src + i0, (const int32_t *)src + i1, step, n, off); break;
    case T_I64:
#if HW_X86
        if (step == 1 && n >= 4 && use_avx2()) {
            pairs_i64_avx2(dst, (const int64_t *)src + i0, (const int64_t *)src + i1, n, off);
            break;
        }
#endif
        pairs_int64_t(dst, (const int64_t *)src + i0, (const int64_t *)src + i1, step, n, off);
        break;
    default: pairs_double(dst, (const double *)src + i0, (const double *)src + i1, step, n, off); break;
    }
}

/* dst[k2 * ld] = (src[i0 + 2 k2] - off, src[i0 + 2 k2 + 1] - off) for the K values from
 * i0 (the last pair's high half 0 when K is odd). */
#define ROW_PAIRS(T)                                                                       \
    static void rowpairs_##T(uint32_t *dst, int64_t ld, const T *s, int64_t K, int64_t off) { \
        int64_t k2 = 0;                                                                    \
        for (; 2 * k2 + 1 < K; k2++)                                                       \
            dst[k2 * ld] = (uint32_t)(uint16_t)(int16_t)((int64_t)s[2 * k2] - off) |      \
                           (uint32_t)(uint16_t)(int16_t)((int64_t)s[2 * k2 + 1] - off) << 16; \
        if (K & 1) dst[k2 * ld] = (uint32_t)(uint16_t)(int16_t)((int64_t)s[2 * k2] - off); \
    }
ROW_PAIRS(int8_t)
ROW_PAIRS(uint8_t)
ROW_PAIRS(int16_t)
ROW_PAIRS(uint16_t)
ROW_PAIRS(int32_t)
ROW_PAIRS(int64_t)
ROW_PAIRS(double)

static void copy_pairs_strided(uint32_t *dst, int64_t ld, const void *src, int t, int64_t i0,
                               int64_t K, int64_t off) {
    switch (t) {
    case T_I8: rowpairs_int8_t(dst, ld, (const int8_t *)src + i0, K, off); break;
    case T_U8: rowpairs_uint8_t(dst, ld, (const uint8_t *)src + i0, K, off); break;
    case T_I16: rowpairs_int16_t(dst, ld, (const int16_t *)src + i0, K, off); break;
    case T_U16: rowpairs_uint16_t(dst, ld, (const uint16_t *)src + i0, K, off); break;
    case T_I32: rowpairs_int32_t(dst, ld, (const int32_t *)src + i0, K, off); break;
    case T_I64: rowpairs_int64_t(dst, ld, (const int64_t *)src + i0, K, off); break;
    default: rowpairs_double(dst, ld, (const double *)src + i0, K, off); break;
    }
}

/* Element idx of src (type t), as an int64. */
static inline int64_t elem(const void *src, int t, int64_t idx) {
    switch (t) {
    case T_I8: return ((const int8_t *)src)[idx];
    case T_U8: return ((const uint8_t *)src)[idx];
    case T_I16: return ((const int16_t *)src)[idx];
    case T_U16: return ((const uint16_t *)src)[idx];
    case T_I32: return ((const int32_t *)src)[idx];
    case T_I64: return ((const int64_t *)src)[idx];
    default: return (int64_t)((const double *)src)[idx];
    }
}

/* dst[j] = the bytes (src[ix[i] + j] - off), i < 4, for j < n: the caller guarantees every
 * value lies in [0, 255]. */
static void copy_quads(uint32_t *dst, const void *src, int t, const int64_t ix[4], int64_t n,
                       int64_t off) {
    if (t == T_U8 || t == T_I8) {
        const uint8_t *s = (const uint8_t *)src;
        for (int64_t j = 0; j < n; j++) {
            uint32_t v = 0;
            for (int i = 0; i < 4; i++) {
                int64_t x = t == T_I8 ? (int64_t)(int8_t)s[ix[i] + j] : (int64_t)s[ix[i] + j];
                v |= (uint32_t)(uint8_t)(x - off) << (8 * i);
            }
            dst[j] = v;
        }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) v |= (uint32_t)(uint8_t)(elem(src, t, ix[i] + j) - off) << (8 * i);
        dst[j] = v;
    }
}

static inline void fill_pairs(uint32_t *dst, int64_t n, uint32_t v) {
    for (int64_t i = 0; i < n; i++) dst[i] = v;
}

/* A convolution's input as int16 pairs of consecutive channels (x - offset), padded and
 * split by stride phase once, so that packing a block only copies contiguous runs of pairs.
 * Padded position (r, s) (input row r - PT, column s - PL; r < Hp, s < Wp: the positions
 * the outputs reach) of channel pair c2 of image n sits in phase (r % SH, s % SW) at
 * (r / SH, s / SW): pl->xp[(((n * C2 + c2) * SH + r % SH) * SW + s % SW) * Hq * Wq
 * + (r / SH) * Wq + s / SW]. Output (oh, ow) at kernel tap (kh, kw) reads padded
 * (oh*SH + kh*DH, ow*SW + kw*DW): consecutive ow are consecutive pairs. Positions outside
 * the input hold the padding pair; the odd last channel of an odd C is paired with itself
 * (its weights are 0). */
typedef struct {
    uint32_t *xp;
    int64_t C2, Hp, Wp, Hq, Wq, plane; /* plane: words per (n, c2), all phases */
} planes_t;

static void plane_geometry(const bsrc_t *b, planes_t *pl) {
    pl->xp = NULL;
    pl->C2 = b->quad ? (b->C + 3) / 4 : (b->C + 1) / 2; /* words per position */
    pl->Hp = (b->OH - 1) * b->SH + (b->KH - 1) * b->DH + 1;
    pl->Wp = (b->OW - 1) * b->SW + (b->KW - 1) * b->DW + 1;
    pl->Hq = (pl->Hp + b->SH - 1) / b->SH;
    pl->Wq = (pl->Wp + b->SW - 1) / b->SW;
    pl->plane = b->SH * b->SW * pl->Hq * pl->Wq;
}

/* Whether a kernel tap reaches phase ph: (k * D) % S == ph for some k < KN. */
static int reached(int64_t ph, int64_t KN, int64_t D, int64_t S) {
    for (int64_t k = 0; k < KN; k++)
        if ((k * D) % S == ph) return 1;
    return 0;
}

/* Fill planes pi in [p0, p1) (pi = n * C2 + c2); row: scratch for Wp pairs. */
static void fill_planes(const bsrc_t *b, const planes_t *pl, int64_t p0, int64_t p1,
                        uint32_t *row) {
    int t = (int)b->type;
    int64_t off = b->offset, padv = b->pad_value - b->offset;
    uint32_t padpair = b->quad ? 0x01010101u * (uint32_t)(uint8_t)padv
                               : (uint32_t)(uint16_t)(int16_t)padv | (uint32_t)(uint16_t)(int16_t)padv << 16;
    int64_t Wp = pl->Wp, Hq = pl->Hq, Wq = pl->Wq, SH = b->SH, SW = b->SW;
    /* columns s with 0 <= s - PL < W */
    int64_t s_lo = b->PL < 0 ? 0 : (b->PL < Wp ? b->PL : Wp);
    int64_t s_hi = b->PL + b->W < Wp ? b->PL + b->W : Wp;
    if (s_hi < s_lo) s_hi = s_lo;
    for (int64_t pi = p0; pi < p1; pi++) {
        int64_t n = pi / pl->C2, c2 = pi % pl->C2, cw = b->quad ? 4 : 2;
        uint32_t *planes = pl->xp + pi * pl->plane;
        for (int64_t r = 0; r < pl->Hp; r++) {
            if (!reached(r % SH, b->KH, b->DH, SH)) continue;
            uint32_t *rowbase = planes + (r % SH) * SW * Hq * Wq + (r / SH) * Wq;
            uint32_t *dst = SW == 1 ? rowbase : row;
            int64_t ih = r - b->PT;
            if (ih < 0 || ih >= b->H || s_hi == s_lo) {
                fill_pairs(dst, Wp, padpair);
            } else {
                fill_pairs(dst, s_lo, padpair);
                int64_t base = n * b->sn + ih * b->W + (s_lo - b->PL);
                int64_t ix[4]; /* channels past C repeat the first one (their weights are 0) */
                for (int64_t i = 0; i < cw; i++)
                    ix[i] = base + (cw * c2 + i < b->C ? cw * c2 + i : cw * c2) * b->sc;
                if (b->quad)
                    copy_quads(dst + s_lo, b->src, t, ix, s_hi - s_lo, off);
                else
                    copy_pairs(dst + s_lo, b->src, t, ix[0], ix[1], 1, s_hi - s_lo, off);
                fill_pairs(dst + s_hi, Wp - s_hi, padpair);
            }
            if (SW > 1)
                for (int64_t pw = 0; pw < SW && pw < Wp; pw++) {
                    if (!reached(pw, b->KW, b->DW, SW)) continue;
                    uint32_t *d = rowbase + pw * Hq * Wq;
                    for (int64_t s = pw, i = 0; s < Wp; s += SW, i++) d[i] = row[s];
                }
        }
    }
}

/* Fill blk[k2][ld] (ld = the block's columns rounded up to NR) with pairs of B for columns
 * [q0, q0 + nq); columns past nq are zero. A matrix pairs consecutive k; a convolution's
 * reduction runs over (kh, kw, c) with pairs of consecutive channels (the channels padded
 * to an even count with the padding value: its weights are 0). seg: scratch for 4*nq
 * int64. */
static void pack_block(const bsrc_t *b, const planes_t *pl, int64_t q0, int64_t nq,
                       int64_t K2, int64_t ld, uint32_t *blk, int64_t *seg) {
    const void *src = b->src;
    int t = (int)b->type;
    int64_t off = b->offset;
    for (int64_t k2 = 0; k2 < K2; k2++)
        for (int64_t j = nq; j < ld; j++) blk[k2 * ld + j] = 0;
    if (!b->is_conv && b->sk == 1) {
        /* rows of consecutive k (a[q, k] row-major): read each row once, scatter its pairs */
        for (int64_t j = 0; j < nq; j++) {
            int64_t i0 = (q0 + j) * b->sq;
            copy_pairs_strided(blk + j, ld, src, t, i0, b->K, off);
        }
        return;
    }
    if (!b->is_conv) {
        for (int64_t k2 = 0; k2 < b->K / 2; k2++)
            copy_pairs(blk + k2 * ld, src, t, 2 * k2 * b->sk + q0 * b->sq,
                       (2 * k2 + 1) * b->sk + q0 * b->sq, b->sq, nq, off);
        if (b->K & 1) {
            /* the last k alone: pair it with itself, then clear the high half */
            int64_t k2 = b->K / 2;
            uint32_t *d = blk + k2 * ld;
            copy_pairs(d, src, t, 2 * k2 * b->sk + q0 * b->sq, 2 * k2 * b->sk + q0 * b->sq,
                       b->sq, nq, off);
            for (int64_t j = 0; j < nq; j++) d[j] &= 0xffffu;
        }
        return;
    }
    /* Runs of columns within one output row: (first column j, plane offset of the run's
     * first position at kh = kw = 0 and c2 = 0, length). */
    int64_t P = b->OH * b->OW, nseg = 0, C2 = pl->C2, Hq = pl->Hq, Wq = pl->Wq;
    int64_t plane = pl->plane;
    for (int64_t j = 0; j < nq;) {
        int64_t q = q0 + j, n = q / P, p = q % P, oh = p / b->OW, ow = p % b->OW;
        int64_t len = b->OW - ow < nq - j ? b->OW - ow : nq - j;
        seg[3 * nseg] = j;
        seg[3 * nseg + 1] = n * C2 * plane + oh * pl->Wq + ow;
        seg[3 * nseg + 2] = len;
        nseg++;
        j += len;
    }
    for (int64_t kh = 0; kh < b->KH; kh++) {
        for (int64_t kw = 0; kw < b->KW; kw++) {
            int64_t r = kh * b->DH, c = kw * b->DW;
            int64_t koff = ((r % b->SH) * b->SW + c % b->SW) * Hq * Wq + (r / b->SH) * Wq +
                           c / b->SW;
            for (int64_t c2 = 0; c2 < C2; c2++) {
                uint32_t *dst = blk + ((kh * b->KW + kw) * C2 + c2) * ld;
                const uint32_t *sp = pl->xp + c2 * plane + koff;
                for (int64_t s = 0; s < nseg; s++) {
                    const uint32_t *from = sp + seg[3 * s + 1];
                    uint32_t *d = dst + seg[3 * s];
                    int64_t len = seg[3 * s + 2];
                    memcpy(d, from, (size_t)len * sizeof(uint32_t));
                }
            }
        }
    }
}

#if HW_X86
/* dst[0..16) = src[0..16) sign-extended to int64. */
__attribute__((target("avx2"))) static void store16_i64(int64_t *dst, const int32_t *src) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)src);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(src + 8));
    _mm256_storeu_si256((__m256i *)dst, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lo)));
    _mm256_storeu_si256((__m256i *)(dst + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lo, 1)));
    _mm256_storeu_si256((__m256i *)(dst + 8), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(hi)));
    _mm256_storeu_si256((__m256i *)(dst + 12), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(hi, 1)));
}
#endif

#if HW_X86
/* dst[0..16) = src[0..16) as float64. */
__attribute__((target("avx2"))) static void store16_f64(double *dst, const int32_t *src) {
    for (int h = 0; h < 4; h++)
        _mm256_storeu_pd(dst + 4 * h, _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)(src + 4 * h))));
}
#endif

/* Output element types (the out_type argument of the entry points). */
enum { OUT_I64 = 0, OUT_F64 = 1, OUT_I32 = 2 };

/* out[i] = v as the output type (float64 exact: |v| < 2^31). */
static inline void put(void *out, int64_t i, int32_t v, int type) {
    if (type == OUT_F64)
        ((double *)out)[i] = (double)v;
    else if (type == OUT_I32)
        ((int32_t *)out)[i] = v;
    else
        ((int64_t *)out)[i] = (int64_t)v;
}

#if HW_X86
/* out[o .. o + 16) = v[0 .. 16) as the output type. */
__attribute__((target("avx2"))) static void store16(void *out, int64_t o, const int32_t *v,
                                                    int type) {
    if (type == OUT_F64) {
        store16_f64((double *)out + o, v);
    } else if (type == OUT_I32) {
        _mm256_storeu_si256((__m256i *)((int32_t *)out + o), _mm256_loadu_si256((const __m256i *)v));
        _mm256_storeu_si256((__m256i *)((int32_t *)out + o + 8),
                            _mm256_loadu_si256((const __m256i *)(v + 8)));
    } else {
        store16_i64((int64_t *)out + o, v);
    }
}
#endif

/* Store one MR x NR tile acc[r][c] (rows m0.., columns q0..) into the output, of type
 * out_type (OUT_I64, OUT_F64 or OUT_I32). */
static inline void store_tile(const int32_t acc[MR][NR], int64_t m0, int64_t M, int64_t q0,
                              int64_t nq, int64_t P, int64_t s_n, int64_t s_m, int64_t s_p,
                              void *out, int out_type, int simd) {
    int64_t rows = M - m0 < MR ? M - m0 : MR;
    int64_t cols = nq < NR ? nq : NR;
    int64_t n = q0 / P, p = q0 % P; /* one division per tile, then counted */
#if HW_X86
    if (simd && s_p == 1 && cols == NR && p + NR <= P) {
        /* a full tile within one image, positions contiguous: rows of 16 values */
        int64_t o = n * s_n + p;
        for (int64_t r = 0; r < rows; r++) store16(out, o + (m0 + r) * s_m, acc[r], out_type);
        return;
    }
#else
    (void)simd;
#endif
    for (int64_t c = 0; c < cols; c++, p++) {
        if (p == P) {
            p = 0;
            n++;
        }
        int64_t base = n * s_n + p * s_p;
        for (int64_t r = 0; r < rows; r++) put(out, base + (m0 + r) * s_m, acc[r][c], out_type);
    }
}

/* Portable tile: acc = bias + sum over K2 words, modulo 2^32. A word holds two int16
 * values (quad = 0) or four bytes (quad = 1: unsigned activations times signed weights; in
 * a matrix product, bias per column, ap holds the activations, in a convolution bp). */
static void tile_c(const uint32_t *ap, const uint32_t *bp, int64_t K2, int64_t ld,
                   const int32_t *bias, int bias_cols, int quad, int32_t acc[MR][NR]) {
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) acc[r][c] = bias_cols ? bias[c] : bias[r];
    for (int64_t k2 = 0; k2 < K2; k2++) {
        for (int r = 0; r < MR; r++) {
            uint32_t a = ap[k2 * MR + r];
            for (int c = 0; c < NR; c++) {
                uint32_t bv = bp[k2 * ld + c], s = 0;
                if (quad) {
                    uint32_t u = bias_cols ? a : bv, w = bias_cols ? bv : a;
                    for (int i = 0; i < 4; i++)
                        s += (uint32_t)((int32_t)(uint8_t)(u >> (8 * i)) * (int32_t)(int8_t)(w >> (8 * i)));
                } else {
                    s = (uint32_t)((int16_t)(a & 0xffff) * (int16_t)(bv & 0xffff)) +
                        (uint32_t)((int16_t)(a >> 16) * (int16_t)(bv >> 16));
                }
                acc[r][c] = (int32_t)((uint32_t)acc[r][c] + s);
            }
        }
    }
}

#if HW_X86
__attribute__((target("avx2"))) static void tile_avx2(const uint32_t *ap, const uint32_t *bp,
                                                      int64_t K2, int64_t ld,
                                                      const int32_t *bias, int bias_cols,
                                                      int32_t acc[MR][NR]) {
    /* bias per row (bias[MR]) or per column (bias[NR]) */
    __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (bias_cols) {
        c00 = _mm256_loadu_si256((const __m256i *)bias);
        c01 = _mm256_loadu_si256((const __m256i *)(bias + 8));
        c10 = c20 = c30 = c40 = c50 = c00;
        c11 = c21 = c31 = c41 = c51 = c01;
    } else {
        c00 = c01 = _mm256_set1_epi32(bias[0]);
        c10 = c11 = _mm256_set1_epi32(bias[1]);
        c20 = c21 = _mm256_set1_epi32(bias[2]);
        c30 = c31 = _mm256_set1_epi32(bias[3]);
        c40 = c41 = _mm256_set1_epi32(bias[4]);
        c50 = c51 = _mm256_set1_epi32(bias[5]);
    }
    for (int64_t k2 = 0; k2 < K2; k2++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + k2 * ld));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + k2 * ld + 8));
        const int32_t *a = (const int32_t *)(ap + k2 * MR);
        __m256i a0 = _mm256_set1_epi32(a[0]);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(a0, b0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(a0, b1));
        __m256i a1 = _mm256_set1_epi32(a[1]);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(a1, b0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(a1, b1));
        __m256i a2 = _mm256_set1_epi32(a[2]);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(a2, b0));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(a2, b1));
        __m256i a3 = _mm256_set1_epi32(a[3]);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(a3, b0));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(a3, b1));
        __m256i a4 = _mm256_set1_epi32(a[4]);
        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(a4, b0));
        c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(a4, b1));
        __m256i a5 = _mm256_set1_epi32(a[5]);
        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(a5, b0));
        c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(a5, b1));
    }
    _mm256_storeu_si256((__m256i *)&acc[0][0], c00);
    _mm256_storeu_si256((__m256i *)&acc[0][8], c01);
    _mm256_storeu_si256((__m256i *)&acc[1][0], c10);
    _mm256_storeu_si256((__m256i *)&acc[1][8], c11);
    _mm256_storeu_si256((__m256i *)&acc[2][0], c20);
    _mm256_storeu_si256((__m256i *)&acc[2][8], c21);
    _mm256_storeu_si256((__m256i *)&acc[3][0], c30);
    _mm256_storeu_si256((__m256i *)&acc[3][8], c31);
    _mm256_storeu_si256((__m256i *)&acc[4][0], c40);
    _mm256_storeu_si256((__m256i *)&acc[4][8], c41);
    _mm256_storeu_si256((__m256i *)&acc[5][0], c50);
    _mm256_storeu_si256((__m256i *)&acc[5][8], c51);
}
#endif



/* ---- Byte quads (u8 x s8; §7.5 "Byte quads") ----
 * Words of four unsigned activation bytes in [0, 255] and of four signed weight bytes in
 * [-64, 64]. vpmaddubsw forms u0 w0 + u1 w1 per int16 lane, |.| <= 255 * 128 = 32640:
 * never saturated, exact; vpmaddwd with ones adds two lanes exactly into int32; int32
 * additions wrap modulo 2^32 (the portable tile_c forms the same sums in uint32). */
#if HW_X86
/* The first nr (<= MR) rows of a byte-quad tile; conv (both constants where inlined): the
 * broadcast words are weights and the vector ones activations, the bias per row; else the
 * roles are swapped and the bias is per column. */
__attribute__((target("avx2"), always_inline)) static inline void
tile_u8_rows(const uint32_t *ap, const uint32_t *bp, int64_t K4, int64_t ld,
             const int32_t *bias, int32_t acc[MR][NR], const int nr, const int conv) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c[MR][2]; /* fully unrolled below: the compiler keeps them in registers */
    for (int r = 0; r < nr; r++) {
        c[r][0] = conv ? _mm256_set1_epi32(bias[r]) : _mm256_loadu_si256((const __m256i *)bias);
        c[r][1] = conv ? c[r][0] : _mm256_loadu_si256((const __m256i *)(bias + 8));
    }
    for (int64_t k4 = 0; k4 < K4; k4++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + k4 * ld));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + k4 * ld + 8));
        const int32_t *a = (const int32_t *)(ap + k4 * MR);
        for (int r = 0; r < nr; r++) {
            __m256i x = _mm256_set1_epi32(a[r]);
            /* vpmaddubsw: first operand unsigned (activations), second signed (weights) */
            __m256i p0 = conv ? _mm256_maddubs_epi16(b0, x) : _mm256_maddubs_epi16(x, b0);
            __m256i p1 = conv ? _mm256_maddubs_epi16(b1, x) : _mm256_maddubs_epi16(x, b1);
            c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(p0, ones));
            c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(p1, ones));
        }
    }
    for (int r = 0; r < nr; r++) {
        _mm256_storeu_si256((__m256i *)&acc[r][0], c[r][0]);
        _mm256_storeu_si256((__m256i *)&acc[r][8], c[r][1]);
    }
}

/* A byte-quad tile: a convolution's (bias per row, bias_cols = 0), or a matrix product's
 * whose first `rows` rows are wanted: all MR, or only row 0 (one row of activations, e.g.
 * a classifier at batch 1: a sixth of the work). */
__attribute__((target("avx2"))) static void tile_u8_avx2(const uint32_t *ap, const uint32_t *bp,
                                                         int64_t K4, int64_t ld,
                                                         const int32_t *bias, int bias_cols,
                                                         int32_t acc[MR][NR], int64_t rows) {
    if (!bias_cols)
        tile_u8_rows(ap, bp, K4, ld, bias, acc, MR, 1);
    else if (rows == 1)
        tile_u8_rows(ap, bp, K4, ld, bias, acc, 1, 0);
    else
        tile_u8_rows(ap, bp, K4, ld, bias, acc, MR, 0);
}
#endif

/* One tile with the vector kernel (simd) or the portable one: int16 pairs (quad = 0) or
 * byte quads (quad = 1), the bias per column (a matrix product; only the first `rows` rows
 * wanted) or per row (a convolution). */
static inline void run_tile(int simd, int quad, const uint32_t *ap, const uint32_t *bp,
                            int64_t K2, int64_t ld, const int32_t *bias, int bias_cols,
                            int32_t acc[MR][NR], int64_t rows) {
#if HW_X86
    if (simd) {
        if (quad)
            tile_u8_avx2(ap, bp, K2, ld, bias, bias_cols, acc, rows);
        else
            tile_avx2(ap, bp, K2, ld, bias, bias_cols, acc);
        return;
    }
#else
    (void)simd;
#endif
    (void)rows;
    tile_c(ap, bp, K2, ld, bias, bias_cols, quad, acc);
}

static int portable_only = 0;

/* Make every later call use the portable kernel (on != 0) or the best one; returns the old
 * setting. For tests of the portable kernel on a machine with AVX2. */
int hw_igemm_portable(int on) {
    int old = portable_only;
    portable_only = on != 0;
    return old;
}

static int use_avx2(void) {
#if HW_X86
    static int cached = -1;
    if (portable_only) return 0;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached;
#else
    return 0;
#endif
}

/* 1 when the vector kernel runs on this CPU, 0 for the portable C kernel. */
int hw_igemm_simd(void) {
    int old = portable_only, r;
    portable_only = 0;
    r = use_avx2();
    portable_only = old;
    return r;
}

/* The product for columns [q0, q1) (see hw_igemm_parallel); pl: a convolution's planes. */
static int igemm_cols(const uint32_t *ap, int64_t M, int64_t K2, const int64_t *bias,
                      const bsrc_t *b, const planes_t *pl, int64_t q0, int64_t q1, int64_t P,
                      int64_t s_n, int64_t s_m, int64_t s_p, void *out, int64_t out_type) {
    if (q1 <= q0 || M <= 0) return 0;
    /* Columns per block: the packed block (K2 pairs x qb columns) stays near 256 KiB. */
    int64_t qb = (256 * 1024 / 4) / (K2 > 0 ? K2 : 1);
    qb = qb / NR * NR;
    if (qb < NR) qb = NR;
    if (qb > 4096) qb = 4096;
    uint32_t *blk = (uint32_t *)aligned_alloc(
        64, ((size_t)(qb * (K2 > 0 ? K2 : 1)) * sizeof(uint32_t) + 63) / 64 * 64);
    int64_t *seg = (int64_t *)malloc((size_t)(4 * qb) * sizeof(int64_t));
    if (!blk || !seg) {
        free(blk);
        free(seg);
        return -1;
    }
    int64_t mt = (M + MR - 1) / MR;
    int32_t tb[MR];
    int32_t acc[MR][NR];
    int simd = use_avx2();
    for (int64_t qs = q0; qs < q1; qs += qb) {
        int64_t nq = q1 - qs < qb ? q1 - qs : qb;
        int64_t ntile = (nq + NR - 1) / NR;
        int64_t ld = ntile * NR;
        pack_block(b, pl, qs, nq, K2, ld, blk, seg);
        /* Visit the tiles so that the output is written in its memory order: along the
         * columns q for a channel-major output, along the rows m for a position-major one
         * (each cache line of the output is then filled before it is evicted). For long
         * reductions (a tile's column strip no longer fits L1 either way), keep a column
         * strip and stream the weight panels past it (fewer bytes per step from L2). */
        int rows_major = (s_m == 1 && s_p != 1) || K2 >= 512;
        int64_t outer = rows_major ? ntile : mt, inner = rows_major ? mt : ntile;
        for (int64_t u = 0; u < outer; u++) {
            for (int64_t v = 0; v < inner; v++) {
                int64_t i = rows_major ? v : u, j = rows_major ? u : v;
                for (int r = 0; r < MR; r++)
                    tb[r] = i * MR + r < M ? (int32_t)bias[i * MR + r] : 0;
                const uint32_t *api = ap + i * K2 * MR;
                const uint32_t *bpj = blk + j * NR;
                run_tile(simd, (int)b->quad, api, bpj, K2, ld, tb, 0, acc, MR);
                int64_t left = nq - j * NR;
                store_tile((const int32_t(*)[NR])acc, i * MR, M, qs + j * NR, left, P, s_n,
                           s_m, s_p, out, (int)out_type, simd);
            }
        }
    }
    free(blk);
    free(seg);
    return 0;
}

/* Allocate a convolution's planes (pl->xp stays NULL for a matrix); -1 when out of memory. */
static int alloc_planes(const bsrc_t *b, int64_t N, planes_t *pl) {
    pl->xp = NULL;
    if (!b->is_conv) return 0;
    plane_geometry(b, pl);
    size_t n = (size_t)(N * pl->C2 * pl->plane);
    pl->xp = (uint32_t *)malloc((n > 0 ? n : 1) * sizeof(uint32_t));
    return pl->xp ? 0 : -1;
}

typedef struct {
    const uint32_t *ap;
    int64_t M, K2;
    const int64_t *bias;
    const bsrc_t *b;
    const planes_t *pl;
    int64_t q0, q1, P, s_n, s_m, s_p;
    void *out;
    int64_t out_type;
    int64_t p0, p1; /* planes to fill first */
    int rc;
} job_t;

static void *run_fill(void *arg) {
    job_t *j = (job_t *)arg;
    uint32_t *row = (uint32_t *)malloc((size_t)j->pl->Wp * sizeof(uint32_t));
    if (!row) {
        j->rc = -1;
        return NULL;
    }
    fill_planes(j->b, j->pl, j->p0, j->p1, row);
    free(row);
    return NULL;
}

static void *run_job(void *arg) {
    job_t *j = (job_t *)arg;
    j->rc = igemm_cols(j->ap, j->M, j->K2, j->bias, j->b, j->pl, j->q0, j->q1, j->P, j->s_n,
                       j->s_m, j->s_p, j->out, j->out_type);
    return NULL;
}

/* fn(job i) for i < n (n <= 64), the jobs size bytes apart from jobs: jobs 1.. on new
 * threads, job 0 in the calling thread (a job whose thread could not start runs here too). */
static void run_all(void *(*fn)(void *), void *jobs, size_t size, int64_t n) {
    enum { MAXT = 64 };
    pthread_t tid[MAXT];
    int started[MAXT];
    char *job = (char *)jobs;
    for (int64_t i = 1; i < n; i++)
        started[i] = pthread_create(&tid[i], NULL, fn, job + i * size) == 0;
    fn(job);
    for (int64_t i = 1; i < n; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn(job + i * size);
    }
}

/* The product for columns [0, Q), split at the given column edges (n_parts + 1 values,
 * multiples of NR inside, Q the last) among n_parts threads (the calling thread takes the
 * first part); a convolution's planes are filled first, split among the same threads.
 * ap: A packed as [ceil(M/MR)][K2][MR] pairs (rows past M zero); bias[M] int64 (must fit
 * int32, checked by the caller). The output (m, q) with q = n*P + p goes to
 * out[n*s_n + m*s_m + p*s_p], of type out_type (OUT_I64, OUT_F64 or OUT_I32). b: the B
 * geometry (see bsrc_t); for a matrix, pass is_conv = 0 and P = the number of columns. A
 * convolution with b->quad runs on byte quads: ap holds [ceil(M/MR)][K2][MR] words of four
 * int8 weights (K2 = KH * KW * ceil(C/4)), the planes four bytes x - offset of consecutive
 * channels (in [0, 255], guaranteed by the caller). Returns 0, or -1 when memory could
 * not be allocated. */
int hw_igemm_parallel(const uint32_t *ap, int64_t M, int64_t K2, const int64_t *bias,
                      const bsrc_t *b, const int64_t *edges, int64_t n_parts, int64_t P,
                      int64_t s_n, int64_t s_m, int64_t s_p, void *out, int64_t out_type) {
    enum { MAXT = 64 };
    job_t jobs[MAXT];
    if (n_parts < 1) return 0;
    if (n_parts > MAXT) n_parts = MAXT;
    int64_t Q = edges[n_parts];
    if (Q <= 0 || M <= 0) return 0;
    planes_t pl;
    int64_t n_img = b->is_conv ? (Q - 1) / P + 1 : 0;
    if (alloc_planes(b, n_img, &pl)) return -1;
    int64_t n_planes = n_img * pl.C2;
    for (int64_t i = 0; i < n_parts; i++)
        jobs[i] = (job_t){ap, M, K2, bias, b, &pl, edges[i], edges[i + 1], P, s_n, s_m, s_p,
                          out, out_type, n_planes * i / n_parts, n_planes * (i + 1) / n_parts, 0};
    if (pl.xp) run_all(run_fill, jobs, sizeof(job_t), n_parts);
    int rc = 0;
    for (int64_t i = 0; i < n_parts; i++)
        if (jobs[i].rc) rc = jobs[i].rc;
    if (rc == 0) run_all(run_job, jobs, sizeof(job_t), n_parts);
    free(pl.xp);
    for (int64_t i = 0; i < n_parts; i++)
        if (jobs[i].rc) rc = jobs[i].rc;
    return rc;
}

/* ---- Matrix products with the activations as the broadcast operand ----
 * out[q, m] = bias[m] + sum_k (a(k, q) - offset) * w[m, k] (mod 2^32) for a matrix source a
 * (bsrc_t with is_conv = 0) and weights packed as wb[ceil(M/NR)][K2][NR] pairs (each tile
 * of NR output channels contiguous, a sequential stream; channels past M zero). Rows q are
 * packed MR at a time (A panels), the weights are read in place: a row-major [Q, M] output
 * gets whole rows of NR columns per tile. */

static inline uint32_t pair16(int64_t v0, int64_t v1) {
    return (uint32_t)(uint16_t)(int16_t)v0 | (uint32_t)(uint16_t)(int16_t)v1 << 16;
}

/* Row `base` of a (the K values at base + k * sk) as int16 pairs dst[k2 * MR], the last
 * pair's high half 0 when K is odd. */
static void row_pairs(uint32_t *dst, const bsrc_t *a, int64_t base) {
    int t = (int)a->type;
    int64_t off = a->offset, K = a->K;
    if (a->sk == 1) {
        copy_pairs_strided(dst, MR, a->src, t, base, K, off);
        return;
    }
    int64_t k2 = 0;
    for (; 2 * k2 + 1 < K; k2++)
        dst[k2 * MR] = pair16(elem(a->src, t, base + 2 * k2 * a->sk) - off,
                              elem(a->src, t, base + (2 * k2 + 1) * a->sk) - off);
    if (K & 1) dst[k2 * MR] = pair16(elem(a->src, t, base + 2 * k2 * a->sk) - off, 0);
}

/* Row `base` of a as byte quads dst[k4 * MR] (k4 < K4): byte i is a(4 k4 + i) - offset,
 * which the caller guarantees lies in [0, 255]; 0 past K. */
static void row_quads(uint32_t *dst, const bsrc_t *a, int64_t base, int64_t K4) {
    int t = (int)a->type;
    int64_t off = a->offset, K = a->K;
    int64_t k4 = 0;
    /* whole quads of contiguous bytes: a copy (uint8, offset 0) or a flip of the sign bits
     * (int8, offset -128: x + 128 = x ^ 0x80 in every byte) */
    if (a->sk == 1 && ((t == T_U8 && off == 0) || (t == T_I8 && off == -128))) {
        const uint8_t *src = (const uint8_t *)a->src + base;
        uint32_t flip = t == T_I8 ? 0x80808080u : 0;
        for (; 4 * k4 + 3 < K; k4++) {
            uint32_t v;
            memcpy(&v, src + 4 * k4, 4);
            dst[k4 * MR] = v ^ flip;
        }
    }
    for (; k4 < K4; k4++) {
        uint32_t v = 0;
        for (int64_t b = 0; b < 4 && 4 * k4 + b < K; b++)
            v |= (uint32_t)(uint8_t)(elem(a->src, t, base + (4 * k4 + b) * a->sk) - off)
                 << (8 * b);
        dst[k4 * MR] = v;
    }
}

/* Pack rows [q0, q0 + nrow) of a as A panels ap[ceil(nrow/MR)][K2][MR] of int16 pairs
 * (quad = 0) or byte quads (quad = 1, K2 = ceil(K/4)); rows past nrow 0. */
static void pack_rows(const bsrc_t *a, int64_t q0, int64_t nrow, int64_t K2, int quad,
                      uint32_t *ap) {
    int64_t nt = (nrow + MR - 1) / MR;
    for (int64_t i = 0; i < nt; i++) {
        uint32_t *panel = ap + i * K2 * MR;
        for (int64_t r = 0; r < MR; r++) {
            int64_t row = i * MR + r;
            if (row >= nrow)
                for (int64_t k2 = 0; k2 < K2; k2++) panel[k2 * MR + r] = 0;
            else if (quad)
                row_quads(panel + r, a, (q0 + row) * a->sq, K2);
            else
                row_pairs(panel + r, a, (q0 + row) * a->sq);
        }
    }
}

/* ---- Requantization fused into the store (matrix products) ----
 * §8.4 "Evaluation in float64" (dyadic / custom, |m| < 2^21, shift <= 52, saturating
 * output stage): q = clamp(R(acc * scale[m]) + z, lo, hi), every step exact. The caller
 * checks the conditions (hwsim.arith.jit_arrays.f64_scales). */
enum { RQ_HALF_UP = 0, RQ_HALF_AWAY = 1, RQ_HALF_EVEN = 2, RQ_FLOOR = 3, RQ_TOWARD_ZERO = 4 };
/* Code types of the requantized output. */
enum { CODE_I64 = 0, CODE_I8 = 1, CODE_U8 = 2 };

typedef struct {
    const double *scale; /* per output channel, M values; NULL: no requantization */
    int64_t rounding;    /* RQ_* */
    double z, lo, hi;    /* zero point and the clamp bounds act_min, act_max */
    void *codes;         /* codes[q * s_q + m], of type code_type */
    int64_t code_type;   /* CODE_* */
} requant_t;

/* The §6 rounding of the exact float64 v (rint: the default round-to-nearest-even mode). */
static inline double rq_round(double v, int64_t rounding) {
    switch (rounding) {
    case RQ_HALF_UP: return floor(v + 0.5);
    case RQ_HALF_AWAY: return copysign(floor(fabs(v) + 0.5), v);
    case RQ_HALF_EVEN: return rint(v);
    case RQ_FLOOR: return floor(v);
    default: return trunc(v);
    }
}

static inline void put_code(void *codes, int64_t i, int64_t q, int64_t type) {
    if (type == CODE_I8)
        ((int8_t *)codes)[i] = (int8_t)q;
    else if (type == CODE_U8)
        ((uint8_t *)codes)[i] = (uint8_t)q;
    else
        ((int64_t *)codes)[i] = q;
}

/* codes[o + c] for the n accumulators v[c] of channels m0 + c. */
static void requant_run(const requant_t *rq, int64_t o, int64_t m0, const int32_t *v,
                        int64_t n) {
    for (int64_t c = 0; c < n; c++) {
        double y = rq_round((double)v[c] * rq->scale[m0 + c], rq->rounding) + rq->z;
        y = y < rq->lo ? rq->lo : (y > rq->hi ? rq->hi : y);
        put_code(rq->codes, o + c, (int64_t)y, rq->code_type);
    }
}

#if HW_X86
/* requant_run for 16 values with AVX2 (the same operations, four lanes at a time); the
 * rounding is a constant where it is inlined. */
__attribute__((target("avx2"), always_inline)) static inline void
requant16_r(const requant_t *rq, int64_t o, int64_t m0, const int32_t *v, const int rounding) {
    const __m256d half = _mm256_set1_pd(0.5), sign = _mm256_set1_pd(-0.0);
    const __m256d z = _mm256_set1_pd(rq->z), lo = _mm256_set1_pd(rq->lo),
                  hi = _mm256_set1_pd(rq->hi);
    __m128i q[4];
    for (int h = 0; h < 4; h++) {
        __m256d x = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)(v + 4 * h))),
                                  _mm256_loadu_pd(rq->scale + m0 + 4 * h));
        __m256d r;
        if (rounding == RQ_HALF_UP)
            r = _mm256_floor_pd(_mm256_add_pd(x, half));
        else if (rounding == RQ_HALF_AWAY)
            r = _mm256_or_pd(_mm256_floor_pd(_mm256_add_pd(_mm256_andnot_pd(sign, x), half)),
                             _mm256_and_pd(sign, x));
        else if (rounding == RQ_HALF_EVEN)
            r = _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        else if (rounding == RQ_FLOOR)
            r = _mm256_floor_pd(x);
        else
            r = _mm256_round_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        q[h] = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(_mm256_add_pd(r, z), lo), hi));
    }
    if (rq->code_type == CODE_I64) {
        int32_t t[16];
        for (int h = 0; h < 4; h++) _mm_storeu_si128((__m128i *)(t + 4 * h), q[h]);
        store16_i64((int64_t *)rq->codes + o, t);
        return;
    }
    /* codes within [lo, hi], inside the 8-bit type: the saturating packs change nothing */
    __m128i w0 = _mm_packs_epi32(q[0], q[1]), w1 = _mm_packs_epi32(q[2], q[3]);
    __m128i b = rq->code_type == CODE_I8 ? _mm_packs_epi16(w0, w1) : _mm_packus_epi16(w0, w1);
    _mm_storeu_si128((__m128i *)((uint8_t *)rq->codes + o), b);
}

__attribute__((target("avx2"))) static void requant16(const requant_t *rq, int64_t o,
                                                      int64_t m0, const int32_t *v) {
    switch (rq->rounding) {
    case RQ_HALF_UP: requant16_r(rq, o, m0, v, RQ_HALF_UP); break;
    case RQ_HALF_AWAY: requant16_r(rq, o, m0, v, RQ_HALF_AWAY); break;
    case RQ_HALF_EVEN: requant16_r(rq, o, m0, v, RQ_HALF_EVEN); break;
    case RQ_FLOOR: requant16_r(rq, o, m0, v, RQ_FLOOR); break;
    default: requant16_r(rq, o, m0, v, RQ_TOWARD_ZERO); break;
    }
}
#endif

/* Rows [q0, q1) x column tiles [j0, j1) of out[q * s_q + m]. K2: the words per channel
 * of the weights, int16 pairs (quad = 0) or byte quads (quad = 1, then K2 = ceil(K/4)). */
static int rows_part(const uint32_t *wb, int64_t M, int64_t K2, int quad, const int64_t *bias,
                     const bsrc_t *a, int64_t q0, int64_t q1, int64_t j0, int64_t j1,
                     int64_t s_q, void *out, int64_t out_type, const requant_t *rq) {
    if (q1 <= q0 || j1 <= j0) return 0;
    /* rows per block: its A panels stay near 192 KiB (in L2 while the weight tiles stream
     * past them) */
    int64_t rb = (192 * 1024 / 4) / ((K2 > 0 ? K2 : 1) * MR) * MR;
    if (rb > 1024) rb = 1024 / MR * MR;
    if (rb < MR) rb = MR;
    if (rb > q1 - q0) rb = (q1 - q0 + MR - 1) / MR * MR; /* a multiple of MR: whole panels */
    uint32_t *ablk = (uint32_t *)aligned_alloc(
        64, ((size_t)(rb * (K2 > 0 ? K2 : 1)) * sizeof(uint32_t) + 63) / 64 * 64);
    if (!ablk) return -1;
    int simd = use_avx2();
    int32_t cb[NR];
    int32_t acc[MR][NR];
    for (int64_t qs = q0; qs < q1; qs += rb) {
        int64_t nrow = q1 - qs < rb ? q1 - qs : rb;
        int64_t nt = (nrow + MR - 1) / MR;
        pack_rows(a, qs, nrow, K2, quad, ablk);
        for (int64_t j = j0; j < j1; j++) {
            int64_t cols = M - j * NR < NR ? M - j * NR : NR;
            for (int c = 0; c < NR; c++) cb[c] = c < cols ? (int32_t)bias[j * NR + c] : 0;
            const uint32_t *bpj = wb + j * K2 * NR;
            for (int64_t i = 0; i < nt; i++) {
                const uint32_t *api = ablk + i * K2 * MR;
                int64_t rows = nrow - i * MR < MR ? nrow - i * MR : MR;
                run_tile(simd, quad, api, bpj, K2, NR, cb, 1, acc, rows);
                for (int64_t r = 0; r < rows; r++) {
                    int64_t o = (qs + i * MR + r) * s_q + j * NR;
#if HW_X86
                    if (simd && cols == NR) {
                        store16(out, o, acc[r], (int)out_type);
                        if (rq->scale) requant16(rq, o, j * NR, acc[r]);
                        continue;
                    }
#endif
                    for (int64_t c = 0; c < cols; c++) put(out, o + c, acc[r][c], (int)out_type);
                    if (rq->scale) requant_run(rq, o, j * NR, acc[r], cols);
                }
            }
        }
    }
    free(ablk);
    return 0;
}

typedef struct {
    const uint32_t *wb;
    int64_t M, K2;
    int quad;
    const int64_t *bias;
    const bsrc_t *a;
    int64_t q0, q1, j0, j1, s_q;
    void *out;
    int64_t out_type;
    const requant_t *rq;
    int rc;
} rjob_t;

static void *run_rjob(void *arg) {
    rjob_t *j = (rjob_t *)arg;
    j->rc = rows_part(j->wb, j->M, j->K2, j->quad, j->bias, j->a, j->q0, j->q1, j->j0, j->j1,
                      j->s_q, j->out, j->out_type, j->rq);
    return NULL;
}

/* out[q * s_q + m] (of type out_type: OUT_I64, OUT_F64 or OUT_I32) for q < Q, m < M; wb:
 * the weights [ceil(M/NR)][K2][NR], int16 pairs (quad = 0) or byte quads (quad = 1: K2 =
 * ceil(K/4), weights in [-64, 64], every a(q, k) - offset in [0, 255]). With rq->scale
 * set, each stored accumulator is also requantized into rq->codes at the same index. The
 * work is split among n_parts threads (the calling thread takes the first part): by rows
 * when there are many, else by column tiles. Returns 0, or -1 when memory could not be
 * allocated. */
int hw_igemm_rows(const uint32_t *wb, int64_t M, int64_t K2, int64_t quad, const int64_t *bias,
                  const bsrc_t *a, int64_t Q, int64_t n_parts, int64_t s_q, void *out,
                  int64_t out_type, const requant_t *rq) {
    enum { MAXT = 64 };
    rjob_t jobs[MAXT];
    if (Q <= 0 || M <= 0) return 0;
    int64_t ntj = (M + NR - 1) / NR, nrt = (Q + MR - 1) / MR;
    if (n_parts < 1) n_parts = 1;
    if (n_parts > MAXT) n_parts = MAXT;
    /* by rows when each part gets several row blocks' worth, else by column tiles */
    int by_rows = nrt >= 8 * n_parts || ntj < n_parts;
    int64_t units = by_rows ? nrt : ntj;
    if (n_parts > units) n_parts = units;
    for (int64_t i = 0; i < n_parts; i++) {
        int64_t u0 = units * i / n_parts, u1 = units * (i + 1) / n_parts;
        int64_t q0 = 0, q1 = Q, j0 = 0, j1 = ntj;
        if (by_rows) {
            q0 = u0 * MR;
            q1 = u1 * MR < Q ? u1 * MR : Q;
        } else {
            j0 = u0;
            j1 = u1;
        }
        jobs[i] = (rjob_t){wb, M, K2, quad != 0, bias, a, q0, q1, j0, j1, s_q, out, out_type,
                           rq, 0};
    }
    run_all(run_rjob, jobs, sizeof(rjob_t), n_parts);
    int rc = 0;
    for (int64_t i = 0; i < n_parts; i++)
        if (jobs[i].rc) rc = jobs[i].rc;
    return rc;
}

/* 1 when the n bytes at a and b are equal (the weight cache's check that an array still
 * holds the values it was packed from). */
int hw_memeq(const void *a, const void *b, int64_t n) {
    return n <= 0 || memcmp(a, b, (size_t)n) == 0;
}

/* Offsets of the fields of bsrc_t, for the ctypes mirror to check its layout. */
int64_t hw_bsrc_size(void) { return (int64_t)sizeof(bsrc_t); }
int64_t hw_requant_size(void) { return (int64_t)sizeof(requant_t); }

static struct PyModuleDef igemm_module = {PyModuleDef_HEAD_INIT, "_igemm",
                                          "Exact 16-bit integer products (C, via ctypes).", -1,
                                          NULL};

PyMODINIT_FUNC PyInit__igemm(void) { return PyModule_Create(&igemm_module); }
