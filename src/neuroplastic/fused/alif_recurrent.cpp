// A recurrent layer of e-prop's adaptive LIF neurons (the LSNN cell) over a whole sequence: the time
// loop of the forward and of the backward pass in C++, one (B×N)·(N×N) product per step each. The
// weight is (M, N, N): M models (a population), the batch's rows in M consecutive groups, one each. The
// equations and their derivation live in recurrent.py, and tests/test_recurrent_fused.py holds both
// passes to autograd through the step path.
//
//   forward:   I_t = X_t + z_{t−1} Wᵀ,   v_t = (α v_{t−1} + I_t) − θ z_{t−1},   a_t = ρ a_{t−1} + z_{t−1}
//              u_t = (v_t − (θ + β a_t)) / θ,   z_t = H(u_t) · [r_{t−1} ≤ dt/2]
//              r_t = t_ref if z_t else max(r_{t−1} − dt, 0)                       (refractory, ms)
//              h_t = σ'(u_t) / θ · [r_{t−1} ≤ dt/2]           (∂z_t/∂v_t, where a backward or a recording reads it)
//   backward:  c_t = g^z_t + ĝ^a_{t+1} − k ĝ^v_{t+1} + ĝ^v_{t+1} W                (c_{T−1} = g^z_{T−1})
//              ĝ^v_t = h_t c_t + α ĝ^v_{t+1},   ĝ^a_t = −β h_t c_t + ρ ĝ^a_{t+1}   (+ the final state's)
//              (ĝ^v_{t+1} W only where h_t ≠ 0 when a step has at most max_pseudo of them: pseudo_product)
//
// Each step's elementwise work is in the operations and the order of the step path (ALIF.step), so
// the spikes are its spikes; the products are ATen's, the ones the step path's linear calls. Across
// the B·N neurons of a step the work is small: it runs on one thread, the products on all.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "alif_step.h"
#include "masked_product.h"
#include "shared.h"

#include <optional>
#include <vector>

namespace {

// rec = z Wᵀ event by event for binary spikes z (batch × width): for each spike, a row of Wᵀ added
// (in the order of the columns, whatever the batch), instead of a multiply-add per synapse.
template <typename T>
NP_CLONES void spike_product(int64_t batch, int64_t width, const T* __restrict__ z, const T* __restrict__ wt,
                             T* __restrict__ rec) {
  for (int64_t b = 0; b < batch; ++b) {
    T* out = rec + b * width;
    std::fill(out, out + width, T(0));
    for_each_nonzero(width, z + b * width, [&](int64_t j) {
      const T* row = wt + j * width;
      for (int64_t i = 0; i < width; ++i) out[i] += row[i];
    });
  }
}

// One step of a row of neurons after the product gave rec = z_{t−1} Wᵀ (alif_step.h).
template <int64_t K, bool Exact, bool Keep, typename T>
NP_CLONES int64_t forward_row(int64_t n, const T* __restrict__ x, const T* __restrict__ rec,
                              const T* __restrict__ alpha, const T* __restrict__ rho, const Cell<T>& c,
                              const Surrogate<T>& s, const T* __restrict__ z_prev, T* __restrict__ v,
                              T* __restrict__ a, T* __restrict__ r, T* __restrict__ z, T* __restrict__ h) {
  return alif_step<K, Exact, Keep>(n, x, rec, alpha, rho, c, s, z_prev, v, a, r, z, h);
}

// out = x w per model: the rows of x (batch × width) in M groups, w (M, width, width); one model: mm.
void product(at::Tensor& out, const at::Tensor& x, const at::Tensor& w, int64_t models) {
  if (models == 1) {
    at::mm_out(out, x.view({x.size(0), x.size(1)}), w[0]);
    return;
  }
  const int64_t rows = x.size(0) / models, width = x.size(1);
  at::Tensor grouped = out.view({models, rows, width});
  at::bmm_out(grouped, x.view({models, rows, width}), w);
}

void alif_recurrent_forward(const at::Tensor& currents, const std::optional<at::Tensor>& recurrent,
                            const at::Tensor& alpha, const at::Tensor& rho, double threshold,
                            double adaptation, double t_ref, double dt, int64_t kind,
                            at::ArrayRef<double> constants, int64_t max_events, const at::Tensor& z0,
                            at::Tensor v, at::Tensor a, at::Tensor refractory, at::Tensor spikes,
                            const std::optional<at::Tensor>& h) {
  TORCH_CHECK(currents.dim() == 3 && currents.size(0) > 0, "currents must be (T, B, N), T > 0");
  TORCH_CHECK(constants.size() == 3, "three surrogate constants");
  const int64_t steps = currents.size(0), batch = currents.size(1), width = currents.size(2);
  // no weight: a layer without recurrence (its ψ recorded the same way)
  const at::Tensor weight = recurrent ? *recurrent : currents.new_zeros({1, 1, 1});
  const int64_t neurons = batch * width, models = weight.size(0), rows = batch / models;
  check(currents, currents, steps * neurons, "currents");
  TORCH_CHECK(weight.dim() == 3 && batch % models == 0, "weight must be (M, N, N), M dividing the batch");
  if (recurrent) check(weight, currents, models * width * width, "weight");
  for (const auto* row : {&alpha, &rho}) check(*row, currents, width, "alpha and rho");
  for (const at::Tensor* row : {&z0, static_cast<const at::Tensor*>(&v), static_cast<const at::Tensor*>(&a),
                                static_cast<const at::Tensor*>(&refractory)})
    check(*row, currents, neurons, "the state");
  check(spikes, currents, steps * neurons, "spikes");
  if (h) check(*h, currents, steps * neurons, "h");
  const at::Tensor weight_t = weight.transpose(1, 2);
  const at::Tensor rows_t = max_events >= 0 && recurrent ? weight_t.contiguous() : weight_t;
  at::Tensor rec = at::empty({batch, width}, currents.options());
  const bool binary_start = max_events >= 0 && z0.eq(0).logical_or(z0.eq(1)).all().item<bool>();
  AT_DISPATCH_FLOATING_TYPES(currents.scalar_type(), "alif_recurrent_forward", [&] {
    const auto theta = static_cast<scalar_t>(threshold);
    const Cell<scalar_t> cell{theta, static_cast<scalar_t>(adaptation), static_cast<scalar_t>(t_ref),
                              static_cast<scalar_t>(dt), static_cast<scalar_t>(dt / 2)};
    const auto s = make_surrogate<scalar_t>(scalar_t(0), constants);
    const scalar_t* x = currents.const_data_ptr<scalar_t>();
    const scalar_t* al = alpha.const_data_ptr<scalar_t>();
    const scalar_t* rh = rho.const_data_ptr<scalar_t>();
    scalar_t* vs = v.mutable_data_ptr<scalar_t>();
    scalar_t* as = a.mutable_data_ptr<scalar_t>();
    scalar_t* rs = refractory.mutable_data_ptr<scalar_t>();
    scalar_t* hs = h ? h->mutable_data_ptr<scalar_t>() : nullptr;
    with_kind(kind, s, [&](auto k, auto exact) {
      at::Tensor z_prev = z0.view({batch, width});
      int64_t events = max_events >= 0 ? z0.count_nonzero().item<int64_t>() : 0;
      for (int64_t t = 0; t < steps; ++t) {
        if (!recurrent) {
          if (t == 0) rec.zero_();
        } else if (max_events >= 0 && events <= max_events && (t > 0 || binary_start)) {
          for (int64_t m = 0; m < models; ++m) {
            spike_product(rows, width, z_prev.const_data_ptr<scalar_t>() + m * rows * width,
                          rows_t.const_data_ptr<scalar_t>() + m * width * width,
                          rec.mutable_data_ptr<scalar_t>() + m * rows * width);
          }
        } else {
          product(rec, z_prev, weight_t, models);
        }
        at::Tensor z = spikes[t];
        const int64_t at = t * neurons;
        events = 0;
        for (int64_t row = 0; row < neurons; row += width) {
          const auto step_row = [&](auto keep) {
            return forward_row<decltype(k)::value, decltype(exact)::value, decltype(keep)::value>(
                width, x + at + row, rec.const_data_ptr<scalar_t>() + row, al, rh, cell, s,
                z_prev.const_data_ptr<scalar_t>() + row, vs + row, as + row, rs + row,
                z.mutable_data_ptr<scalar_t>() + row, hs == nullptr ? nullptr : hs + at + row);
          };
          events += hs ? step_row(std::true_type{}) : step_row(std::false_type{});
        }
        z_prev = z;
      }
    });
  });
}

// One step back for a row of neurons, from c_t's parts: ĝ^v_t and ĝ^a_t.
template <typename T>
NP_CLONES void backward_row(int64_t n, const T* __restrict__ h, const T* __restrict__ gz,
                            const T* __restrict__ back, const T* __restrict__ gv_next,
                            const T* __restrict__ ga_next, const T* __restrict__ alpha,
                            const T* __restrict__ rho, T beta, T reset, T* __restrict__ gv,
                            T* __restrict__ ga) {
  for (int64_t i = 0; i < n; ++i) {
    const T c = gz[i] + ga_next[i] - reset * gv_next[i] + back[i];
    gv[i] = h[i] * c + alpha[i] * gv_next[i];
    ga[i] = -beta * h[i] * c + rho[i] * ga_next[i];
  }
}

// gt[m][j, :] += s_bj ĝ_b for every spike s_bj ≠ 0 of model m's rows: the weight gradient's
// transpose, (dL/dW_m)ᵀ = Σ_t z_{t−1}ᵀ ĝ^v_t, summed spike by spike.
template <typename T>
NP_CLONES void add_spike_rows(int64_t models, int64_t rows, int64_t width, const T* __restrict__ z,
                              const T* __restrict__ g, T* __restrict__ gt) {
  for (int64_t m = 0; m < models; ++m) {
    for (int64_t b = m * rows; b < (m + 1) * rows; ++b) {
      for_each_nonzero(width, z + b * width, [&](int64_t j) {
        const T s = z[b * width + j];
        T* out = gt + (m * width + j) * width;
        const T* row = g + b * width;
        for (int64_t i = 0; i < width; ++i) out[i] += s * row[i];
      });
    }
  }
}

// ĝ^v into grad (T, B, N: dL/dX) and ĝ^a_0 into grad_a0, latest step first. grad_spikes arrives as
// a contiguous base and a step stride (0: one row for every step), the final state's gradients as rows.
void alif_recurrent_backward(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& alpha,
                             const at::Tensor& rho, double adaptation, double reset,
                             const at::Tensor& grad_spikes, int64_t spikes_stride, const at::Tensor& grad_v,
                             const at::Tensor& grad_a, at::Tensor grad, at::Tensor grad_a0,
                             const std::optional<at::Tensor>& spikes, const std::optional<at::Tensor>& z0,
                             const std::optional<at::Tensor>& grad_weight_t, int64_t max_pseudo) {
  TORCH_CHECK(h.dim() == 3 && h.size(0) > 0, "h must be (T, B, N), T > 0");
  const int64_t steps = h.size(0), batch = h.size(1), width = h.size(2), neurons = batch * width;
  const int64_t models = weight.size(0);
  check(h, h, steps * neurons, "h");
  TORCH_CHECK(weight.dim() == 3 && batch % models == 0, "weight must be (M, N, N), M dividing the batch");
  check(weight, h, models * width * width, "weight");
  for (const auto* row : {&alpha, &rho}) check(*row, h, width, "alpha and rho");
  TORCH_CHECK(spikes_stride == 0 || spikes_stride == neurons, "the spikes' step stride must be 0 or B·N");
  check(grad_spikes, h, spikes_stride == 0 ? neurons : steps * neurons, "grad_spikes");
  for (const at::Tensor* row : {&grad_v, &grad_a, static_cast<const at::Tensor*>(&grad_a0)})
    check(*row, h, neurons, "the state's gradients");
  check(grad, h, steps * neurons, "grad");
  if (grad_weight_t) {
    TORCH_CHECK(spikes && z0, "the weight gradient needs the spikes and z0");
    check(*spikes, h, steps * neurons, "spikes");
    check(*z0, h, neurons, "z0");
    check(*grad_weight_t, h, models * width * width, "grad_weight_t");
  }
  at::Tensor rec = at::empty({batch, width}, h.options());
  const at::Tensor columns = max_pseudo > 0 ? weight.transpose(1, 2).contiguous() : weight;  // Wᵀ's rows
  // |(ĝ W)[b, j]| ≤ max|ĝ| · max_j Σ_i |W[i, j]|: below the largest number, no sum of the masked product
  // overflows, and a NaN or infinity anywhere fails the test — then the dense product spreads it as
  // the step path does (0 · inf, 0 · NaN where h = 0).
  const double column_norm = max_pseudo > 0 ? columns.abs().sum(-1).max().item<double>() : 0.0;
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "alif_recurrent_backward", [&] {
    const auto accumulate = [&](int64_t t) {  // ĝ^v_t's share of the weight gradient
      if (!grad_weight_t) return;
      const scalar_t* prev = t == 0 ? z0->const_data_ptr<scalar_t>()
                                    : spikes->const_data_ptr<scalar_t>() + (t - 1) * neurons;
      add_spike_rows(models, batch / models, width, prev, grad.const_data_ptr<scalar_t>() + t * neurons,
                     grad_weight_t->mutable_data_ptr<scalar_t>());
    };
    const auto beta = static_cast<scalar_t>(adaptation), k = static_cast<scalar_t>(reset);
    const scalar_t* al = alpha.const_data_ptr<scalar_t>();
    const scalar_t* rh = rho.const_data_ptr<scalar_t>();
    const scalar_t* gz = grad_spikes.const_data_ptr<scalar_t>();
    std::vector<scalar_t> ga(2 * neurons);
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    for (int64_t t = steps - 1; t >= 0; --t) {
      const scalar_t* ht = h.const_data_ptr<scalar_t>() + t * neurons;
      const scalar_t* gzt = gz + t * spikes_stride;
      scalar_t* gv = g + t * neurons;
      scalar_t* ga_now = ga.data() + (t & 1) * neurons;
      if (t == steps - 1) {
        const scalar_t* fv = grad_v.const_data_ptr<scalar_t>();
        const scalar_t* fa = grad_a.const_data_ptr<scalar_t>();
        for (int64_t i = 0; i < neurons; ++i) {
          const scalar_t c = gzt[i];
          gv[i] = ht[i] * c + fv[i];
          ga_now[i] = -beta * ht[i] * c + fa[i];
        }
        accumulate(t);
        continue;
      }
      const scalar_t* gv_next = gv + neurons;
      const scalar_t* ga_next = ga.data() + ((t + 1) & 1) * neurons;
      const int64_t pseudo = std::count_if(ht, ht + neurons, [](scalar_t x) { return x != scalar_t(0); });
      if (pseudo <= max_pseudo && bounded(gv_next, neurons, column_norm)) {  // ĝ^v_{t+1} W where h_t needs it
        const int64_t rows = batch / models;
        for (int64_t m = 0; m < models; ++m) {
          pseudo_product(rows, width, ht + m * rows * width, gv_next + m * rows * width,
                         columns.const_data_ptr<scalar_t>() + m * width * width,
                         rec.mutable_data_ptr<scalar_t>() + m * rows * width);
        }
      } else {
        product(rec, grad[t + 1], weight, models);
      }
      const scalar_t* back = rec.const_data_ptr<scalar_t>();
      for (int64_t row = 0; row < neurons; row += width) {
        backward_row(width, ht + row, gzt + row, back + row, gv_next + row, ga_next + row, al, rh, beta, k,
                     gv + row, ga_now + row);
      }
      accumulate(t);
    }
    std::copy(ga.begin(), ga.begin() + neurons, grad_a0.mutable_data_ptr<scalar_t>());
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("alif_recurrent_forward(Tensor currents, Tensor? weight, Tensor alpha, Tensor rho, float threshold, "
        "float adaptation, float t_ref, float dt, int kind, float[] constants, int max_events, Tensor z0, "
        "Tensor(a!) v, "
        "Tensor(b!) a, Tensor(c!) refractory, Tensor(d!) spikes, Tensor(e!)? h) -> ()");
  m.def("alif_recurrent_backward(Tensor h, Tensor weight, Tensor alpha, Tensor rho, float adaptation, "
        "float reset, Tensor grad_spikes, int spikes_stride, Tensor grad_v, Tensor grad_a, Tensor(a!) grad, "
        "Tensor(b!) grad_a0, Tensor? spikes, Tensor? z0, Tensor(c!)? grad_weight_t, int max_pseudo) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("alif_recurrent_forward", alif_recurrent_forward);
  m.impl("alif_recurrent_backward", alif_recurrent_backward);
}
