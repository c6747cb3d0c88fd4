// Fused CPU kernels for the leaky integrate-and-fire recurrence over a whole sequence. The equations
// and their derivation live in lif.py; fallback.py is the same two loops in PyTorch, and
// tests/test_fused.py checks both against autograd through the step path.
//
//   forward:   v_t = β v_{t−1} + I_t − θ z_{t−1},   z_t = H(v_t − θ)
//   backward:  ḡ_t = h_t (g^z_t − k ḡ_{t+1}) + β ḡ_{t+1} + g^v_t,   ḡ_T = 0,   k = θ (0 if detached)
//
// Every one of the B·N neurons is independent, so the threads split the neurons and each sweeps the
// whole time axis over a block of them: one parallel region per pass (per chunk of steps backward),
// and the rows of state stay in cache.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

namespace {

constexpr int64_t kBlock = 65536;  // neurons per sweep over time

template <typename F>
void for_neuron_blocks(int64_t steps, int64_t neurons, const F& body) {
  const int64_t grain = std::max<int64_t>(256, (int64_t{1} << 15) / std::max<int64_t>(steps, 1));
  at::parallel_for(0, neurons, grain, [&](int64_t begin, int64_t end) {
    for (int64_t lo = begin; lo < end; lo += kBlock) body(lo, std::min(end, lo + kBlock));
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

// ḡ_t from h_t; carry is ḡ_{t+1} (nullptr after the last step).
template <typename T>
void backward_row(int64_t n, const T* __restrict__ h, const T* __restrict__ carry,
                  const T* __restrict__ grad_spikes, const T* __restrict__ grad_voltages,
                  const T* __restrict__ beta, T reset, T* __restrict__ grad) {
  if (carry == nullptr) {
    for (int64_t i = 0; i < n; ++i) grad[i] = h[i] * grad_spikes[i] + grad_voltages[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    grad[i] = h[i] * (grad_spikes[i] - reset * carry[i]) + beta[i] * carry[i] + grad_voltages[i];
}

void check(const at::Tensor& x, const at::Tensor& like, int64_t numel, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == like.scalar_type(), name,
              " must be a CPU tensor of the currents' dtype");
  TORCH_CHECK(x.is_contiguous() && x.numel() == numel, name, " must be contiguous with ", numel,
              " elements");
}

void lif_forward(const at::Tensor& currents, const at::Tensor& beta, double threshold,
                 const at::Tensor& v0, const at::Tensor& z0, at::Tensor spikes,
                 at::Tensor voltages) {
  TORCH_CHECK(currents.dim() == 3 && currents.size(0) > 0, "currents must be (T, B, N), T > 0");
  const int64_t steps = currents.size(0), neurons = currents.numel() / steps;
  check(currents, currents, steps * neurons, "currents");
  check(spikes, currents, steps * neurons, "spikes");
  check(voltages, currents, steps * neurons, "voltages");
  for (const auto* row : {&beta, &v0, &z0}) check(*row, currents, neurons, "beta, v0 and z0");
  AT_DISPATCH_FLOATING_TYPES(currents.scalar_type(), "lif_forward", [&] {
    const scalar_t* current = currents.const_data_ptr<scalar_t>();
    const scalar_t* b = beta.const_data_ptr<scalar_t>();
    const scalar_t* v_init = v0.const_data_ptr<scalar_t>();
    const scalar_t* z_init = z0.const_data_ptr<scalar_t>();
    scalar_t* v = voltages.mutable_data_ptr<scalar_t>();
    scalar_t* z = spikes.mutable_data_ptr<scalar_t>();
    const auto theta = static_cast<scalar_t>(threshold);
    for_neuron_blocks(steps, neurons, [&](int64_t lo, int64_t hi) {
      const scalar_t* v_prev = v_init + lo;
      const scalar_t* z_prev = z_init + lo;
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t at = t * neurons + lo;
        forward_row(hi - lo, b + lo, v_prev, z_prev, current + at, theta, v + at, z + at);
        v_prev = v + at;
        z_prev = z + at;
      }
    });
  });
}

// One chunk of steps, latest first: ḡ into grad from the surrogate h; carry is ḡ at the step after
// the chunk (none for the last chunk). The output gradients arrive as a contiguous base and a
// step stride: 0 when one (B, N) row serves every step (an expanded gradient, e.g. of a sum over
// time), B·N for a full (steps, B, N) tensor.
void lif_backward(const at::Tensor& h, const std::optional<at::Tensor>& carry,
                  const at::Tensor& grad_spikes, int64_t spikes_stride,
                  const at::Tensor& grad_voltages, int64_t voltages_stride,
                  const at::Tensor& beta, double threshold, bool detach_reset, at::Tensor grad) {
  TORCH_CHECK(h.dim() == 3 && h.size(0) > 0, "h must be (T, B, N), T > 0");
  const int64_t steps = h.size(0), neurons = h.numel() / steps;
  check(h, h, steps * neurons, "h");
  check(grad, h, steps * neurons, "grad");
  check(beta, h, neurons, "beta");
  if (carry) check(*carry, h, neurons, "carry");
  for (auto [g, stride] : {std::pair{&grad_spikes, spikes_stride}, {&grad_voltages, voltages_stride}}) {
    TORCH_CHECK(stride == 0 || stride == neurons, "a gradient's step stride must be 0 or B·N");
    check(*g, h, stride == 0 ? neurons : steps * neurons, "grad_spikes and grad_voltages");
  }
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "lif_backward", [&] {
    const scalar_t* surrogate = h.const_data_ptr<scalar_t>();
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    const scalar_t* next = carry ? carry->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gz = grad_spikes.const_data_ptr<scalar_t>();
    const scalar_t* gv = grad_voltages.const_data_ptr<scalar_t>();
    const scalar_t* b = beta.const_data_ptr<scalar_t>();
    const auto reset = static_cast<scalar_t>(detach_reset ? 0.0 : threshold);
    for_neuron_blocks(steps, neurons, [&](int64_t lo, int64_t hi) {
      const scalar_t* row_after = next ? next + lo : nullptr;
      for (int64_t t = steps - 1; t >= 0; --t) {
        const int64_t at = t * neurons + lo;
        backward_row(hi - lo, surrogate + at, row_after, gz + t * spikes_stride + lo,
                     gv + t * voltages_stride + lo, b + lo, reset, g + at);
        row_after = g + at;
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY(neuroplastic_fused, m) {
  m.def("lif_forward(Tensor currents, Tensor beta, float threshold, Tensor v0, Tensor z0, "
        "Tensor(a!) spikes, Tensor(b!) voltages) -> ()");
  m.def("lif_backward(Tensor h, Tensor? carry, Tensor grad_spikes, int spikes_stride, "
        "Tensor grad_voltages, int voltages_stride, Tensor beta, float threshold, "
        "bool detach_reset, Tensor(a!) grad) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("lif_forward", lif_forward);
  m.impl("lif_backward", lif_backward);
}
