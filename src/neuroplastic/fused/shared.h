// What the kernels share: the built-in surrogate derivatives, evaluated with the operations of
// spikes.py in the same order (extension.native_surrogate lists the kinds and their constants), the
// checks of their arguments, and NP_CLONES: a function compiled for AVX-512, AVX2 and plain x86-64,
// the loader picking one per machine (target_clones), since the build cache may be shared by machines.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(NP_ISA)  // one instruction set only (NEUROPLASTIC_ISA, extension.py): another machine's clone, timed here
#if NP_ISA == 512
#define NP_CLONES __attribute__((target("avx512f")))
#define NP_ISA_BYTES 64
#elif NP_ISA == 256
#define NP_CLONES __attribute__((target("avx2")))
#define NP_ISA_BYTES 32
#else
#define NP_CLONES
#define NP_ISA_BYTES 16
#endif
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NP_TARGET_CLONES  // a clone per instruction set, the loader picking one (and InWidth's per width)
#define NP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NP_CLONES
#endif

namespace {

// The width of the registers of the clone the loader picks on this machine (NP_CLONES): AVX-512 64
// bytes, AVX2 32, else 16 (also where there are no clones). Tiles are built of vectors of that width:
// 64-byte vectors, wider than AVX2's registers, were split in two and their sums kept on the stack (the
// forward sums and weight gradient of `neuroplastic bench` ran 3–4× as slow as in 32-byte vectors).
inline int64_t register_bytes() {
#if defined(NP_ISA_BYTES)
  return NP_ISA_BYTES;
#elif defined(NP_TARGET_CLONES)
  static const int64_t bytes = [] {
    __builtin_cpu_init();  // as the clones' resolvers do: this may run before the library's constructors
    return __builtin_cpu_supports("avx512f") ? 64 : __builtin_cpu_supports("avx2") ? 32 : 16;
  }();
  return bytes;
#else
  return 16;
#endif
}

// f(std::integral_constant<int64_t, register_bytes()>{}): a tile's vector width as a template argument
// (where the build is for one instruction set, only its width is instantiated).
template <typename F>
void with_register_bytes(const F& f) {
#if defined(NP_ISA_BYTES)
  f(std::integral_constant<int64_t, NP_ISA_BYTES>{});
#else
  switch (register_bytes()) {
    case 64: f(std::integral_constant<int64_t, 64>{}); break;
    case 32: f(std::integral_constant<int64_t, 32>{}); break;
    default: f(std::integral_constant<int64_t, 16>{});
  }
#endif
}

// InWidth<kBytes>::run(f) calls f in a function compiled for the instruction set whose registers are
// kBytes wide, f's body inlined there (flatten): a kernel templated on the width is built once, for the
// machines that run it, instead of in every clone of NP_CLONES (spike_linear.cpp's: the library 1.8 →
// 1.3 MB, its build 29 → 24 s). population_lif.cpp keeps its clones: inlined so, it ran 12% slower.
#if !defined(NP_TARGET_CLONES)
template <int64_t kBytes>
struct InWidth {
  template <typename F>
  NP_CLONES [[gnu::flatten]] static void run(const F& f) { f(); }
};
#else
template <int64_t kBytes>
struct InWidth;
template <>
struct InWidth<64> {
  template <typename F>
  [[gnu::target("avx512f"), gnu::flatten]] static void run(const F& f) { f(); }
};
template <>
struct InWidth<32> {
  template <typename F>
  [[gnu::target("avx2"), gnu::flatten]] static void run(const F& f) { f(); }
};
template <>
struct InWidth<16> {
  template <typename F>
  [[gnu::flatten]] static void run(const F& f) { f(); }
};
#endif

// What the backward reads at each step: h itself (kGiven), or the voltage of a built-in surrogate.
enum Kind : int64_t { kGiven = 0, kFastSigmoid = 1, kTriangle = 2, kBoxcar = 3, kArctan = 4 };

// A surrogate's constants, cast to the tensors' dtype as PyTorch casts a Python number (extension.py
// lists a and b of each kind; b divides for the triangle and the boxcar); w is the Rescaled width.
template <typename T>
struct Surrogate {
  T theta, a, b, w, b_inv, w_inv;
};

template <typename T>
Surrogate<T> make_surrogate(T theta, at::ArrayRef<double> constants) {
  const auto a = static_cast<T>(constants[0]), b = static_cast<T>(constants[1]),
             w = static_cast<T>(constants[2]);
  return {theta, a, b, w, T(1) / b, T(1) / w};
}

// x / c, or x · (1/c) where every divisor is a power of two (Exact): then 1/c is exact and both are
// the correctly rounded x·2^−k, bit for bit, and a multiplication costs a fraction of a division.
template <bool Exact, typename T>
inline T divide(T x, T c, T c_inv) {
  if constexpr (Exact) return x * c_inv;
  else return x / c;
}

template <typename T>
bool power_of_two(T c) {
  int exponent;
  return std::frexp(c, &exponent) == T(0.5);
}

template <int64_t K, bool Exact, typename T>
inline T surrogate(T value, const Surrogate<T>& s) {
  if constexpr (K == kGiven) {
    return value;
  } else {
    const T x = divide<Exact>(value - s.theta, s.w, s.w_inv);
    T d;
    if constexpr (K == kFastSigmoid) {  // 1 / (1 + scale |x|)²
      const T u = T(1) + s.a * std::abs(x);
      d = T(1) / (u * u);
    } else if constexpr (K == kTriangle) {  // γ max(0, 1 − |x| / width)
      d = s.a * std::max(T(0), T(1) - divide<Exact>(std::abs(x), s.b, s.b_inv));
    } else if constexpr (K == kBoxcar) {  // [|x| < width/2] / width
      d = divide<Exact>(std::abs(x) < s.a ? T(1) : T(0), s.b, s.b_inv);
    } else {  // (α/2) / (1 + (πα x / 2)²), as PyTorch's reciprocal times α/2
      static_assert(K == kArctan);
      const T u = s.b * x / T(2);
      d = T(1) / (T(1) + u * u) * s.a;
    }
    return divide<Exact>(d, s.w, s.w_inv);
  }
}


template <int64_t K, typename T, typename F>
void with_exactness(const Surrogate<T>& s, const F& body) {
  const bool divides_by_b = K == kTriangle || K == kBoxcar;
  if (power_of_two(s.w) && (!divides_by_b || power_of_two(s.b)))
    body(std::integral_constant<int64_t, K>{}, std::true_type{});
  else
    body(std::integral_constant<int64_t, K>{}, std::false_type{});
}

// body(kind, exact) with both as compile-time constants.
template <typename T, typename F>
void with_kind(int64_t kind, const Surrogate<T>& s, const F& body) {
  switch (kind) {
    case kFastSigmoid: return with_exactness<kFastSigmoid>(s, body);
    case kTriangle: return with_exactness<kTriangle>(s, body);
    case kBoxcar: return with_exactness<kBoxcar>(s, body);
    case kArctan: return with_exactness<kArctan>(s, body);
    default: TORCH_CHECK(false, "unknown surrogate kind ", kind);
  }
}

// The comparisons of compare_bits.
enum Compare : int { kNotEqual, kEqual };

// Bit j: x[j] C c (kNotEqual: ≠, kEqual: =) for j < width (≤ 64), one entry at a time: a width known only
// at run time (a row's last, short word), or no instruction set's comparisons into a mask.
template <Compare C, typename T>
inline uint64_t scalar_bits(const T* __restrict__ x, int64_t width, T c) {
  uint64_t bits = 0;
  for (int64_t j = 0; j < width; ++j) bits |= uint64_t(C == kNotEqual ? x[j] != c : x[j] == c) << j;
  return bits;
}

// Bit j: x[j] C c (kNotEqual: ≠, kEqual: =), for j < kWidth (≤ 64), in vectors of kBytes
// bytes (the register width of the clone that runs: register_bytes), where the instruction set compares
// into a mask (one instruction per vector; a loop of comparisons shifted into a word was left scalar by
// the compiler, or took ~45 instructions of vectors per word). Each width's is compiled for its
// instruction set, inlined into the clone that runs it (NP_CLONES) and a call in the others.
template <Compare C, int64_t kWidth, typename T, int64_t kBytes>
inline uint64_t compare_bits(const T* __restrict__ x, T c, std::integral_constant<int64_t, kBytes>) {
  static_assert(kWidth <= 64, "one mask word");
  return scalar_bits<C>(x, kWidth, c);
}

#if defined(__x86_64__)
template <Compare C>
constexpr int kPredicate = C == kNotEqual ? _CMP_NEQ_UQ : C == kEqual ? _CMP_EQ_OQ : _CMP_GE_OQ;

template <Compare C, int64_t kWidth, typename T>
[[gnu::target("avx512f")]] inline uint64_t compare_bits(const T* __restrict__ x, T c,
                                                       std::integral_constant<int64_t, 64>) {
  constexpr int64_t lanes = 64 / sizeof(T);
  static_assert(kWidth <= 64 && kWidth % lanes == 0, "whole vectors in one mask word");
  uint64_t bits = 0;
  for (int64_t j = 0; j < kWidth; j += lanes) {
    if constexpr (std::is_same_v<T, float>)
      bits |= uint64_t(_mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), _mm512_set1_ps(c), kPredicate<C>)) << j;
    else
      bits |= uint64_t(_mm512_cmp_pd_mask(_mm512_loadu_pd(x + j), _mm512_set1_pd(c), kPredicate<C>)) << j;
  }
  return bits;
}

template <Compare C, int64_t kWidth, typename T>
[[gnu::target("avx2")]] inline uint64_t compare_bits(const T* __restrict__ x, T c,
                                                    std::integral_constant<int64_t, 32>) {
  constexpr int64_t lanes = 32 / sizeof(T);
  static_assert(kWidth <= 64 && kWidth % lanes == 0, "whole vectors in one mask word");
  uint64_t bits = 0;
  for (int64_t j = 0; j < kWidth; j += lanes) {
    if constexpr (std::is_same_v<T, float>)
      bits |= uint64_t(uint32_t(_mm256_movemask_ps(
                  _mm256_cmp_ps(_mm256_loadu_ps(x + j), _mm256_set1_ps(c), kPredicate<C>)))) << j;
    else
      bits |= uint64_t(uint32_t(_mm256_movemask_pd(
                  _mm256_cmp_pd(_mm256_loadu_pd(x + j), _mm256_set1_pd(c), kPredicate<C>)))) << j;
  }
  return bits;
}
#endif

// A row of n entries as bit masks, ⌈n / 64⌉ words each: nonzero, bit j of word w: x[64w + j] ≠ 0; other
// (or null): x[64w + j] neither 0 nor 1 (a graded value, NaN or infinite). Returns the count of nonzero
// entries. In vectors of kBytes bytes (compare_bits), inlined into its NP_CLONES caller (always: else its
// calls of compare_bits, in a function compiled for no instruction set in particular, stayed calls).
template <int64_t kBytes, typename T>
inline __attribute__((always_inline)) int64_t row_bits(const T* __restrict__ x, int64_t n,
                                                       uint64_t* __restrict__ nonzero, uint64_t* __restrict__ other) {
  const std::integral_constant<int64_t, kBytes> width;
  int64_t count = 0, w = 0;
  for (; 64 * (w + 1) <= n; ++w) {
    nonzero[w] = compare_bits<kNotEqual, 64>(x + 64 * w, T(0), width);
    if (other != nullptr) other[w] = nonzero[w] & ~compare_bits<kEqual, 64>(x + 64 * w, T(1), width);
    count += __builtin_popcountll(nonzero[w]);
  }
  if (64 * w < n) {  // the last, short word
    nonzero[w] = scalar_bits<kNotEqual>(x + 64 * w, n - 64 * w, T(0));
    if (other != nullptr) other[w] = nonzero[w] & ~scalar_bits<kEqual>(x + 64 * w, n - 64 * w, T(1));
    count += __builtin_popcountll(nonzero[w]);
  }
  return count;
}

// f(base + j) for every set bit j of mask, j increasing.
template <typename F>
inline void for_each_bit(uint64_t mask, int64_t base, const F& f) {
  for (; mask != 0; mask &= mask - 1) f(base + __builtin_ctzll(mask));
}

// f(k) for every k < n where x[k] ≠ 0, k increasing: 64 entries at a time read into a bit mask (no
// branch per entry: spikes are a few % of them, and each branch on one would be a likely misprediction),
// then its set bits. Inlined into its NP_CLONES caller.
template <typename T, typename F>
inline void for_each_nonzero(int64_t n, const T* __restrict__ x, const F& f) {
  for (int64_t base = 0; base < n; base += 64)
    for_each_bit(scalar_bits<kNotEqual>(x + base, std::min<int64_t>(64, n - base), T(0)), base, f);
}

void check(const at::Tensor& x, const at::Tensor& like, int64_t numel, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == like.scalar_type(), name,
              " must be a CPU tensor of the currents' dtype");
  TORCH_CHECK(x.is_contiguous() && x.numel() == numel, name, " must be contiguous with ", numel,
              " elements");
}

}  // namespace
