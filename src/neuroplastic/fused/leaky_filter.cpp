// The leaky integration of sim/filters.py over a whole sequence, y_t = decay · y_{t−1} + x_t along
// the first dimension (y_{−1} = y0, default 0), or reversed in time, y_t = decay · y_{t+1} + x_t
// (y_T = 0): in the operations and the order of its Python loop, one pass over the rows per step.
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

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("leaky_filter(Tensor x, float decay, Tensor? y0, bool reverse, Tensor(a!) out) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("leaky_filter", leaky_filter);
}
