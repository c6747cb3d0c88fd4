"""Training-free search by the spike patterns at initialization (SNASNet: Kim, Li, Park, Venkatesha &
Panda 2022, "Neural architecture search for spiking neural networks", ECCV; written from the paper).

Each sample ``i`` of a mini-batch gives a binary code ``c_i ∈ {0, 1}^{N_A}``: every spike (0 or 1)
of every spiking layer of the untrained cell at every step, side by side. Two samples the cell tells
apart at birth differ in many places; the Hamming-distance kernel

    K_H[i, j] = N_A − d_H(c_i, c_j) = c_i·c_j + (1 − c_i)·(1 − c_j)

counts where they agree, and the score is ``log |det K_H|`` (after Mellor et al. 2021, "Neural
architecture search without training", ICML): higher for cells whose codes are further from each
other (``−∞`` where two samples share a code). Summing the kernels of the layers and steps, as the
paper does, is this kernel of the codes side by side. The search draws cells of the space (forward
and backward edges), scores each on one fixed batch, and keeps the best-scored.
"""
from __future__ import annotations

import torch

from neuroplastic.outer.search.random import SampledSearch, draw_batch
from neuroplastic.outer.search.space import CellNetwork, SearchSpace
from neuroplastic.tasks import Task
from neuroplastic.training.recipes import Recipe
from neuroplastic.validation import require_count

__all__ = ["SnasnetSearch", "hamming_kernel", "kernel_score", "snasnet_score", "activation_codes"]


def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``K_H`` ``(B, B)`` of binary codes ``(B, N_A)``: ``N_A − d_H(c_i, c_j)``."""
    codes = codes.to(torch.float64)
    return codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T


def kernel_score(codes: torch.Tensor) -> float:
    """``log |det K_H|`` of binary codes ``(B, N_A)``; ``−∞`` for a singular kernel."""
    sign, logdet = torch.linalg.slogdet(hamming_kernel(codes))
    return float(logdet) if sign != 0 else float("-inf")


@torch.no_grad()
def activation_codes(network: CellNetwork, inputs: torch.Tensor) -> torch.Tensor:
    """Each sample's code ``(B, N_A)``: the binary spikes of every spiking layer at every step."""
    network.eval()
    _, _, events = network.run(inputs)
    return torch.cat([z.transpose(0, 1).reshape(z.shape[1], -1) for z in events], 1)


def snasnet_score(network: CellNetwork, inputs: torch.Tensor) -> float:
    """The training-free score of ``network`` (as initialized) on the batch ``inputs`` ``(T, B, n)``."""
    return kernel_score(activation_codes(network, inputs))


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
