// Disentangled attention for CPU inference, in one pass per block of queries (float32; AVX-512 or AVX2).
//
// Computes what DisentangledSelfAttention.attend_with_positions computes without dropout or gradients:
//   score[i, j] = q_i·k_j·scale + q_i·kr[δ] + k_j·qr[δ] + padding[j],   δ = i − j
//   context_i   = Σ_j softmax_j(score[i, ·]) v_j
// in the form
//   score[i, j] = (q_i + qu_c)·(ks_j + kr_c) − diagonal_c + padding[j],   c = L − 1 − i + j,
// with ks = k·scale, qu = qr / scale and diagonal_c = qu_c·kr_c (attention.py's kernel_tables and
// attend_in_kernel prepare them). Per key vector and dimension that is two additions and one FMA instead
// of three FMAs: AMD's Zen cores add on other ports than they multiply, so the loop is no longer bound by
// its FMAs (on cores that share the ports the count of operations stays the same). Each product is
// computed once, for the pairs (i, j) that exist — no products outside the band, no score-sized
// temporaries: the scores of T queries stay in a T×L buffer in cache.
//
// kr, qu come laid out by column c (one column per diagonal, rows clamped to the span by the caller),
// transposed to (d, 2L − 1): for a fixed query the entries of consecutive keys are consecutive in memory,
// so the relative terms are vector loads, like ksᵀ. A block of T queries is sheared (score_block): row t
// takes its keys shifted by t, so that all T rows read the same columns of kr and qu, loaded once.
//
// Keys whose padding is below −1e30 after the last key that has none are skipped: their weight is 0
// exactly (the padding bias is half of float32's lowest), so right-padded batches cost their real length.
//
// One source, two builds: compiled with -mavx512f the vectors are AVX-512's (16 lanes, 32 registers),
// with -mavx2 -mfma AVX2's (8 lanes, 16 registers); cpu_kernel.py picks the build the CPU runs. The
// block sizes follow the register count: the score and context accumulators of a block must stay in
// registers, or every FMA also spills and reloads.
//
// Shapes: q, v (B, H, L, d) with unit stride in d (other strides free: views of the projections);
// ksᵀ (B, H, d, L), kr, qu (H, d, 2L − 1), diagonal (H, 2L − 1), padding (B, L) contiguous. The context
// is returned as a (B, H, L, d) view of a (B, L, H, d) tensor: the layout the output projection reads.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

#if defined(__AVX512F__)
struct Simd {
  static constexpr const char* kName = "avx512";
  static constexpr int kLanes = 16;
  static constexpr int kChunks = 4;  // key vectors per pass: rows·kChunks score accumulators (of 32 registers)
  static constexpr int rows(int head_size) { return head_size <= 64 ? 4 : 2; }  // queries per block
  static constexpr int panel(int vectors) { return vectors; }  // context vectors per pass: all of a row (≤ 8)
  using Vec = __m512;
  using Mask = __mmask16;
  static Mask first(int count) {  // the first `count` lanes (count may be ≤ 0 or past the last lane)
    return count >= 16 ? Mask(0xFFFF) : count <= 0 ? Mask(0) : Mask((1u << count) - 1);
  }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, Vec x) { _mm512_storeu_ps(p, x); }
  static void store(float* p, Vec x, Mask m) { _mm512_mask_storeu_ps(p, m, x); }
  static Vec broadcast(float x) { return _mm512_set1_ps(x); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
};
#elif defined(__AVX2__) && defined(__FMA__)
struct Simd {
  static constexpr const char* kName = "avx2";
  static constexpr int kLanes = 8;
  // 3 rows × 3 chunks: 9 score accumulators, 3 queries, the loads and two sums in the other 7. Timed at
  // base width, faster than 2 rows × 4 chunks and 4 rows × 2 chunks.
  static constexpr int kChunks = 3;
  static constexpr int rows(int) { return 3; }
  static constexpr int panel(int vectors) { return std::min(vectors, 4); }
  using Vec = __m256;
  using Mask = __m256i;  // a lane is loaded where its sign bit is set
  static Mask first(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }  // masked-off lanes never fault
  static void store(float* p, Vec x) { _mm256_storeu_ps(p, x); }
  static void store(float* p, Vec x, Mask m) { _mm256_maskstore_ps(p, m, x); }
  static Vec broadcast(float x) { return _mm256_set1_ps(x); }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
};
#else
#error "build with -mavx512f (AVX-512) or -mavx2 -mfma (AVX2): see cpu_kernel.VARIANTS"
#endif

constexpr int N = Simd::kLanes;
constexpr int C = Simd::kChunks;

// One (sequence, head). L: the length (of queries, and of the tables' layout); K ≤ L: the keys that count.
struct Head {
  const float* q;         // query i at q + i·q_stride
  const float* kst;       // (d, L): ks_j[e] at kst[e·L + j]
  const float* v;         // value j at v + j·v_stride
  const float* kr;        // (d, 2L − 1)
  const float* qu;        // (d, 2L − 1)
  const float* diagonal;  // (2L − 1)
  const float* padding;   // (L)
  float* out;             // query i's context at out + i·out_stride
  int64_t q_stride, v_stride, out_stride;
  int L, K;
};

// The scores of the T queries `rows` (rows[0] + t, or the last query repeated past it) for one block of
// keys, into scores (T × L), padding added. The block is sheared: row t takes the keys
// j0 + (rows[t] − rows[0]) + (0 … N·C − 1). Then every row reads the same columns
// L − 1 − rows[0] + j0 + (0 … N·C − 1) of kr and qu: per FMA one load of ksᵀ and 2/T of the tables.
// The keys a row skips in the first block come from first_keys. Full: no row's keys reach K (no mask).
template <int D, int T, bool Full>
inline void score_block(const Head& h, const int* rows, int j0, float* scores) {
  const int L = h.L, W = 2 * L - 1;
  typename Simd::Mask keys[T][C];
  typename Simd::Vec acc[T][C];
  const int column = (L - 1 - rows[0]) + j0;
  for (int c = 0; c < C; ++c) {
    // Row 0's keys include every other row's (theirs start later): its mask covers the columns they read.
    if (!Full)
      for (int t = 0; t < T; ++t) keys[t][c] = Simd::first(h.K - (j0 + rows[t] - rows[0]) - N * c);
    const float* d = h.diagonal + column + N * c;
    const auto diagonal = Full ? Simd::load(d) : Simd::load(d, keys[0][c]);
    for (int t = 0; t < T; ++t) {
      const float* p = h.padding + j0 + rows[t] - rows[0] + N * c;
      acc[t][c] = Simd::sub(Full ? Simd::load(p) : Simd::load(p, keys[t][c]), diagonal);
    }
  }
  for (int e = 0; e < D; ++e) {
    const float* ks_e = h.kst + e * L + j0 - rows[0];
    const float* kr_e = h.kr + e * W + column;
    const float* qu_e = h.qu + e * W + column;
    typename Simd::Vec query[T];
    for (int t = 0; t < T; ++t) query[t] = Simd::broadcast(h.q[rows[t] * h.q_stride + e]);
    for (int c = 0; c < C; ++c) {
      const auto kr = Full ? Simd::load(kr_e + N * c) : Simd::load(kr_e + N * c, keys[0][c]);
      const auto qu = Full ? Simd::load(qu_e + N * c) : Simd::load(qu_e + N * c, keys[0][c]);
      for (int t = 0; t < T; ++t) {
        const float* k = ks_e + rows[t] + N * c;
        const auto key = Full ? Simd::load(k) : Simd::load(k, keys[t][c]);
        acc[t][c] = Simd::fmadd(Simd::add(query[t], qu), Simd::add(key, kr), acc[t][c]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    float* s = scores + t * L + j0 + rows[t] - rows[0];
    for (int c = 0; c < C; ++c) {
      if (Full) Simd::store(s + N * c, acc[t][c]);
      else Simd::store(s + N * c, acc[t][c], keys[t][c]);
    }
  }
}

// The scores of row t for the keys 0 … rows[t] − rows[0] − 1 that the sheared blocks start after.
template <int D, int T>
inline void first_keys(const Head& h, const int* rows, float* scores) {
  const int L = h.L, W = 2 * L - 1;
  for (int t = 1; t < T; ++t)
    for (int j = 0; j < std::min(rows[t] - rows[0], h.K); ++j) {
      const int column = L - 1 - rows[t] + j;
      float sum = 0.f;
      for (int e = 0; e < D; ++e)
        sum += (h.q[rows[t] * h.q_stride + e] + h.qu[e * W + column]) * (h.kst[e * L + j] + h.kr[e * W + column]);
      scores[t * L + j] = sum - h.diagonal[column] + h.padding[j];
    }
}

// Softmax of a row of K scores in place; returns 1 / the sum, which the context is scaled by.
inline float exponentials(float* s, int K) {
  const float top = *std::max_element(s, s + K);
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < K; ++j) {
    // Below e^−80 of the largest a weight is 0 for float32's sum anyway; clamping keeps exp in its fast
    // path (padded keys are ~−1.7e38 below: past exp's range, the vector exp falls back to scalar code).
    const float x = s[j] - top;
    const float y = std::exp(std::max(x, -80.f));
    s[j] = x < -80.f ? 0.f : y;
    sum += s[j];
  }
  return 1.f / sum;
}

// D = head width (a multiple of the lanes), T = queries per block.
template <int D, int T>
void attend_head(const Head& h, float* scores) {
  constexpr int V = D / N;                 // vectors per row of v
  constexpr int P = Simd::panel(V);        // of them accumulated per pass over the keys
  static_assert(V % P == 0, "the context's panels split a row evenly");
  const int L = h.L, K = h.K;
  for (int i = 0; i < L; i += T) {
    int rows[T];  // past the last query, repeat it (computed, never stored)
    for (int t = 0; t < T; ++t) rows[t] = std::min(i + t, L - 1);
    const int spread = rows[T - 1] - rows[0];  // the shear of the last row
    int j0 = 0;
    for (; j0 + spread + N * C <= K; j0 += N * C) score_block<D, T, true>(h, rows, j0, scores);
    for (; j0 < K; j0 += N * C) score_block<D, T, false>(h, rows, j0, scores);
    first_keys<D, T>(h, rows, scores);
    float inverse[T];
    for (int t = 0; t < T; ++t) inverse[t] = exponentials(scores + t * L, K);
    for (int u0 = 0; u0 < V; u0 += P) {  // the context, P vectors of each row at a time
      typename Simd::Vec context[T][P];
      for (int t = 0; t < T; ++t)
        for (int u = 0; u < P; ++u) context[t][u] = Simd::zero();
      for (int j = 0; j < K; ++j) {
        typename Simd::Vec value[P];
        for (int u = 0; u < P; ++u) value[u] = Simd::load(h.v + j * h.v_stride + N * (u0 + u));
        for (int t = 0; t < T; ++t) {
          const auto p = Simd::broadcast(scores[t * L + j]);
          for (int u = 0; u < P; ++u) context[t][u] = Simd::fmadd(p, value[u], context[t][u]);
        }
      }
      for (int t = 0; t < T && i + t < L; ++t) {
        const auto scale = Simd::broadcast(inverse[t]);
        for (int u = 0; u < P; ++u)
          Simd::store(h.out + (i + t) * h.out_stride + N * (u0 + u), Simd::mul(context[t][u], scale));
      }
    }
  }
}

// The keys that count: up to the last one not padded out (all L where every key is).
int key_count(const float* padding, int L) {
  for (int j = L - 1; j >= 0; --j)
    if (padding[j] > -1e30f) return j + 1;
  return L;
}

template <int D>
void attend_all(const torch::Tensor& q, const torch::Tensor& kst, const torch::Tensor& v, const torch::Tensor& kr,
                const torch::Tensor& qu, const torch::Tensor& diagonal, const torch::Tensor& padding,
                torch::Tensor& out) {
  const int64_t B = q.size(0), H = q.size(1);
  const int L = static_cast<int>(q.size(2)), W = 2 * L - 1;
  constexpr int T = Simd::rows(D);
  const float *q_data = q.data_ptr<float>(), *kst_data = kst.data_ptr<float>(), *v_data = v.data_ptr<float>();
  const float *kr_data = kr.data_ptr<float>(), *qu_data = qu.data_ptr<float>();
  const float *diagonal_data = diagonal.data_ptr<float>(), *pad = padding.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(T * L);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, n = bh % H;
      const Head head{q_data + b * q.stride(0) + n * q.stride(1),
                      kst_data + bh * D * L,
                      v_data + b * v.stride(0) + n * v.stride(1),
                      kr_data + n * D * W,
                      qu_data + n * D * W,
                      diagonal_data + n * W,
                      pad + b * L,
                      out_data + b * out.stride(0) + n * out.stride(1),
                      q.stride(2), v.stride(2), out.stride(2), L, key_count(pad + b * L, L)};
      attend_head<D, T>(head, scores.data());
    }
  });
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& kst, const torch::Tensor& v, const torch::Tensor& kr,
                     const torch::Tensor& qu, const torch::Tensor& diagonal, const torch::Tensor& padding) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), D = q.size(3);
  TORCH_CHECK(L > 0, "at least one query and key");
  for (const auto* t : {&q, &kst, &v, &kr, &qu, &diagonal, &padding}) {
    TORCH_CHECK(t->scalar_type() == torch::kFloat && t->device().is_cpu(), "float32 CPU tensors expected");
  }
  for (const auto* t : {&kst, &kr, &qu, &diagonal, &padding}) TORCH_CHECK(t->is_contiguous(), "contiguous tables");
  TORCH_CHECK(q.dim() == 4 && v.sizes() == q.sizes() && q.stride(3) == 1 && v.stride(3) == 1,
              "q, v (B, H, L, d) with unit stride in d");
  TORCH_CHECK(kst.sizes() == torch::IntArrayRef({B, H, D, L}), "ksᵀ shape");
  TORCH_CHECK(kr.sizes() == torch::IntArrayRef({H, D, 2 * L - 1}) && qu.sizes() == kr.sizes(), "kr, qu shapes");
  TORCH_CHECK(diagonal.sizes() == torch::IntArrayRef({H, 2 * L - 1}), "diagonal shape");
  TORCH_CHECK(padding.sizes() == torch::IntArrayRef({B, L}), "padding shape");
  auto out = torch::empty({B, L, H, D}, q.options()).transpose(1, 2);  // (B, H, L, d) view
  decltype(&attend_all<64>) attend_d = nullptr;
  switch (D) {
    case 16: attend_d = attend_all<16>; break;
    case 32: attend_d = attend_all<32>; break;
    case 64: attend_d = attend_all<64>; break;
    case 128: attend_d = attend_all<128>; break;
    default: TORCH_CHECK(false, "head width ", D, " not one of 16, 32, 64, 128 (cpu_kernel.HEAD_SIZES)");
  }
  attend_d(q, kst, v, kr, qu, diagonal, padding, out);
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attend", &attend, "Disentangled attention, CPU inference (see the file's head)");
  m.attr("variant") = Simd::kName;  // which build this is: cpu_kernel.VARIANTS
}
