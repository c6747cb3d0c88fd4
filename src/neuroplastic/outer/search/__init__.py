"""Architecture search for spiking networks: an outer loop over the library's own layers and training.

The space (:mod:`.space`) is cells of spiking nodes whose edges are the library's connection types
(feed-forward, recurrent, adaptive and delayed layers, skip, none), with SNASNet's backward edges.
Three searches pick a cell within a wall-time budget: DARTS (:mod:`.darts`, Liu et al. 2019),
SNASNet's training-free score at initialization (:mod:`.snasnet`, Kim et al. 2022) and random
search (:mod:`.random`); :func:`search` (:mod:`.run`) retrains the pick with ``fit``.
"""
from neuroplastic.outer.search.darts import Darts, architecture_gradient, discretize, split_parameters
from neuroplastic.outer.search.random import RandomSearch, SampledSearch, accuracy, draw_batch, train_cell
from neuroplastic.outer.search.run import SEARCHES, CellBuilder, search
from neuroplastic.outer.search.snasnet import (
    SnasnetSearch,
    activation_codes,
    hamming_kernel,
    kernel_score,
    layer_spikes,
    snasnet_score,
    sparsity_aware_kernel,
)
from neuroplastic.outer.search.space import (
    BACKWARD_OPERATIONS,
    OPERATIONS,
    Cell,
    CellNetwork,
    Edge,
    Identity,
    MixedOperation,
    SearchSpace,
    Zero,
)

__all__ = ["search", "SEARCHES", "CellBuilder", "SearchSpace", "Cell", "Edge", "CellNetwork", "MixedOperation",
           "OPERATIONS", "BACKWARD_OPERATIONS", "Zero", "Identity", "Darts", "architecture_gradient", "discretize",
           "split_parameters", "SnasnetSearch", "hamming_kernel", "sparsity_aware_kernel", "kernel_score",
           "snasnet_score", "activation_codes", "layer_spikes",
           "RandomSearch", "SampledSearch", "draw_batch", "train_cell", "accuracy"]
