// One step of e-prop's adaptive LIF neurons (the LSNN cell; recurrent.py derives it), shared by the
// recurrent layer's kernel (alif_recurrent.cpp) and the one-kernel readouts (population_alif.cpp), so
// that both compute the same spikes from the same currents:
//
//   v_t = (α v_{t−1} + (X_t + R_t)) − θ z_{t−1},   a_t = ρ a_{t−1} + z_{t−1},   u_t = (v_t − (θ + β a_t)) / θ
//   z_t = H(u_t) · [r_{t−1} ≤ dt/2],   r_t = t_ref if z_t else max(r_{t−1} − dt, 0)
//   h_t = σ'(u_t) / θ · [r_{t−1} ≤ dt/2]                                     (where Keep)
#pragma once

#include "shared.h"

#include <algorithm>

namespace {

template <typename T>
struct Cell {  // the neurons' constants as the step path casts them to the tensors' dtype
  T theta, adaptation, t_ref, dt, half_dt;
};

// A row of n neurons after their input currents x and recurrent input rec: the state rows in place,
// and h where Keep (a pass whose backward reads it); returns how many of them spiked. Where not kAdaptive
// (plain LIF neurons: β = 0, t_ref = 0) the trace and refractory rows are neither read nor written, and the
// spikes are the same: θ + 0 · a_t is θ, and r_t stays 0 ≤ dt/2. Inlined into its NP_CLONES caller.
template <int64_t K, bool Exact, bool Keep, typename T, bool kAdaptive = true>
inline __attribute__((always_inline)) int64_t alif_step(
    int64_t n, const T* __restrict__ x, const T* __restrict__ rec, const T* __restrict__ alpha,
    const T* __restrict__ rho, const Cell<T>& c, const Surrogate<T>& s, const T* __restrict__ z_prev,
    T* __restrict__ v, T* __restrict__ a, T* __restrict__ r, T* __restrict__ z, T* __restrict__ h) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T current = x[i] + rec[i];
    const T potential = (alpha[i] * v[i] + current) - z_prev[i] * c.theta;
    const T trace = kAdaptive ? rho[i] * a[i] + z_prev[i] : T(0);
    const bool free = kAdaptive ? r[i] <= c.half_dt : true;
    const T u = (potential - (kAdaptive ? c.theta + c.adaptation * trace : c.theta)) / c.theta;
    const T spike = (u >= T(0)) & free ? T(1) : T(0);
    v[i] = potential;
    if constexpr (kAdaptive) a[i] = trace;
    z[i] = spike;
    if constexpr (Keep) {
      const T pseudo = surrogate<K, Exact>(u, s) / c.theta;  // evaluated everywhere: the loop stays vectorized
      h[i] = free ? pseudo : T(0);
    }
    if constexpr (kAdaptive) r[i] = spike > T(0) ? c.t_ref : std::max(r[i] - c.dt, T(0));
    count += spike > T(0);
  }
  return count;
}

}  // namespace
