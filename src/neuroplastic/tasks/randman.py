"""Random-manifold spike-timing task (Zenke & Vogels, "The remarkable robustness of surrogate
gradient learning for instilling complex function in spiking neural networks", Neural Computation
33, 2021; reference code github.com/fzenke/randman).

Each class is a random smooth ``dim``-dimensional manifold embedded in ``units`` dimensions. Unit
``i`` of a class is the function of the manifold coordinates ``x ∈ [0, 1]^dim``

    f_i(x) = Π_d Σ_{k<F} θ0_{idk} s_k sin(2π(k x_d θ1_{idk} + θ2_{idk})),   s_k = 1/(k+1)^α,

with every ``θ ~ U(0, 1)`` except ``θ0_{id0} = 0`` (no constant offset; the reference default) and
the cutoff ``F = ⌈10^{3/α}⌉`` at which ``s_k`` falls below 10⁻³ (F = 32 for α = 2). A sample draws
``x ~ U(0, 1)^dim``; unit ``i`` fires exactly one spike, at step ``min(⌊y_i · steps⌋, steps − 1)``,
where ``y_i = (f_i − min f_i)/(max f_i − min f_i)`` is min–max normalized over all samples of the
class (train and test together, as in the reference). All information is in spike timing: every
unit fires once in every sample.

Defaults: 10 classes, 100 units, 100 steps of 1 ms, dim 2, α = 2, and 1000 samples per class (the
reference generator's defaults), of which 800 train and 200 test. Inputs are stored sparse.
"""
from __future__ import annotations

import math

import torch

from neuroplastic.tasks.base import Split, Task, event_tensor
from neuroplastic.validation import require_count, require_finite, require_positive

__all__ = ["randman_task", "manifold_values", "frequency_cutoff"]


def frequency_cutoff(alpha: float, precision: float = 1e-3, largest: int = 1000) -> int:
    """``F = min(⌈precision^{−1/α}⌉, largest)``: the number of Fourier terms kept."""
    alpha = require_positive("alpha", alpha)
    if -math.log(precision) / alpha >= math.log(largest):  # (a tiny α would overflow the power)
        return largest
    return int(min(math.ceil(precision ** (-1.0 / alpha)), largest))


def manifold_values(points: torch.Tensor, theta: torch.Tensor, alpha: float) -> torch.Tensor:
    """``f_i(x)`` of the module docstring for ``points (n, dim)`` and ``theta (units, dim, 3, F)``:
    shape ``(n, units)``."""
    k = torch.arange(theta.shape[-1], dtype=theta.dtype)
    spectrum = 1.0 / (k + 1.0) ** alpha
    values = torch.ones(points.shape[0], theta.shape[0], dtype=theta.dtype)
    for d in range(points.shape[1]):
        amplitude, frequency, phase = theta[:, d, 0], theta[:, d, 1], theta[:, d, 2]  # (units, F)
        angle = torch.addcmul(2 * math.pi * phase, points[:, d, None, None],
                              2 * math.pi * k * frequency)  # (n, units, F)
        values = values * torch.einsum("nuf,uf->nu", angle.sin_(), amplitude * spectrum)
    return values


def randman_task(*, seed: int = 0, classes: int = 10, units: int = 100, steps: int = 100,
                 dim: int = 2, alpha: float = 2.0, samples_per_class: int = 1000,
                 test_fraction: float = 0.2, dt: float = 1.0) -> Task:
    """The randman task; each class contributes ``round((1 − test_fraction) · samples_per_class)``
    training samples, the rest test, each split shuffled."""
    classes = require_count("classes", classes, minimum=2)
    units = require_count("units", units)
    steps = require_count("steps", steps)
    dim = require_count("dim", dim)
    samples_per_class = require_count("samples_per_class", samples_per_class, minimum=2)
    dt = require_positive("dt", dt)
    test_fraction = require_finite("test_fraction", test_fraction)
    alpha = require_positive("alpha", alpha)
    n_train = round((1.0 - test_fraction) * samples_per_class) if 0 < test_fraction < 1 else 0
    if not 0 < n_train < samples_per_class:
        raise ValueError(
            f"test_fraction = {test_fraction!r} leaves no training or no test samples out of "
            f"samples_per_class = {samples_per_class}"
        )
    generator = torch.Generator().manual_seed(seed)
    cutoff = frequency_cutoff(alpha)
    times = []
    for _ in range(classes):
        theta = torch.rand(units, dim, 3, cutoff, generator=generator, dtype=torch.float32)
        theta[:, :, 0, 0] = 0.0
        points = torch.rand(samples_per_class, dim, generator=generator, dtype=torch.float32)
        values = manifold_values(points, theta, alpha)
        low, high = values.min(0).values, values.max(0).values
        if not bool((high > low).all()):
            raise ValueError(f"alpha = {alpha!r} makes a flat manifold (its higher Fourier terms underflow); "
                             "use a smaller alpha")
        normalized = (values - low) / (high - low)
        times.append((normalized * steps).floor().clamp(max=steps - 1).long())
    times = torch.stack(times)  # (classes, samples_per_class, units)

    def split(part):
        spike_times = part.reshape(-1, units)
        labels = torch.arange(classes).repeat_interleave(part.shape[1])
        order = torch.randperm(len(labels), generator=generator)
        spike_times, labels = spike_times[order], labels[order]
        samples = torch.arange(len(labels)).repeat_interleave(units)
        unit = torch.arange(units).repeat(len(labels))
        inputs = event_tensor(samples, spike_times.reshape(-1), unit, (len(labels), steps, units))
        return Split(inputs, labels)

    return Task(name="randman", train=split(times[:, :n_train]), test=split(times[:, n_train:]),
                n_inputs=units, n_outputs=classes, dt=dt, kind="classification")
