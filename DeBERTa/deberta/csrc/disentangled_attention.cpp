// Disentangled attention for CPU inference, in one pass per block of queries (float32; AVX-512 or AVX2).
//
// Computes what DisentangledSelfAttention.attend_with_positions computes without dropout or gradients:
//   score[i, j] = q_i·k_j·scale + q_i·kr[δ] + k_j·qr[δ] + padding[j],   δ = i − j
//   context_i   = Σ_j softmax_j(score[i, ·]) v_j
// kr and qr come pre-scaled and laid out by column c = L − 1 − i + j (one column per diagonal, rows
// clamped to the span by the caller), transposed to (d, 2L − 1): for a fixed query i the entries of
// consecutive keys are consecutive in memory, so both relative terms are vector loads, like kᵀ. Each
// product is computed once, for the pairs (i, j) that exist — no products outside the band, no
// score-sized temporaries: the scores of T queries stay in a T×L buffer in cache.
//
// One source, two builds: compiled with -mavx512f the vectors are AVX-512's (16 lanes, 32 registers),
// with -mavx2 -mfma AVX2's (8 lanes, 16 registers); cpu_kernel.py picks the build the CPU runs. The
// block sizes follow the register count: the score and context accumulators of a block must stay in
// registers, or every FMA also spills and reloads.
//
// Shapes: q, v (B, H, L, d) and kt (B, H, d, L) contiguous; kr, qr (H, d, 2L − 1); padding (B, L).
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
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
};
#elif defined(__AVX2__) && defined(__FMA__)
struct Simd {
  static constexpr const char* kName = "avx2";
  static constexpr int kLanes = 8;
  // 3 rows × 3 chunks: 9 score accumulators; 3 × 4 context ones + 4 values. Timed at base width, faster
  // than 2 rows × 4 chunks (whose registers fit exactly) and than 1 row (each value loaded per query).
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
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
};
#else
#error "build with -mavx512f (AVX-512) or -mavx2 -mfma (AVX2): see cpu_kernel.VARIANTS"
#endif

constexpr int N = Simd::kLanes;
constexpr int C = Simd::kChunks;

// The scores of T queries (rows) against the keys j0 … j0 + N·C − 1 into scores (T × L), padding added.
// Full: all N·C keys exist, so no load needs a mask.
template <int D, int T, bool Full>
inline void score_block(const float* q, const float* kt, const float* kr, const float* qr, const float* padding,
                        const int* rows, int j0, int L, float scale, float* scores) {
  const int W = 2 * L - 1;
  typename Simd::Mask keys[C];
  typename Simd::Vec acc[T][C];
  for (int c = 0; c < C; ++c) {
    if (!Full) keys[c] = Simd::first(L - j0 - N * c);
    const auto pad = Full ? Simd::load(padding + j0 + N * c) : Simd::load(padding + j0 + N * c, keys[c]);
    for (int t = 0; t < T; ++t) acc[t][c] = pad;
  }
  for (int e = 0; e < D; ++e) {
    const float* kt_e = kt + e * L + j0;
    // Column of (query i, key j) is L − 1 − i + j: never below 0 or past 2L − 2 for real pairs.
    const float* kr_e = kr + e * W + (L - 1) + j0;
    const float* qr_e = qr + e * W + (L - 1) + j0;
    typename Simd::Vec query[T], scaled[T];
    for (int t = 0; t < T; ++t) {
      const float x = q[rows[t] * D + e];
      query[t] = Simd::broadcast(x);
      scaled[t] = Simd::broadcast(x * scale);
    }
    for (int c = 0; c < C; ++c) {
      const auto key = Full ? Simd::load(kt_e + N * c) : Simd::load(kt_e + N * c, keys[c]);
      for (int t = 0; t < T; ++t) {
        const int column = N * c - rows[t];
        const auto kr_v = Full ? Simd::load(kr_e + column) : Simd::load(kr_e + column, keys[c]);
        const auto qr_v = Full ? Simd::load(qr_e + column) : Simd::load(qr_e + column, keys[c]);
        acc[t][c] = Simd::fmadd(key, qr_v, acc[t][c]);        // p2c
        acc[t][c] = Simd::fmadd(query[t], kr_v, acc[t][c]);   // c2p
        acc[t][c] = Simd::fmadd(scaled[t], key, acc[t][c]);   // q·k
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < C; ++c) {
      float* s = scores + t * L + j0 + N * c;
      if (Full) Simd::store(s, acc[t][c]);
      else Simd::store(s, acc[t][c], keys[c]);
    }
}

// One (sequence, head): D = head width (a multiple of the lanes), T = queries per block.
template <int D, int T>
void attend_head(const float* q, const float* kt, const float* v, const float* kr, const float* qr,
                 const float* padding, float* out, int L, float scale, float* scores) {
  constexpr int V = D / N;                 // vectors per row of v
  constexpr int P = Simd::panel(V);        // of them accumulated per pass over the keys
  static_assert(V % P == 0, "the context's panels split a row evenly");
  for (int i = 0; i < L; i += T) {
    int rows[T];  // past the last query, repeat it (computed, never stored)
    for (int t = 0; t < T; ++t) rows[t] = std::min(i + t, L - 1);
    int j0 = 0;
    for (; j0 + N * C <= L; j0 += N * C) score_block<D, T, true>(q, kt, kr, qr, padding, rows, j0, L, scale, scores);
    if (j0 < L) score_block<D, T, false>(q, kt, kr, qr, padding, rows, j0, L, scale, scores);
    for (int t = 0; t < T; ++t) {  // softmax of each row, in place
      float* s = scores + t * L;
      const float top = *std::max_element(s, s + L);
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int j = 0; j < L; ++j) {
        s[j] = std::exp(s[j] - top);
        sum += s[j];
      }
      const float inverse = 1.f / sum;
#pragma omp simd
      for (int j = 0; j < L; ++j) s[j] *= inverse;
    }
    for (int u0 = 0; u0 < V; u0 += P) {  // the context, P vectors of each row at a time
      typename Simd::Vec context[T][P];
      for (int t = 0; t < T; ++t)
        for (int u = 0; u < P; ++u) context[t][u] = Simd::zero();
      for (int j = 0; j < L; ++j) {
        typename Simd::Vec value[P];
        for (int u = 0; u < P; ++u) value[u] = Simd::load(v + j * D + N * (u0 + u));
        for (int t = 0; t < T; ++t) {
          const auto p = Simd::broadcast(scores[t * L + j]);
          for (int u = 0; u < P; ++u) context[t][u] = Simd::fmadd(p, value[u], context[t][u]);
        }
      }
      for (int t = 0; t < T && i + t < L; ++t)
        for (int u = 0; u < P; ++u) Simd::store(out + (i + t) * D + N * (u0 + u), context[t][u]);
    }
  }
}

template <int D>
void attend_all(const float* q, const float* kt, const float* v, const float* kr, const float* qr,
                const float* padding, float* out, int64_t B, int64_t H, int L, float scale) {
  constexpr int T = Simd::rows(D);
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(T * L);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      attend_head<D, T>(q + bh * L * D, kt + bh * D * L, v + bh * L * D, kr + h * D * (2 * L - 1),
                        qr + h * D * (2 * L - 1), padding + b * L, out + bh * L * D, L, scale, scores.data());
    }
  });
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& kt, const torch::Tensor& v, const torch::Tensor& kr,
                     const torch::Tensor& qr, const torch::Tensor& padding, double scale) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), D = q.size(3);
  TORCH_CHECK(L > 0, "at least one query and key");
  for (const auto* t : {&q, &kt, &v, &kr, &qr, &padding}) {
    TORCH_CHECK(t->is_contiguous() && t->scalar_type() == torch::kFloat && t->device().is_cpu(),
                "contiguous float32 CPU tensors expected");
  }
  TORCH_CHECK(kt.sizes() == torch::IntArrayRef({B, H, D, L}) && v.sizes() == q.sizes(), "q, kt, v shapes");
  TORCH_CHECK(kr.sizes() == torch::IntArrayRef({H, D, 2 * L - 1}) && qr.sizes() == kr.sizes(), "kr, qr shapes");
  TORCH_CHECK(padding.sizes() == torch::IntArrayRef({B, L}), "padding shape");
  auto out = torch::empty_like(q);
  decltype(&attend_all<64>) attend_d = nullptr;
  switch (D) {
    case 16: attend_d = attend_all<16>; break;
    case 32: attend_d = attend_all<32>; break;
    case 64: attend_d = attend_all<64>; break;
    case 128: attend_d = attend_all<128>; break;
    default: TORCH_CHECK(false, "head width ", D, " not one of 16, 32, 64, 128 (cpu_kernel.HEAD_SIZES)");
  }
  attend_d(q.data_ptr<float>(), kt.data_ptr<float>(), v.data_ptr<float>(), kr.data_ptr<float>(), qr.data_ptr<float>(),
           padding.data_ptr<float>(), out.data_ptr<float>(), B, H, static_cast<int>(L), static_cast<float>(scale));
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attend", &attend, "Disentangled attention, CPU inference (see the file's head)");
  m.attr("variant") = Simd::kName;  // which build this is: cpu_kernel.VARIANTS
}
