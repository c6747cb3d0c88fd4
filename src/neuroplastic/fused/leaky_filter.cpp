// The leaky integration of sim/filters.py over a whole sequence, y_t = decay · y_{t−1} + x_t along
// the first dimension (y_{−1} = y0, default 0), or reversed in time, y_t = decay · y_{t+1} + x_t
// (y_T = 0): in the operations and the order of its Python loop, one pass over the rows per step.
// factorized_adjoint: two reversed filters with a product between, the adjoint of factorized e-prop
// (rules/eprop.py), in one pass instead of three: λ_t = α λ_{t+1} + ψ_t L̃_t, L̃_t = κ L̃_{t+1} + L_t.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "shared.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace {

template <typename T>
NP_CLONES void filter_row(int64_t n, T decay, const T* __restrict__ x, T* __restrict__ y, T* __restrict__ out) {
  for (int64_t i = 0; i < n; ++i) {
    y[i] = decay * y[i] + x[i];
    out[i] = y[i];
  }
}

void leaky_filter(const at::Tensor& x, double decay, const std::optional<at::Tensor>& y0, bool reverse,
                  at::Tensor out) {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) > 0, "x must have a time dimension first");
  const int64_t steps = x.size(0), width = x.numel() / steps;
  check(x, x, steps * width, "x");
  check(out, x, steps * width, "out");
  if (y0) check(*y0, x, width, "y0");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "leaky_filter", [&] {
    const auto d = static_cast<scalar_t>(decay);
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    std::vector<scalar_t> y(width, scalar_t(0));
    if (y0) std::copy(y0->const_data_ptr<scalar_t>(), y0->const_data_ptr<scalar_t>() + width, y.begin());
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = reverse ? steps - 1 - k : k;
      filter_row(width, d, in + t * width, y.data(), o + t * width);
    }
  });
}

template <typename T>
NP_CLONES void adjoint_row(int64_t n, T kappa, T alpha, const T* __restrict__ signal, const T* __restrict__ psi,
                           T* __restrict__ filtered, T* __restrict__ adjoint, T* __restrict__ out) {
  for (int64_t i = 0; i < n; ++i) {
    filtered[i] = kappa == T(0) ? signal[i] : kappa * filtered[i] + signal[i];  // κ = 0: no filter at all
    adjoint[i] = alpha * adjoint[i] + filtered[i] * psi[i];
    out[i] = adjoint[i];
  }
}

void factorized_adjoint(const at::Tensor& signal, const at::Tensor& psi, double kappa, double alpha, at::Tensor out) {
  TORCH_CHECK(signal.dim() >= 1 && signal.size(0) > 0, "the signal must have a time dimension first");
  const int64_t steps = signal.size(0), width = signal.numel() / steps;
  check(signal, signal, steps * width, "signal");
  check(psi, signal, steps * width, "psi");
  check(out, signal, steps * width, "out");
  AT_DISPATCH_FLOATING_TYPES(signal.scalar_type(), "factorized_adjoint", [&] {
    const scalar_t* l = signal.const_data_ptr<scalar_t>();
    const scalar_t* p = psi.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    std::vector<scalar_t> filtered(width, scalar_t(0)), adjoint(width, scalar_t(0));
    for (int64_t t = steps - 1; t >= 0; --t) {
      adjoint_row(width, static_cast<scalar_t>(kappa), static_cast<scalar_t>(alpha), l + t * width, p + t * width,
                  filtered.data(), adjoint.data(), o + t * width);
    }
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("leaky_filter(Tensor x, float decay, Tensor? y0, bool reverse, Tensor(a!) out) -> ()");
  m.def("factorized_adjoint(Tensor signal, Tensor psi, float kappa, float alpha, Tensor(a!) out) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("leaky_filter", leaky_filter);
  m.impl("factorized_adjoint", factorized_adjoint);
}
