// Fused CPU kernels for float32 training (forward and backward): the matrix part of the chunkwise mLSTM, the same
// function as `kernels_axlstm._ChunkwiseMLSTM`, and (after it in this file) three parts of the mixer around it: the
// output tail (`modeling_axlstm._MixerOutput`), the causal conv + SiLU (`_FusedConvSiLU`) and the q / k / v
// projections into the cell's head layout (`_FusedHeads`). Built on first use by `hf_axlstm.cpu_kernels` (torch's C++
// extension loader) and used only where that module registered it; without it the eager implementation runs.
//
// Why: the eager form runs each product for all (batch, head, chunk) triples at once, so every intermediate (scores,
// decay-weighted scores, their gradients, ...) is a full (B, NH, NC, L, L) or (..., L, D) tensor that goes through
// memory once per elementwise step, and MKL's batched small products run at 60-90 GFLOP/s against ~125 for large
// ones on the 2-core machine it was measured on. Here each worker thread takes one (batch, head) sequence at a time
// and runs its chunks one after another with every intermediate in a few hundred KiB of per-thread scratch (L2),
// calling single-threaded sgemm on cache-resident operands; the elementwise steps are loops over those buffers.
//
// Layouts (all contiguous float32, row-major; BH = batch x heads, NC chunks of L positions, D = head dim, DV = value
// dim):
//   q, k (BH, NC, L, D) (q unscaled); v (BH, NC, L, DV); decay (BH, NC, L, L): scale * exp(b_j - row_max_i) on and
//   below the diagonal, 0 above; w (BH, NC, L): the entering state's weight (scale * state_weight); floor, key_weight
//   (BH, NC, L); keep (BH, NC).
// Forward: h (BH, NC, L, DV), n_raw and normaliser (BH, NC, L), and (when asked) the entering states C_in
// (BH, NC, D, DV) and n_in (BH, NC, D). Backward recomputes the states when they were not kept.
//
// The math, per chunk c (C_in[0] = 0, n_in[0] = 0):
//   S = q k^T, A = S * decay, num = A v + w * (q C_in), n_raw = rowsum(A) + w * (q . n_in),
//   normaliser = max(|n_raw|, floor), h = num / (normaliser + eps),
//   C_in[c+1] = keep[c] C_in[c] + (key_weight * k)^T v, n_in[c+1] = keep[c] n_in[c] + colsum(key_weight * k).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
// MKL only (weak: absent from other BLAS builds; the Fortran interface, which takes a pointer): the number of
// threads sgemm may use on the calling thread. torch sets MKL's global count to its own thread count, and MKL then
// starts that many threads inside each worker of the parallel loops below (measured: 2 workers ran 1.9x slower
// than 1).
int mkl_set_num_threads_local_(const int* nt) __attribute__((weak));
}

namespace {

// Row-major C (M x N) = alpha * op(A) op(B) + beta * C, op(A) M x K, op(B) K x N; lda / ldb / ldc are the row
// lengths of the stored matrices. A row-major matrix is the column-major transpose, so this is the column-major
// C^T = op(B)^T op(A)^T.
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  const char tb = trans_b ? 'T' : 'N';
  const char ta = trans_a ? 'T' : 'N';
  sgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

inline float dot(const float* x, const float* y, int n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

class SerialBlas {  // sgemm on the calling thread alone while this lives
 public:
  SerialBlas() {
    const int one = 1;
    if (mkl_set_num_threads_local_) previous_ = mkl_set_num_threads_local_(&one);
  }
  ~SerialBlas() {
    if (mkl_set_num_threads_local_) mkl_set_num_threads_local_(&previous_);  // 0: back to the global setting
  }

 private:
  int previous_ = 0;
};

struct Dims {
  int64_t bh, nc;
  int l, d, dv;
};

// The states entering each chunk of one sequence: c_in (NC, D, DV), n_in (NC, D); kw is (L, D) scratch.
void carry_states(const Dims& s, const float* k, const float* v, const float* key_weight, const float* keep,
                  float* c_in, float* n_in, float* kw) {
  const int l = s.l, d = s.d, dv = s.dv;
  std::fill(c_in, c_in + (int64_t)d * dv, 0.f);
  std::fill(n_in, n_in + d, 0.f);
  for (int64_t c = 0; c + 1 < s.nc; ++c) {
    const float* kc = k + c * l * d;
    const float* vc = v + c * l * dv;
    const float* kwt = key_weight + c * l;
    float* c_next = c_in + (c + 1) * d * dv;
    float* n_next = n_in + (c + 1) * d;
    const float* c_prev = c_in + c * d * dv;
    const float* n_prev = n_in + c * d;
    const float kp = keep[c];
    for (int64_t i = 0; i < (int64_t)d * dv; ++i) c_next[i] = kp * c_prev[i];
    for (int j = 0; j < d; ++j) n_next[j] = kp * n_prev[j];
    for (int u = 0; u < l; ++u) {
      const float wu = kwt[u];
      for (int j = 0; j < d; ++j) {
        const float x = kc[u * d + j] * wu;
        kw[u * d + j] = x;
        n_next[j] += x;
      }
    }
    gemm(true, false, d, dv, l, 1.f, kw, d, vc, dv, 1.f, c_next, dv);  // += Kw^T V
  }
}


void check(const torch::Tensor& t, const char* name, int64_t dims) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous() && t.dim() == dims,
              name, ": expected a contiguous float32 CPU tensor with ", dims, " dims, got ", t.sizes(), " ",
              t.scalar_type(), t.is_contiguous() ? "" : " (not contiguous)");
}

// (B, S, I) rows with a unit channel stride (e.g. one half of the up-projection's output): element (b, s, c) at
// b * stride(0) + s * stride(1) + c.
void check_rows(const torch::Tensor& t, const char* name, int64_t batch, int64_t seq, int64_t inner) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 3 && t.size(0) == batch &&
                  t.size(1) == seq && t.size(2) == inner && t.stride(2) == 1,
              name, ": expected float32 CPU rows (", batch, ", ", seq, ", ", inner, ") with a unit last stride, got ",
              t.sizes(), " strides ", t.strides());
}

Dims dims_of(const torch::Tensor& q, const torch::Tensor& v) {
  return Dims{q.size(0), q.size(1), (int)q.size(2), (int)q.size(3), (int)v.size(3)};
}

}  // namespace

std::vector<torch::Tensor> forward(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor decay,
                                   torch::Tensor w, torch::Tensor floor_, torch::Tensor keep,
                                   torch::Tensor key_weight, double eps, bool keep_states) {
  check(q, "q", 4), check(k, "k", 4), check(v, "v", 4), check(decay, "decay", 4), check(w, "w", 3);
  check(floor_, "floor", 3), check(keep, "keep", 2), check(key_weight, "key_weight", 3);
  const Dims s = dims_of(q, v);
  const int l = s.l, d = s.d, dv = s.dv;
  auto h = torch::empty_like(v);
  auto a_all = torch::empty_like(decay);  // A = S * decay, kept for the backward
  auto n_raw = torch::empty_like(w);
  auto normaliser = torch::empty_like(w);
  auto c_all = keep_states ? torch::empty({s.bh, s.nc, d, dv}, q.options()) : torch::Tensor();
  auto n_all = keep_states ? torch::empty({s.bh, s.nc, d}, q.options()) : torch::Tensor();
  const float feps = (float)eps;
  at::parallel_for(0, s.bh, 1, [&](int64_t begin, int64_t end) {
    SerialBlas serial;
    std::vector<float> kw((size_t)l * d), qw((size_t)l * d);
    std::vector<float> c_buf(keep_states ? 0 : (size_t)s.nc * d * dv), n_buf(keep_states ? 0 : (size_t)s.nc * d);
    for (int64_t bh = begin; bh < end; ++bh) {
      const float* qb = q.data_ptr<float>() + bh * s.nc * l * d;
      const float* kb = k.data_ptr<float>() + bh * s.nc * l * d;
      const float* vb = v.data_ptr<float>() + bh * s.nc * l * dv;
      const float* db = decay.data_ptr<float>() + bh * s.nc * l * l;
      const float* wb = w.data_ptr<float>() + bh * s.nc * l;
      const float* fb = floor_.data_ptr<float>() + bh * s.nc * l;
      const float* kwb = key_weight.data_ptr<float>() + bh * s.nc * l;
      const float* keepb = keep.data_ptr<float>() + bh * s.nc;
      float* hb = h.data_ptr<float>() + bh * s.nc * l * dv;
      float* nrb = n_raw.data_ptr<float>() + bh * s.nc * l;
      float* nmb = normaliser.data_ptr<float>() + bh * s.nc * l;
      float* cb = keep_states ? c_all.data_ptr<float>() + bh * s.nc * d * dv : c_buf.data();
      float* nb = keep_states ? n_all.data_ptr<float>() + bh * s.nc * d : n_buf.data();
      carry_states(s, kb, vb, kwb, keepb, cb, nb, kw.data());
      for (int64_t c = 0; c < s.nc; ++c) {
        const float* qc = qb + c * l * d;
        const float* kc = kb + c * l * d;
        const float* vc = vb + c * l * dv;
        const float* dc = db + c * l * l;
        const float* wc = wb + c * l;
        float* hc = hb + c * l * dv;
        float* a = a_all.data_ptr<float>() + (bh * s.nc + c) * l * l;
        gemm(false, true, l, l, d, 1.f, qc, d, kc, d, 0.f, a, l);  // S = q k^T
        for (int i = 0; i < l; ++i) {
          float* ai = a + i * l;
          const float* di = dc + i * l;
          float r = 0.f;
#pragma omp simd reduction(+ : r)
          for (int j = 0; j < l; ++j) {
            ai[j] *= di[j];
            r += ai[j];
          }
          nrb[c * l + i] = r;  // rowsum(A), the state's term added below
        }
        gemm(false, false, l, dv, l, 1.f, a, l, vc, dv, 0.f, hc, dv);  // num = A v
        if (c > 0) {
          const float* cc = cb + c * d * dv;
          const float* nc_ = nb + c * d;
          for (int i = 0; i < l; ++i) {
            const float wi = wc[i];
            for (int j = 0; j < d; ++j) qw[i * d + j] = wi * qc[i * d + j];
            nrb[c * l + i] += dot(qw.data() + i * d, nc_, d);
          }
          gemm(false, false, l, dv, d, 1.f, qw.data(), d, cc, dv, 1.f, hc, dv);  // num += (w q) C_in
        }
        for (int i = 0; i < l; ++i) {
          const float nr = nrb[c * l + i];
          const float nm = std::max(std::fabs(nr), fb[c * l + i]);
          nmb[c * l + i] = nm;
          const float inv = 1.f / (nm + feps);
          float* hi = hc + i * dv;
          for (int j = 0; j < dv; ++j) hi[j] *= inv;
        }
      }
    }
  });
  if (keep_states) return {h, a_all, n_raw, normaliser, c_all, n_all};
  return {h, a_all, n_raw, normaliser};
}

std::vector<torch::Tensor> backward(torch::Tensor grad_h, torch::Tensor q, torch::Tensor k, torch::Tensor v,
                                    torch::Tensor decay, torch::Tensor a_all, torch::Tensor w, torch::Tensor floor_, torch::Tensor keep,
                                    torch::Tensor key_weight, torch::Tensor n_raw, torch::Tensor normaliser,
                                    torch::Tensor h, torch::Tensor c_all, torch::Tensor n_all, double eps) {
  check(grad_h, "grad_h", 4), check(q, "q", 4), check(k, "k", 4), check(v, "v", 4), check(decay, "decay", 4);
  check(a_all, "A", 4), check(w, "w", 3), check(floor_, "floor", 3), check(keep, "keep", 2);
  check(key_weight, "key_weight", 3), check(n_raw, "n_raw", 3), check(normaliser, "normaliser", 3), check(h, "h", 4);
  const bool kept = c_all.defined() && c_all.numel() > 0;
  if (kept) check(c_all, "c_in", 4), check(n_all, "n_in", 3);
  const Dims s = dims_of(q, v);
  const int l = s.l, d = s.d, dv = s.dv;
  auto grad_q = torch::empty_like(q), grad_k = torch::empty_like(k), grad_v = torch::empty_like(v);
  auto grad_b = torch::empty_like(w), grad_row_max = torch::empty_like(w), grad_w = torch::empty_like(w);
  auto grad_floor = torch::empty_like(w), grad_keep = torch::empty_like(keep);
  auto grad_key_weight = torch::empty_like(key_weight);
  const float feps = (float)eps;
  at::parallel_for(0, s.bh, 1, [&](int64_t begin, int64_t end) {
    SerialBlas serial;
    std::vector<float> ga((size_t)l * l), g((size_t)l * dv), gqc((size_t)l * d);
    std::vector<float> kw((size_t)l * d), qw((size_t)l * d), gkw((size_t)l * d);
    std::vector<float> t((size_t)d * dv), tn(d), graw(l), gqn(l);
    std::vector<float> c_buf(kept ? 0 : (size_t)s.nc * d * dv), n_buf(kept ? 0 : (size_t)s.nc * d);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t o_ld = bh * s.nc * l * d, o_lv = bh * s.nc * l * dv, o_l = bh * s.nc * l;
      const float* qb = q.data_ptr<float>() + o_ld;
      const float* kb = k.data_ptr<float>() + o_ld;
      const float* vb = v.data_ptr<float>() + o_lv;
      const float* ghb = grad_h.data_ptr<float>() + o_lv;
      const float* hb = h.data_ptr<float>() + o_lv;
      const float* db = decay.data_ptr<float>() + bh * s.nc * l * l;
      const float* wb = w.data_ptr<float>() + o_l;
      const float* fb = floor_.data_ptr<float>() + o_l;
      const float* kwb = key_weight.data_ptr<float>() + o_l;
      const float* nrb = n_raw.data_ptr<float>() + o_l;
      const float* nmb = normaliser.data_ptr<float>() + o_l;
      const float* keepb = keep.data_ptr<float>() + bh * s.nc;
      float* gqb = grad_q.data_ptr<float>() + o_ld;
      float* gkb = grad_k.data_ptr<float>() + o_ld;
      float* gvb = grad_v.data_ptr<float>() + o_lv;
      float* gbb = grad_b.data_ptr<float>() + o_l;
      float* grmb = grad_row_max.data_ptr<float>() + o_l;
      float* gwb = grad_w.data_ptr<float>() + o_l;
      float* gfb = grad_floor.data_ptr<float>() + o_l;
      float* gkeepb = grad_keep.data_ptr<float>() + bh * s.nc;
      float* gkwtb = grad_key_weight.data_ptr<float>() + o_l;
      const float* cb;
      const float* nb;
      if (kept) {
        cb = c_all.data_ptr<float>() + bh * s.nc * d * dv;
        nb = n_all.data_ptr<float>() + bh * s.nc * d;
      } else {
        carry_states(s, kb, vb, kwb, keepb, c_buf.data(), n_buf.data(), kw.data());
        cb = c_buf.data();
        nb = n_buf.data();
      }
      std::fill(t.begin(), t.end(), 0.f);  // d/d C_in[c + 1], carried backwards
      std::fill(tn.begin(), tn.end(), 0.f);
      for (int64_t c = s.nc - 1; c >= 0; --c) {
        const int64_t cl = c * l;
        const float* qc = qb + cl * d;
        const float* kc = kb + cl * d;
        const float* vc = vb + cl * dv;
        const float* dc = db + c * l * l;
        const float* wc = wb + cl;
        const float* cc = cb + c * d * dv;
        const float* ncv = nb + c * d;
        float* gq = gqb + cl * d;
        float* gk = gkb + cl * d;
        float* gv = gvb + cl * dv;
        // d/d numerator and d/d normaliser; torch.maximum gives the gradient to the larger argument
        for (int i = 0; i < l; ++i) {
          const float denom = nmb[cl + i] + feps;
          const float* ghi = ghb + (cl + i) * dv;
          const float* hi = hb + (cl + i) * dv;
          float* gi = g.data() + i * dv;
          float gh_h = 0.f;
#pragma omp simd reduction(+ : gh_h)
          for (int j = 0; j < dv; ++j) {
            gi[j] = ghi[j] / denom;
            gh_h += ghi[j] * hi[j];
          }
          const float gn = -gh_h / denom;
          const float nr = nrb[cl + i];
          const bool use_raw = std::fabs(nr) > fb[cl + i];
          graw[i] = use_raw ? gn * (nr > 0.f ? 1.f : (nr < 0.f ? -1.f : 0.f)) : 0.f;
          gfb[cl + i] = use_raw ? 0.f : gn;
        }
        const float* a = a_all.data_ptr<float>() + (bh * s.nc + c) * l * l;  // A = S * decay
        gemm(true, false, l, dv, l, 1.f, a, l, g.data(), dv, 0.f, gv, dv);  // d v = A^T G
        gemm(false, true, l, l, dv, 1.f, g.data(), dv, vc, dv, 0.f, ga.data(), l);  // d A = G v^T (+ graw)
        for (int j = 0; j < l; ++j) gbb[cl + j] = 0.f;
        for (int i = 0; i < l; ++i) {
          float* gai = ga.data() + i * l;
          const float* ai = a + i * l;
          const float* di = dc + i * l;
          float row = 0.f;
#pragma omp simd reduction(+ : row)
          for (int j = 0; j < l; ++j) {
            const float gaij = gai[j] + graw[i];
            const float glog = ai[j] * gaij;  // d/d (b_j - row_max_i)
            row += glog;
            gbb[cl + j] += glog;
            gai[j] = gaij * di[j];  // d S
          }
          grmb[cl + i] = -row;
        }
        gemm(false, false, l, d, l, 1.f, ga.data(), l, kc, d, 0.f, gq, d);  // d q = dS k
        gemm(true, false, l, d, l, 1.f, ga.data(), l, qc, d, 0.f, gk, d);   // d k = dS^T q
        // the entering state's part: num += w * (q C_in), n_raw += w * (q . n_in); chunk 0's state is empty
        if (c == 0) {
          for (int i = 0; i < l; ++i) gwb[i] = 0.f;
        } else {
          gemm(false, true, l, d, dv, 1.f, g.data(), dv, cc, dv, 0.f, gqc.data(), d);  // G C_in^T
        }
        for (int i = 0; c > 0 && i < l; ++i) {
          const float wi = wc[i];
          const float* qi = qc + i * d;
          const float* gqci = gqc.data() + i * d;
          const float qn = dot(qi, ncv, d);
          gwb[cl + i] = dot(gqci, qi, d) + graw[i] * qn;
          gqn[i] = graw[i] * wi;
          float* gqi = gq + i * d;
          for (int j = 0; j < d; ++j) {
            gqi[j] += wi * gqci[j] + gqn[i] * ncv[j];
            qw[i * d + j] = wi * qi[j];
          }
        }
        // the state leaving this chunk: C_in[c + 1] = keep C_in[c] + Kw^T v, n_in[c + 1] = keep n_in[c] + sum Kw
        const float* kwt = kwb + cl;
        if (c + 1 < s.nc) {
          gkeepb[c] = dot(t.data(), cc, d * dv) + dot(tn.data(), ncv, d);
          gemm(false, true, l, d, dv, 1.f, vc, dv, t.data(), dv, 0.f, gkw.data(), d);  // d Kw = v T^T (+ tn)
          for (int u = 0; u < l; ++u)
            for (int j = 0; j < d; ++j) kw[u * d + j] = kc[u * d + j] * kwt[u];
          gemm(false, false, l, dv, d, 1.f, kw.data(), d, t.data(), dv, 1.f, gv, dv);  // d v += Kw T
          for (int u = 0; u < l; ++u) {
            float* gkwu = gkw.data() + u * d;
            const float* ku = kc + u * d;
            float* gku = gk + u * d;
            float s_ = 0.f;
#pragma omp simd reduction(+ : s_)
            for (int j = 0; j < d; ++j) {
              gkwu[j] += tn[j];
              gku[j] += gkwu[j] * kwt[u];
              s_ += gkwu[j] * ku[j];
            }
            gkwtb[cl + u] = s_;
          }
        } else {
          gkeepb[c] = 0.f;
          for (int u = 0; u < l; ++u) gkwtb[cl + u] = 0.f;
        }
        // d/d C_in[c] = (w q)^T G + keep[c] d/d C_in[c + 1] (and the same for n_in)
        if (c > 0) {
          const float kp = keepb[c];
          for (int64_t i = 0; i < (int64_t)d * dv; ++i) t[i] *= kp;
          gemm(true, false, d, dv, l, 1.f, qw.data(), d, g.data(), dv, 1.f, t.data(), dv);
          for (int j = 0; j < d; ++j) {
            float s_ = kp * tn[j];
            for (int i = 0; i < l; ++i) s_ += qc[i * d + j] * gqn[i];
            tn[j] = s_;
          }
        }
      }
    }
  });
  return {grad_q, grad_k, grad_v, grad_b, grad_row_max, grad_w, grad_floor, grad_keep, grad_key_weight};
}

// ------------------------------------------------------------------------------------------------ mixer tail

// The mixer's tail, out = (headnorm(h) * (1 + w) + conv * skip) * silu(z), forward and backward, in one pass over the
// rows each (the eager `_MixerOutput` runs ~10 elementwise passes over (B, S, I) tensors for them).
// h (B, NH, S, DH) contiguous; w, skip (I,) with I = NH * DH; conv, z, silu_z / sig_z, grad_out (B, S, I).

std::vector<torch::Tensor> tail_forward(torch::Tensor h, torch::Tensor w, torch::Tensor conv, torch::Tensor skip,
                                        torch::Tensor silu_z, double eps) {
  check(h, "h", 4), check(w, "norm_weight", 1), check(conv, "conv_act", 3), check(skip, "skip", 1);
  check(silu_z, "silu(z)", 3);
  const int64_t batch = h.size(0), heads = h.size(1), seq = h.size(2), dh = h.size(3), inner = heads * dh;
  auto out = torch::empty({batch, seq, inner}, h.options());
  auto mean = torch::empty({batch, heads, seq}, h.options());
  auto rstd = torch::empty({batch, heads, seq}, h.options());
  const float* hp = h.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* cp = conv.data_ptr<float>();
  const float* sp = skip.data_ptr<float>();
  const float* zp = silu_z.data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* mp = mean.data_ptr<float>();
  float* rp = rstd.data_ptr<float>();
  const float feps = (float)eps;
  at::parallel_for(0, batch * seq, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / seq, s = row % seq;
      for (int64_t head = 0; head < heads; ++head) {
        const int64_t stat = (b * heads + head) * seq + s;
        const float* x = hp + stat * dh;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < dh; ++j) sum += x[j];
        const float mu = sum / dh;
        float sq = 0.f;
#pragma omp simd reduction(+ : sq)
        for (int64_t j = 0; j < dh; ++j) sq += (x[j] - mu) * (x[j] - mu);
        const float r = 1.f / std::sqrt(sq / dh + feps);
        mp[stat] = mu;
        rp[stat] = r;
        const int64_t base = row * inner + head * dh;
        const float* wc = wp + head * dh;
        const float* sc = sp + head * dh;
#pragma omp simd
        for (int64_t j = 0; j < dh; ++j)
          op[base + j] = ((x[j] - mu) * r * (1.f + wc[j]) + cp[base + j] * sc[j]) * zp[base + j];
      }
    }
  });
  return {out, mean, rstd};
}

std::vector<torch::Tensor> tail_backward(torch::Tensor grad_out, torch::Tensor h, torch::Tensor mean,
                                         torch::Tensor rstd, torch::Tensor w, torch::Tensor conv, torch::Tensor skip,
                                         torch::Tensor z, torch::Tensor sig_z) {
  check(grad_out, "grad_out", 3), check(h, "h", 4), check(mean, "mean", 3), check(rstd, "rstd", 3);
  check(w, "norm_weight", 1), check(conv, "conv_act", 3), check(skip, "skip", 1), check(sig_z, "sigmoid(z)", 3);
  const int64_t batch = h.size(0), heads = h.size(1), seq = h.size(2), dh = h.size(3), inner = heads * dh;
  check_rows(z, "z", batch, seq, inner);
  const int64_t z0 = z.stride(0), z1 = z.stride(1);
  auto grad_h = torch::empty_like(h);
  auto grad_conv = torch::empty_like(conv);
  auto grad_z = torch::empty_like(conv);
  const int threads = at::get_num_threads();
  std::vector<float> acc_w((size_t)threads * inner, 0.f), acc_skip((size_t)threads * inner, 0.f);
  const float* gp = grad_out.data_ptr<float>();
  const float* hp = h.data_ptr<float>();
  const float* mp = mean.data_ptr<float>();
  const float* rp = rstd.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* cp = conv.data_ptr<float>();
  const float* sp = skip.data_ptr<float>();
  const float* zp = z.data_ptr<float>();
  const float* sgp = sig_z.data_ptr<float>();
  float* ghp = grad_h.data_ptr<float>();
  float* gcp = grad_conv.data_ptr<float>();
  float* gzp = grad_z.data_ptr<float>();
  at::parallel_for(0, batch * seq, 16, [&](int64_t begin, int64_t end) {
    const int t = at::get_thread_num();
    float* aw = acc_w.data() + (size_t)t * inner;
    float* as = acc_skip.data() + (size_t)t * inner;
    std::vector<float> gn(dh), nx(dh);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / seq, s = row % seq;
      for (int64_t head = 0; head < heads; ++head) {
        const int64_t stat = (b * heads + head) * seq + s;
        const float* x = hp + stat * dh;
        const float mu = mp[stat], r = rp[stat];
        const int64_t base = row * inner + head * dh;
        const int64_t c0 = head * dh;
        const float* zr = zp + b * z0 + s * z1 + c0;
        float sum_gn = 0.f, sum_gnx = 0.f;
#pragma omp simd reduction(+ : sum_gn, sum_gnx)
        for (int64_t j = 0; j < dh; ++j) {
          const float normed = (x[j] - mu) * r;
          const float cs = cp[base + j] * sp[c0 + j];
          const float scale = 1.f + wp[c0 + j];
          const float gated = normed * scale + cs;
          const float sg = sgp[base + j], zz = zr[j];
          const float go = gp[base + j];
          gzp[base + j] = go * gated * sg * (1.f + zz * (1.f - sg));  // d/dz of gated * silu(z)
          const float gg = go * zz * sg;                              // d/d gated
          as[c0 + j] += gg * cp[base + j];
          gcp[base + j] = gg * sp[c0 + j];
          aw[c0 + j] += gg * normed;
          const float g_n = gg * scale;
          gn[j] = g_n;
          nx[j] = normed;
          sum_gn += g_n;
          sum_gnx += g_n * normed;
        }
        const float m1 = sum_gn / dh, m2 = sum_gnx / dh;
        float* gx = ghp + stat * dh;
#pragma omp simd
        for (int64_t j = 0; j < dh; ++j) gx[j] = r * (gn[j] - m1 - nx[j] * m2);
      }
    }
  });
  auto grad_w = torch::zeros({inner}, h.options());
  auto grad_skip = torch::zeros({inner}, h.options());
  float* gwp = grad_w.data_ptr<float>();
  float* gsp = grad_skip.data_ptr<float>();
  for (int t = 0; t < threads; ++t)
    for (int64_t c = 0; c < inner; ++c) {
      gwp[c] += acc_w[(size_t)t * inner + c];
      gsp[c] += acc_skip[(size_t)t * inner + c];
    }
  return {grad_h, grad_w, grad_conv, grad_skip, grad_z};
}

// ------------------------------------------------------------------------------------------------ causal conv + SiLU

namespace {

// exp(x) in plain arithmetic, so that the loops below vectorise (glibc's expf does not): x = n ln2 + r with
// |r| <= ln2 / 2 (n rounded by the 1.5 * 2^23 trick, ln2 split in two for an exact product), a degree-6 polynomial
// for exp(r) (Cephes' expf coefficients), 2^n written into the exponent bits. x is clamped to [-87.3, 88] so that
// 2^n stays a normal float; within that range the relative error is about 2e-7 against expf. (The clamps are
// selects, which GCC vectorises only with -fno-trapping-math: hf_axlstm.cpu_kernels builds with it.)
inline float vexp(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.f ? 88.f : x;
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

inline float sigmoid(float x) { return 1.f / (1.f + vexp(-x)); }

// pre[c] = bias[c] + sum_t taps[t][c] x[s - (K - 1) + t][c] for one row s of a sequence whose rows start at x0
// (row stride xs); taps (K, C), tap K - 1 on the current position.
inline void conv_row(const float* x0, int64_t xs, int64_t s, const float* taps, const float* bias, int64_t kernel,
                     int64_t channels, float* pre) {
  std::copy(bias, bias + channels, pre);
  for (int64_t t = std::max<int64_t>(0, kernel - 1 - s); t < kernel; ++t) {
    const float* xr = x0 + (s - (kernel - 1) + t) * xs;
    const float* wt = taps + t * channels;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) pre[c] += wt[c] * xr[c];
  }
}

std::vector<float> taps_of(const torch::Tensor& weight) {  // (C, K) -> (K, C)
  const int64_t channels = weight.size(0), kernel = weight.size(1);
  const float* wp = weight.data_ptr<float>();
  std::vector<float> taps((size_t)kernel * channels);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t t = 0; t < kernel; ++t) taps[t * channels + c] = wp[c * kernel + t];
  return taps;
}

}  // namespace

// silu(causal depthwise conv(x) + bias), the mixer's `silu(_CausalDepthwiseConv(x_mlstm))`, in one pass over the rows
// (eager: a padded copy, the oneDNN conv and the SiLU). x (B, S, C) rows with a unit channel stride (the
// up-projection's first half); weight (C, K) with tap K - 1 on the current position; bias (C). -> (B, S, C).
torch::Tensor conv_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias) {
  check(weight, "conv weight", 2), check(bias, "conv bias", 1);
  const int64_t channels = weight.size(0), kernel = weight.size(1), batch = x.size(0), seq = x.size(1);
  check_rows(x, "x_mlstm", batch, seq, channels);
  const int64_t x0 = x.stride(0), x1 = x.stride(1);
  auto out = torch::empty({batch, seq, channels}, x.options().memory_format(at::MemoryFormat::Contiguous));
  const std::vector<float> taps = taps_of(weight);
  const float* xp = x.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, batch * seq, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / seq, s = row % seq;
      float* o = op + row * channels;
      conv_row(xp + b * x0, x1, s, taps.data(), bp, kernel, channels, o);
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) o[c] *= sigmoid(o[c]);
    }
  });
  return out;
}

// The gradients of `conv_forward`: grad_x (B, S, C), grad_weight (C, K), grad_bias (C), from grad_act (B, S, C)
// contiguous. Each worker takes blocks of rows of one sequence; it recomputes the pre-activation of its rows and of
// the K - 1 after them (whose gradients reach its rows through the taps), so nothing is kept from the forward but x.
std::vector<torch::Tensor> conv_backward(torch::Tensor grad_act, torch::Tensor x, torch::Tensor weight,
                                         torch::Tensor bias) {
  check(grad_act, "grad_act", 3), check(weight, "conv weight", 2), check(bias, "conv bias", 1);
  const int64_t channels = weight.size(0), kernel = weight.size(1), batch = x.size(0), seq = x.size(1);
  check_rows(x, "x_mlstm", batch, seq, channels);
  TORCH_CHECK(grad_act.size(0) == batch && grad_act.size(1) == seq && grad_act.size(2) == channels,
              "grad_act: expected (", batch, ", ", seq, ", ", channels, "), got ", grad_act.sizes());
  const int64_t x0 = x.stride(0), x1 = x.stride(1);
  constexpr int64_t block = 32;
  const int64_t blocks_per_seq = (seq + block - 1) / block;
  auto grad_x = torch::empty({batch, seq, channels}, grad_act.options());
  const std::vector<float> taps = taps_of(weight);
  const int threads = at::get_num_threads();
  const int64_t acc_size = (kernel + 1) * channels;  // K taps, then the bias
  std::vector<float> acc((size_t)threads * acc_size, 0.f);
  const float* gp = grad_act.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* gxp = grad_x.data_ptr<float>();
  at::parallel_for(0, batch * blocks_per_seq, 1, [&](int64_t begin, int64_t end) {
    float* a = acc.data() + (size_t)at::get_thread_num() * acc_size;
    std::vector<float> gpre((size_t)(block + kernel - 1) * channels);  // d loss / d pre-activation, rows s0 ...
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks_per_seq, s0 = (item % blocks_per_seq) * block;
      const int64_t s1 = std::min(seq, s0 + block), s2 = std::min(seq, s1 + kernel - 1);
      const float* xb = xp + b * x0;
      for (int64_t s = s0; s < s2; ++s) {
        float* g = gpre.data() + (s - s0) * channels;
        const float* ga = gp + (b * seq + s) * channels;
        conv_row(xb, x1, s, taps.data(), bp, kernel, channels, g);
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) {
          const float pre = g[c], sg = sigmoid(pre);
          g[c] = ga[c] * sg * (1.f + pre * (1.f - sg));  // silu'(pre)
        }
        if (s >= s1) continue;  // a later block's row: only its effect on this block's grad_x is needed
        float* ab = a + kernel * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) ab[c] += g[c];
        for (int64_t t = std::max<int64_t>(0, kernel - 1 - s); t < kernel; ++t) {
          const float* xr = xb + (s - (kernel - 1) + t) * x1;
          float* at = a + t * channels;
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) at[c] += g[c] * xr[c];
        }
      }
      for (int64_t s = s0; s < s1; ++s) {  // grad_x[s] = sum_t taps[t] gpre[s + K - 1 - t]
        float* gx = gxp + (b * seq + s) * channels;
        std::fill(gx, gx + channels, 0.f);
        for (int64_t t = 0; t < kernel; ++t) {
          const int64_t src = s + kernel - 1 - t;
          if (src >= seq) continue;
          const float* g = gpre.data() + (src - s0) * channels;
          const float* wt = taps.data() + t * channels;
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) gx[c] += wt[c] * g[c];
        }
      }
    }
  });
  auto grad_weight = torch::zeros({channels, kernel}, weight.options());
  auto grad_bias = torch::zeros({channels}, bias.options());
  float* gwp = grad_weight.data_ptr<float>();
  float* gbp = grad_bias.data_ptr<float>();
  for (int t = 0; t < threads; ++t) {
    const float* a = acc.data() + (size_t)t * acc_size;
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t k = 0; k < kernel; ++k) gwp[c * kernel + k] += a[k * channels + c];
      gbp[c] += a[kernel * channels + c];
    }
  }
  return {grad_x, grad_weight, grad_bias};
}

// ------------------------------------------------------------------------------------------------ q, k, v heads

// The mixer's q, k and v in the cell's head layout: q = tiles_qk(c), k = c, v = tiles_v(x), where tiles (G, W, W)
// are block-diagonal maps over W-channel groups (row g*W + i of the input to column g*W + j of the output through
// tiles[g][i][j], as `_tiled_matmul`), c and x (B, S, I) rows with a unit channel stride, and the outputs
// (B, NH, S, DH) with I = NH * DH. The eager form runs a batched product over the tiles and a layout copy for each
// (and their reverses in the backward); here each row is read once and its head slices written.

namespace {

// out[j] = sum_i in[i] tile[i][j] for one W-wide group (W = 0: the runtime width w).
template <int W>
inline void tile_row(const float* in, const float* tile, int w_, float* out) {
  const int w = W ? W : w_;
  float acc[W ? W : 64];
  for (int j = 0; j < w; ++j) acc[j] = 0.f;
  for (int i = 0; i < w; ++i) {
    const float xi = in[i];
    const float* t = tile + i * w;
#pragma omp simd
    for (int j = 0; j < w; ++j) acc[j] += xi * t[j];
  }
  for (int j = 0; j < w; ++j) out[j] = acc[j];
}

// acc[i][j] += sum_r in_r[i] grad_r[j] over `rows` rows (in_r = in[r], grad_r = grad + r * grad_stride).
template <int W>
inline void tile_outer(const float* const* in, const float* grad, int64_t grad_stride, int64_t rows, int w_,
                       float* acc) {
  const int w = W ? W : w_;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in[r];
    const float* g = grad + r * grad_stride;
    for (int i = 0; i < w; ++i) {
      const float xi = x[i];
      float* a = acc + i * w;
#pragma omp simd
      for (int j = 0; j < w; ++j) a[j] += xi * g[j];
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// The 16-wide forms with AVX2 intrinsics: the loops above run as chains of dependent FMAs (one accumulator), here
// four independent pairs of accumulators cover the FMA latency.
template <>
inline void tile_row<16>(const float* in, const float* tile, int, float* out) {
  __m256 a[8];
  for (int u = 0; u < 8; ++u) a[u] = _mm256_setzero_ps();
  for (int i = 0; i < 16; i += 4)
    for (int u = 0; u < 4; ++u) {
      const __m256 xi = _mm256_broadcast_ss(in + i + u);
      a[2 * u] = _mm256_fmadd_ps(xi, _mm256_loadu_ps(tile + 16 * (i + u)), a[2 * u]);
      a[2 * u + 1] = _mm256_fmadd_ps(xi, _mm256_loadu_ps(tile + 16 * (i + u) + 8), a[2 * u + 1]);
    }
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[4], a[6])));
  _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_add_ps(a[1], a[3]), _mm256_add_ps(a[5], a[7])));
}

// Four rows of acc at a time in registers, over all the rows.
template <>
inline void tile_outer<16>(const float* const* in, const float* grad, int64_t grad_stride, int64_t rows, int,
                           float* acc) {
  for (int i = 0; i < 16; i += 4) {
    __m256 a[8];
    for (int u = 0; u < 8; ++u) a[u] = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = grad + r * grad_stride;
      const __m256 g0 = _mm256_loadu_ps(g), g1 = _mm256_loadu_ps(g + 8);
      for (int u = 0; u < 4; ++u) {
        const __m256 xi = _mm256_broadcast_ss(in[r] + i + u);
        a[2 * u] = _mm256_fmadd_ps(xi, g0, a[2 * u]);
        a[2 * u + 1] = _mm256_fmadd_ps(xi, g1, a[2 * u + 1]);
      }
    }
    for (int u = 0; u < 4; ++u) {
      float* dst = acc + 16 * (i + u);
      _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), a[2 * u]));
      _mm256_storeu_ps(dst + 8, _mm256_add_ps(_mm256_loadu_ps(dst + 8), a[2 * u + 1]));
    }
  }
}
#endif

struct HeadDims {
  int64_t batch, seq, heads, dh, inner, groups;
  int w;
  // where row (b, s)'s channels of head h start in a (B, NH, S, DH) tensor
  int64_t head_offset(int64_t row, int64_t h) const { return ((row / seq * heads + h) * seq + row % seq) * dh; }
};

template <int W>
void heads_forward_rows(const HeadDims& d, const float* cp, int64_t c0, int64_t c1, const float* xp, int64_t x0,
                        int64_t x1, const float* qk, const float* vt, float* qp, float* kp, float* vp) {
  at::parallel_for(0, d.batch * d.seq, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> qrow(d.inner), vrow(d.inner);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / d.seq, s = row % d.seq;
      const float* c = cp + b * c0 + s * c1;
      const float* x = xp + b * x0 + s * x1;
      for (int64_t g = 0; g < d.groups; ++g) {
        tile_row<W>(c + g * d.w, qk + g * d.w * d.w, d.w, qrow.data() + g * d.w);
        tile_row<W>(x + g * d.w, vt + g * d.w * d.w, d.w, vrow.data() + g * d.w);
      }
      for (int64_t h = 0; h < d.heads; ++h) {
        const int64_t o = d.head_offset(row, h);
        std::copy(qrow.data() + h * d.dh, qrow.data() + (h + 1) * d.dh, qp + o);
        std::copy(c + h * d.dh, c + (h + 1) * d.dh, kp + o);
        std::copy(vrow.data() + h * d.dh, vrow.data() + (h + 1) * d.dh, vp + o);
      }
    }
  });
}

// grad_in (rows, I) = sum_j tiles[g][:, j] grad_out[g*W + j] per group, plus (when `add`) a head-layout term; and
// grad_tiles[g][i][j] += in[g*W + i] grad_out[g*W + j] summed over the rows, in per-thread accumulators.
template <int W>
void heads_backward_rows(const HeadDims& d, const float* grad_heads, const float* add_heads, const float* in,
                         int64_t i0, int64_t i1, const float* tiles_t, float* grad_in, float* acc_all) {
  constexpr int64_t block = 16;
  const int64_t rows = d.batch * d.seq, tile_size = (int64_t)d.w * d.w;
  at::parallel_for(0, (rows + block - 1) / block, 1, [&](int64_t begin, int64_t end) {
    float* acc = acc_all + (size_t)at::get_thread_num() * d.groups * tile_size;
    std::vector<float> go((size_t)block * d.inner);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r0 = item * block, r1 = std::min(rows, r0 + block);
      for (int64_t row = r0; row < r1; ++row) {  // this row's output gradient, from the head layout
        float* g = go.data() + (row - r0) * d.inner;
        float* gi = grad_in + row * d.inner;
        for (int64_t h = 0; h < d.heads; ++h) {
          const int64_t o = d.head_offset(row, h);
          std::copy(grad_heads + o, grad_heads + o + d.dh, g + h * d.dh);
          if (add_heads) std::copy(add_heads + o, add_heads + o + d.dh, gi + h * d.dh);
        }
        for (int64_t grp = 0; grp < d.groups; ++grp) {
          float* out = gi + grp * d.w;
          float part[W ? W : 64];
          tile_row<W>(g + grp * d.w, tiles_t + grp * tile_size, d.w, part);
          if (add_heads) {
            for (int j = 0; j < d.w; ++j) out[j] += part[j];
          } else {
            for (int j = 0; j < d.w; ++j) out[j] = part[j];
          }
        }
      }
      const float* in_rows[block];
      for (int64_t row = r0; row < r1; ++row) in_rows[row - r0] = in + row / d.seq * i0 + row % d.seq * i1;
      for (int64_t grp = 0; grp < d.groups; ++grp) {
        for (int64_t r = 0; r < r1 - r0; ++r) in_rows[r] += grp ? d.w : 0;
        tile_outer<W>(in_rows, go.data() + grp * d.w, d.inner, r1 - r0, d.w, acc + grp * tile_size);
      }
    }
  });
}

HeadDims head_dims(const torch::Tensor& c, const torch::Tensor& tiles, int64_t heads) {
  check(tiles, "tiles", 3);
  const int64_t batch = c.size(0), seq = c.size(1), inner = c.size(2);
  TORCH_CHECK(tiles.size(1) == tiles.size(2) && tiles.size(0) * tiles.size(1) == inner && tiles.size(1) <= 64,
              "tiles: expected (G, W, W) with G * W = ", inner, " and W <= 64, got ", tiles.sizes());
  TORCH_CHECK(heads > 0 && inner % heads == 0, "heads: ", heads, " does not divide ", inner, " channels");
  return HeadDims{batch, seq, heads, inner / heads, inner, tiles.size(0), (int)tiles.size(1)};
}

torch::Tensor transposed_tiles(const torch::Tensor& tiles) { return tiles.transpose(1, 2).contiguous(); }

}  // namespace

std::vector<torch::Tensor> heads_forward(torch::Tensor c, torch::Tensor x, torch::Tensor qk_tiles,
                                         torch::Tensor v_tiles, int64_t heads) {
  const HeadDims d = head_dims(c, qk_tiles, heads);
  check(v_tiles, "v_tiles", 3);
  TORCH_CHECK(v_tiles.sizes() == qk_tiles.sizes(), "v_tiles: expected ", qk_tiles.sizes(), ", got ", v_tiles.sizes());
  check_rows(c, "conv_act", d.batch, d.seq, d.inner), check_rows(x, "x_mlstm", d.batch, d.seq, d.inner);
  auto opts = c.options().memory_format(at::MemoryFormat::Contiguous);
  auto q = torch::empty({d.batch, heads, d.seq, d.dh}, opts);
  auto k = torch::empty_like(q), v = torch::empty_like(q);
  auto run = d.w == 16 ? heads_forward_rows<16> : heads_forward_rows<0>;
  run(d, c.data_ptr<float>(), c.stride(0), c.stride(1), x.data_ptr<float>(), x.stride(0), x.stride(1),
      qk_tiles.data_ptr<float>(), v_tiles.data_ptr<float>(), q.data_ptr<float>(), k.data_ptr<float>(),
      v.data_ptr<float>());
  return {q, k, v};
}

// -> grad_c (B, S, I) (through q and k), grad_x (B, S, I), grad_qk_tiles, grad_v_tiles (G, W, W).
std::vector<torch::Tensor> heads_backward(torch::Tensor grad_q, torch::Tensor grad_k, torch::Tensor grad_v,
                                          torch::Tensor c, torch::Tensor x, torch::Tensor qk_tiles,
                                          torch::Tensor v_tiles) {
  const int64_t heads = grad_q.size(1);
  const HeadDims d = head_dims(c, qk_tiles, heads);
  check(v_tiles, "v_tiles", 3);
  check_rows(c, "conv_act", d.batch, d.seq, d.inner), check_rows(x, "x_mlstm", d.batch, d.seq, d.inner);
  for (const auto* g : {&grad_q, &grad_k, &grad_v}) {
    check(*g, "grad_qkv", 4);
    TORCH_CHECK(g->size(0) == d.batch && g->size(1) == heads && g->size(2) == d.seq && g->size(3) == d.dh,
                "grad_qkv: expected (", d.batch, ", ", heads, ", ", d.seq, ", ", d.dh, "), got ", g->sizes());
  }
  auto opts = c.options().memory_format(at::MemoryFormat::Contiguous);
  auto grad_c = torch::empty({d.batch, d.seq, d.inner}, opts), grad_x = torch::empty_like(grad_c);
  const int threads = at::get_num_threads();
  const size_t acc_size = (size_t)d.groups * d.w * d.w;
  std::vector<float> acc_qk(threads * acc_size, 0.f), acc_v(threads * acc_size, 0.f);
  const auto qk_t = transposed_tiles(qk_tiles), v_t = transposed_tiles(v_tiles);
  auto run = d.w == 16 ? heads_backward_rows<16> : heads_backward_rows<0>;
  run(d, grad_q.data_ptr<float>(), grad_k.data_ptr<float>(), c.data_ptr<float>(), c.stride(0), c.stride(1),
      qk_t.data_ptr<float>(), grad_c.data_ptr<float>(), acc_qk.data());
  run(d, grad_v.data_ptr<float>(), nullptr, x.data_ptr<float>(), x.stride(0), x.stride(1), v_t.data_ptr<float>(),
      grad_x.data_ptr<float>(), acc_v.data());
  auto grad_qk = torch::zeros_like(qk_tiles), grad_vt = torch::zeros_like(v_tiles);
  float* gq = grad_qk.data_ptr<float>();
  float* gv = grad_vt.data_ptr<float>();
  for (int t = 0; t < threads; ++t)
    for (size_t i = 0; i < acc_size; ++i) {
      gq[i] += acc_qk[t * acc_size + i];
      gv[i] += acc_v[t * acc_size + i];
    }
  return {grad_c, grad_x, grad_qk, grad_vt};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "chunkwise mLSTM cell forward (float32, CPU)");
  m.def("backward", &backward, "chunkwise mLSTM cell backward (float32, CPU)");
  m.def("tail_forward", &tail_forward, "the mixer's output tail, forward (float32, CPU)");
  m.def("tail_backward", &tail_backward, "the mixer's output tail, backward (float32, CPU)");
  m.def("conv_forward", &conv_forward, "the mixer's causal depthwise conv + SiLU, forward (float32, CPU)");
  m.def("conv_backward", &conv_backward, "the mixer's causal depthwise conv + SiLU, backward (float32, CPU)");
  m.def("heads_forward", &heads_forward, "the mixer's q, k, v in head layout, forward (float32, CPU)");
  m.def("heads_backward", &heads_backward, "the mixer's q, k, v in head layout, backward (float32, CPU)");
}
