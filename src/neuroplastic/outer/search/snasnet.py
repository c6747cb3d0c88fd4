"""Training-free search by the spike patterns at initialization (SNASNet: Kim, Li, Park, Venkatesha &
Panda 2022, "Neural architecture search for spiking neural networks", ECCV; written from the paper).

Each sample ``i`` of a mini-batch gives, in every spiking layer ``l`` of the untrained cell at every
step ``t``, a binary code ``c_i ∈ {0, 1}^N`` (the layer's spikes). Two samples the cell tells apart
at birth differ in many places. Mellor et al. (2021, "Neural architecture search without training",
ICML) count the agreements, ``K_H[i, j] = N − d_H(c_i, c_j)``, and score ``log |det K_H|``: higher
for cells whose codes lie further apart (``−∞`` where two samples share a code).

Spike codes are sparse, and a raw distance mostly counts spikes: two codes at rates ``r_i`` and
``r_j`` that are independent of each other already differ in ``N·E_ij`` places on average, with
``E_ij = r_i (1 − r_j) + (1 − r_i) r_j``, so busier cells win whatever they encode. SNASNet's
*sparsity-aware* Hamming distance divides that expectation out:

    K^{l,t}[i, j] = N − d_H(c_i, c_j) / (2 E_ij)        (K = N where E_ij = 0: then c_i = c_j)

(``N/2`` for independent codes, ``N`` for equal ones), averaged over the layers and steps,
``K = mean_{l,t} K^{l,t}``; the score is ``log |det K|``. :func:`hamming_kernel` is Mellor's
kernel of codes side by side (:func:`activation_codes`), kept for comparison. The search draws
cells of the space (forward and backward edges), scores each on one fixed batch, and keeps the
best-scored.
"""
from __future__ import annotations

import torch

from neuroplastic.outer.search.random import SampledSearch, draw_batch
from neuroplastic.outer.search.space import CellNetwork, SearchSpace
from neuroplastic.tasks import Task
from neuroplastic.training.recipes import Recipe
from neuroplastic.validation import require_count

__all__ = ["SnasnetSearch", "hamming_kernel", "sparsity_aware_kernel", "kernel_score", "snasnet_score",
           "activation_codes", "layer_spikes"]


def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """Mellor's ``K_H`` ``(B, B)`` of binary codes ``(B, N_A)``: ``N_A − d_H(c_i, c_j)``."""
    codes = codes.to(torch.float64)
    return codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T


def sparsity_aware_kernel(spikes: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """SNASNet's kernel ``(B, B)``: the mean over layers and steps of ``N − d_H / (2 E)`` (module
    docstring), from each spiking layer's binary spikes ``(T, B, N)``."""
    kernels = []
    for z in spikes:
        z = z.to(torch.float64)
        width = z.shape[-1]
        distance = z @ (1.0 - z).transpose(1, 2)
        distance = distance + distance.transpose(1, 2)  # d_H per step, (T, B, B)
        rate = z.mean(-1, keepdim=True)  # (T, B, 1)
        expected = rate * (1.0 - rate).transpose(1, 2)
        expected = expected + expected.transpose(1, 2)  # E_ij
        scaled = torch.where(expected > 0, distance / (2.0 * expected.clamp_min(1e-300)), 0.0)
        kernels.append(width - scaled)
    return torch.cat(kernels).mean(0)


def kernel_score(kernel: torch.Tensor) -> float:
    """``log |det K|`` of a kernel ``(B, B)``; ``−∞`` for a singular one."""
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign != 0 else float("-inf")


@torch.no_grad()
def layer_spikes(network: CellNetwork, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The binary spikes ``(T, B, width)`` of every spiking layer of ``network``, the stem's first."""
    network.eval()
    _, _, events = network.run(inputs)
    return tuple(events)


def activation_codes(network: CellNetwork, inputs: torch.Tensor) -> torch.Tensor:
    """Each sample's code ``(B, N_A)``: the binary spikes of every spiking layer at every step."""
    return torch.cat([z.transpose(0, 1).reshape(z.shape[1], -1) for z in layer_spikes(network, inputs)], 1)


def snasnet_score(network: CellNetwork, inputs: torch.Tensor) -> float:
    """The training-free score of ``network`` (as initialized) on the batch ``inputs`` ``(T, B, n)``."""
    return kernel_score(sparsity_aware_kernel(layer_spikes(network, inputs)))


class SnasnetSearch(SampledSearch):
    """Each cell drawn is scored at initialization on a batch of ``batch_size`` training samples, the
    same batch for every cell (drawn once)."""

    name = "snasnet"

    def __init__(self, task: Task, space: SearchSpace, recipe: Recipe, *, seed: int = 0, batch_size: int = 64,
                 device=None):
        super().__init__(task, space, recipe, seed=seed + 3, device=device)
        self.inputs, _ = draw_batch(task, "train", require_count("batch_size", batch_size, minimum=2),
                                    torch.Generator().manual_seed(seed + 4), device)

    def score(self, network: CellNetwork) -> float:
        return snasnet_score(network, self.inputs)
