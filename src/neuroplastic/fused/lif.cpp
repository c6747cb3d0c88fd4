// Fused CPU kernels for the leaky integrate-and-fire recurrence over a whole sequence. The equations
// and their derivation live in lif.py; fallback.py is the same loops in PyTorch, and
// tests/test_fused.py checks both against autograd through the step path.
//
//   forward:   v_t = β v_{t−1} + I_t − θ z_{t−1},   z_t = H(v_t − θ)
//   backward:  ḡ_t = h_t (g^z_t − k ḡ_{t+1}) + β ḡ_{t+1},   ḡ_{T−1} = h_{T−1} g^z_{T−1} + g^v,
//              k = θ (0 if detached), g^v the gradient of the final voltage
//
// Every one of the B·N neurons is independent, so the threads split the neurons and each sweeps the
// whole time axis over a block of them: one parallel region per pass, and the rows of state stay in
// cache. Two backward passes:
//
// - lif_backward reads h_t = σ'(v_t − θ) as given (any surrogate, evaluated by PyTorch from the
//   voltages the forward kept at every step), over a chunk of steps.
// - lif_backward_recompute evaluates a built-in surrogate itself, h_t = σ'((v_t − θ)/w)/w, with the
//   operations of spikes.py in the same order (w = 1 unless rescaled; x/1 = x exactly). Its forward
//   kept v only at the last step of every `interval` steps (checkpoints); the backward recomputes the
//   voltages of one such segment at a time from the saved currents, with the forward's own code (so
//   bit for bit), into a buffer that stays in cache, and then runs the reverse recurrence over it.
//   The backward reads the currents where it would have read the voltages, and the sequence keeps
//   no (T, B, N) tensor of its own between the passes.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "shared.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kBlock = 65536;  // neurons per sweep over time
constexpr int64_t kWidth = 1024;   // neurons per recomputed segment (interval × kWidth values in cache)

template <typename F>
void for_neuron_blocks(int64_t steps, int64_t neurons, int64_t block, const F& body) {
  const int64_t grain = std::max<int64_t>(256, (int64_t{1} << 15) / std::max<int64_t>(steps, 1));
  at::parallel_for(0, neurons, grain, [&](int64_t begin, int64_t end) {
    for (int64_t lo = begin; lo < end; lo += block) body(lo, std::min(end, lo + block));
  });
}

template <typename T>
void forward_row(int64_t n, const T* __restrict__ beta, const T* __restrict__ v_prev,
                 const T* __restrict__ z_prev, const T* __restrict__ current, T threshold,
                 T* __restrict__ v, T* __restrict__ z) {
  for (int64_t i = 0; i < n; ++i) {
    const T value = beta[i] * v_prev[i] + current[i] - threshold * z_prev[i];
    v[i] = value;
    z[i] = value >= threshold ? T(1) : T(0);
  }
}

// ḡ_t from h_t or v_t; carry is ḡ_{t+1}, nullptr at the last step, which adds g^v (final) instead.
template <int64_t K, bool Exact, typename T>
void backward_row(int64_t n, const T* __restrict__ source, const T* __restrict__ carry,
                  const T* __restrict__ grad_spikes, const T* __restrict__ final,
                  const T* __restrict__ beta, T reset, const Surrogate<T>& s, T* __restrict__ grad) {
  if (carry == nullptr) {
    for (int64_t i = 0; i < n; ++i)
      grad[i] = surrogate<K, Exact>(source[i], s) * grad_spikes[i] + final[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    grad[i] = surrogate<K, Exact>(source[i], s) * (grad_spikes[i] - reset * carry[i]) +
              beta[i] * carry[i];
}

int64_t segments(int64_t steps, int64_t interval) { return (steps + interval - 1) / interval; }

// Spikes at every step; v at the last step of every `interval` steps into checkpoints (every step
// for interval 1: all the voltages), the others in a two-row scratch.
void lif_forward(const at::Tensor& currents, const at::Tensor& beta, double threshold,
                 const at::Tensor& v0, const at::Tensor& z0, int64_t interval, at::Tensor spikes,
                 at::Tensor checkpoints) {
  TORCH_CHECK(currents.dim() == 3 && currents.size(0) > 0, "currents must be (T, B, N), T > 0");
  TORCH_CHECK(interval > 0, "interval must be positive");
  const int64_t steps = currents.size(0), neurons = currents.numel() / steps;
  check(currents, currents, steps * neurons, "currents");
  check(spikes, currents, steps * neurons, "spikes");
  check(checkpoints, currents, segments(steps, interval) * neurons, "checkpoints");
  for (const auto* row : {&beta, &v0, &z0}) check(*row, currents, neurons, "beta, v0 and z0");
  AT_DISPATCH_FLOATING_TYPES(currents.scalar_type(), "lif_forward", [&] {
    const scalar_t* current = currents.const_data_ptr<scalar_t>();
    const scalar_t* b = beta.const_data_ptr<scalar_t>();
    scalar_t* kept = checkpoints.mutable_data_ptr<scalar_t>();
    scalar_t* z = spikes.mutable_data_ptr<scalar_t>();
    const auto theta = static_cast<scalar_t>(threshold);
    for_neuron_blocks(steps, neurons, kBlock, [&](int64_t lo, int64_t hi) {
      const int64_t n = hi - lo;
      std::vector<scalar_t> scratch(interval > 1 ? 2 * n : 0);
      const scalar_t* v_prev = v0.const_data_ptr<scalar_t>() + lo;
      const scalar_t* z_prev = z0.const_data_ptr<scalar_t>() + lo;
      for (int64_t t = 0; t < steps; ++t) {
        const bool last = t % interval == interval - 1 || t == steps - 1;
        scalar_t* v = last ? kept + t / interval * neurons + lo : scratch.data() + (t & 1) * n;
        const int64_t at = t * neurons + lo;
        forward_row(n, b + lo, v_prev, z_prev, current + at, theta, v, z + at);
        v_prev = v;
        z_prev = z + at;
      }
    });
  });
}

// The output gradients arrive as grad_final, (B, N), and grad_spikes as a contiguous base and a step
// stride: 0 when one (B, N) row serves every step (an expanded gradient, e.g. of a sum over time),
// B·N for a full (steps, B, N) tensor.
void check_gradients(const at::Tensor& like, int64_t steps, int64_t neurons,
                     const at::Tensor& grad_spikes, int64_t spikes_stride, const at::Tensor& final,
                     const at::Tensor& beta, const at::Tensor& grad) {
  TORCH_CHECK(spikes_stride == 0 || spikes_stride == neurons,
              "the spikes' step stride must be 0 or B·N");
  check(grad_spikes, like, spikes_stride == 0 ? neurons : steps * neurons, "grad_spikes");
  check(final, like, neurons, "grad_final");
  check(beta, like, neurons, "beta");
  check(grad, like, steps * neurons, "grad");
}

// One chunk of steps, latest first, from h: ḡ into grad; carry is ḡ at the step after the chunk
// (none for the last chunk, whose last step adds grad_final).
void lif_backward(const at::Tensor& h, const std::optional<at::Tensor>& carry,
                  const at::Tensor& grad_spikes, int64_t spikes_stride, const at::Tensor& grad_final,
                  const at::Tensor& beta, double threshold, bool detach_reset, at::Tensor grad) {
  TORCH_CHECK(h.dim() == 3 && h.size(0) > 0, "h must be (T, B, N), T > 0");
  const int64_t steps = h.size(0), neurons = h.numel() / steps;
  check(h, h, steps * neurons, "h");
  check_gradients(h, steps, neurons, grad_spikes, spikes_stride, grad_final, beta, grad);
  if (carry) check(*carry, h, neurons, "carry");
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "lif_backward", [&] {
    const scalar_t* values = h.const_data_ptr<scalar_t>();
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    const scalar_t* next = carry ? carry->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gz = grad_spikes.const_data_ptr<scalar_t>();
    const scalar_t* final = grad_final.const_data_ptr<scalar_t>();
    const scalar_t* b = beta.const_data_ptr<scalar_t>();
    const auto reset = static_cast<scalar_t>(detach_reset ? 0.0 : threshold);
    const Surrogate<scalar_t> unused{};
    for_neuron_blocks(steps, neurons, kBlock, [&](int64_t lo, int64_t hi) {
      const scalar_t* row_after = next ? next + lo : nullptr;
      for (int64_t t = steps - 1; t >= 0; --t) {
        const int64_t at = t * neurons + lo;
        backward_row<kGiven, false>(hi - lo, values + at, row_after, gz + t * spikes_stride + lo,
                                    final + lo, b + lo, reset, unused, g + at);
        row_after = g + at;
      }
    });
  });
}

// The whole sequence from the currents and the checkpoints of lif_forward, with a built-in surrogate
// of the constants (a, b, w); with grad_beta, also dL/dβ per neuron, Σ_t ḡ_t v_{t−1}.
void lif_backward_recompute(const at::Tensor& currents, const at::Tensor& checkpoints, int64_t interval,
                            const at::Tensor& v0, const at::Tensor& z0, int64_t kind,
                            at::ArrayRef<double> constants, const at::Tensor& grad_spikes,
                            int64_t spikes_stride, const at::Tensor& grad_final, const at::Tensor& beta,
                            double threshold, bool detach_reset, at::Tensor grad,
                            const std::optional<at::Tensor>& grad_beta) {
  TORCH_CHECK(currents.dim() == 3 && currents.size(0) > 0, "currents must be (T, B, N), T > 0");
  TORCH_CHECK(interval > 0 && constants.size() == 3, "a positive interval and three constants");
  const int64_t steps = currents.size(0), neurons = currents.numel() / steps;
  check(currents, currents, steps * neurons, "currents");
  check(checkpoints, currents, segments(steps, interval) * neurons, "checkpoints");
  for (const auto* row : {&v0, &z0}) check(*row, currents, neurons, "v0 and z0");
  check_gradients(currents, steps, neurons, grad_spikes, spikes_stride, grad_final, beta, grad);
  if (grad_beta) check(*grad_beta, currents, neurons, "grad_beta");
  AT_DISPATCH_FLOATING_TYPES(currents.scalar_type(), "lif_backward_recompute", [&] {
    using acc_t = double;
    const scalar_t* current = currents.const_data_ptr<scalar_t>();
    const scalar_t* kept = checkpoints.const_data_ptr<scalar_t>();
    const scalar_t* gz = grad_spikes.const_data_ptr<scalar_t>();
    const scalar_t* final = grad_final.const_data_ptr<scalar_t>();
    const scalar_t* b = beta.const_data_ptr<scalar_t>();
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    const auto theta = static_cast<scalar_t>(threshold);
    const auto reset = static_cast<scalar_t>(detach_reset ? 0.0 : threshold);
    const auto s = make_surrogate<scalar_t>(theta, constants);
    with_kind(kind, s, [&](auto k, auto exact) {
      for_neuron_blocks(steps, neurons, kWidth, [&](int64_t lo, int64_t hi) {
        const int64_t n = hi - lo;
        std::vector<scalar_t> v(interval * n), z(2 * n), z_start(n);
        std::vector<acc_t> sum(grad_beta ? n : 0);
        for (int64_t first = (segments(steps, interval) - 1) * interval; first >= 0; first -= interval) {
          const int64_t stop = std::min(steps, first + interval);
          // v_{first−1} and z_{first−1}: the initial state, or the checkpoint and its spike.
          const scalar_t* v_start = first == 0 ? v0.const_data_ptr<scalar_t>() + lo
                                               : kept + (first / interval - 1) * neurons + lo;
          const scalar_t* z_prev = z0.const_data_ptr<scalar_t>() + lo;
          if (first > 0) {
            for (int64_t i = 0; i < n; ++i) z_start[i] = v_start[i] >= theta ? scalar_t(1) : scalar_t(0);
            z_prev = z_start.data();
          }
          const scalar_t* v_prev = v_start;
          for (int64_t t = first; t < stop; ++t) {
            scalar_t* row = v.data() + (t - first) * n;
            forward_row(n, b + lo, v_prev, z_prev, current + t * neurons + lo, theta, row,
                        z.data() + (t & 1) * n);
            v_prev = row;
            z_prev = z.data() + (t & 1) * n;
          }
          for (int64_t t = stop - 1; t >= first; --t) {
            scalar_t* row = g + t * neurons + lo;
            backward_row<decltype(k)::value, decltype(exact)::value>(
                n, v.data() + (t - first) * n, t == steps - 1 ? nullptr : row + neurons,
                gz + t * spikes_stride + lo, final + lo, b + lo, reset, s, row);
            if (grad_beta) {
              const scalar_t* before = t > first ? v.data() + (t - first - 1) * n : v_start;
              for (int64_t i = 0; i < n; ++i) sum[i] += acc_t(row[i]) * acc_t(before[i]);
            }
          }
        }
        if (grad_beta) {
          scalar_t* out = grad_beta->mutable_data_ptr<scalar_t>() + lo;
          for (int64_t i = 0; i < n; ++i) out[i] = static_cast<scalar_t>(sum[i]);
        }
      });
    });
  });
}

}  // namespace

TORCH_LIBRARY(neuroplastic_fused, m) {
  m.def("lif_forward(Tensor currents, Tensor beta, float threshold, Tensor v0, Tensor z0, "
        "int interval, Tensor(a!) spikes, Tensor(b!) checkpoints) -> ()");
  m.def("lif_backward(Tensor h, Tensor? carry, Tensor grad_spikes, int spikes_stride, "
        "Tensor grad_final, Tensor beta, float threshold, bool detach_reset, Tensor(a!) grad) -> ()");
  m.def("lif_backward_recompute(Tensor currents, Tensor checkpoints, int interval, Tensor v0, "
        "Tensor z0, int kind, float[] constants, Tensor grad_spikes, int spikes_stride, "
        "Tensor grad_final, Tensor beta, float threshold, bool detach_reset, Tensor(a!) grad, "
        "Tensor(b!)? grad_beta) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("lif_forward", lif_forward);
  m.impl("lif_backward", lif_backward);
  m.impl("lif_backward_recompute", lif_backward_recompute);
}
