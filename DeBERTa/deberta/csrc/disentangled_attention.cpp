// Disentangled attention for CPU inference, in one pass per block of queries (AVX-512, float32).
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
// Shapes: q, v (B, H, L, d) and kt (B, H, d, L) contiguous; kr, qr (H, d, 2L − 1); padding (B, L).
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int kChunks = 4;  // key vectors of 16 per pass: T·kChunks score accumulators in registers

inline __mmask16 lanes_below(int count) {  // the first `count` of 16 lanes (count may be ≤ 0 or > 16)
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// One (sequence, head): D = head width (a multiple of 16), T = queries per block.
template <int D, int T>
void attend_head(const float* q, const float* kt, const float* v, const float* kr, const float* qr,
                 const float* padding, float* out, int L, float scale, float* scores) {
  constexpr int V = D / 16;  // vectors per row of v
  const int W = 2 * L - 1;
  for (int i = 0; i < L; i += T) {
    int rows[T];  // past the last query, repeat it (computed, never stored)
    for (int t = 0; t < T; ++t) rows[t] = std::min(i + t, L - 1);
    for (int j0 = 0; j0 < L; j0 += 16 * kChunks) {
      __mmask16 keys[kChunks];
      __m512 acc[T][kChunks];
      for (int c = 0; c < kChunks; ++c) {
        keys[c] = lanes_below(L - j0 - 16 * c);
        const __m512 pad = _mm512_maskz_loadu_ps(keys[c], padding + j0 + 16 * c);
        for (int t = 0; t < T; ++t) acc[t][c] = pad;
      }
      for (int e = 0; e < D; ++e) {
        const float* kt_e = kt + e * L + j0;
        // Column of (query i, key j) is L − 1 − i + j: never below 0 or past 2L − 2 for real pairs.
        const float* kr_e = kr + e * W + (L - 1) + j0;
        const float* qr_e = qr + e * W + (L - 1) + j0;
        __m512 query[T], scaled[T];
        for (int t = 0; t < T; ++t) {
          const float x = q[rows[t] * D + e];
          query[t] = _mm512_set1_ps(x);
          scaled[t] = _mm512_set1_ps(x * scale);
        }
        for (int c = 0; c < kChunks; ++c) {
          const __m512 key = _mm512_maskz_loadu_ps(keys[c], kt_e + 16 * c);
          for (int t = 0; t < T; ++t) {
            const int column = 16 * c - rows[t];
            const __m512 kr_v = _mm512_maskz_loadu_ps(keys[c], kr_e + column);
            const __m512 qr_v = _mm512_maskz_loadu_ps(keys[c], qr_e + column);
            acc[t][c] = _mm512_fmadd_ps(key, qr_v, acc[t][c]);             // p2c
            acc[t][c] = _mm512_fmadd_ps(query[t], kr_v, acc[t][c]);        // c2p
            acc[t][c] = _mm512_fmadd_ps(scaled[t], key, acc[t][c]);        // q·k
          }
        }
      }
      for (int t = 0; t < T; ++t)
        for (int c = 0; c < kChunks; ++c) _mm512_mask_storeu_ps(scores + t * L + j0 + 16 * c, keys[c], acc[t][c]);
    }
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
    __m512 context[T][V];
    for (int t = 0; t < T; ++t)
      for (int u = 0; u < V; ++u) context[t][u] = _mm512_setzero_ps();
    for (int j = 0; j < L; ++j) {
      __m512 value[V];
      for (int u = 0; u < V; ++u) value[u] = _mm512_loadu_ps(v + j * D + 16 * u);
      for (int t = 0; t < T; ++t) {
        const __m512 p = _mm512_set1_ps(scores[t * L + j]);
        for (int u = 0; u < V; ++u) context[t][u] = _mm512_fmadd_ps(p, value[u], context[t][u]);
      }
    }
    for (int t = 0; t < T && i + t < L; ++t)
      for (int u = 0; u < V; ++u) _mm512_storeu_ps(out + (i + t) * D + 16 * u, context[t][u]);
  }
}

template <int D>
void attend_all(const float* q, const float* kt, const float* v, const float* kr, const float* qr,
                const float* padding, float* out, int64_t B, int64_t H, int L, float scale) {
  constexpr int T = D <= 64 ? 4 : 2;  // T·D/16 context accumulators in registers
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
}
