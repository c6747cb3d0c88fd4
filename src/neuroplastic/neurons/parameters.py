"""A model's tensor parameters as an ``nn.Module``: learnable neuron parameters that ``named_parameters``,
``state_dict``, ``.to()``, ``functional_call`` and ``vmap`` all see.

Neuron models (and their surrogates) are frozen dataclasses: values, not modules. A field may hold a
tensor (per-neuron values) or an ``nn.Parameter`` (to learn it). :class:`ModelParameters` registers
those tensors — parameters as parameters, other tensors as buffers, the tensors of a field that is
itself such a dataclass (``surrogate``) in a child module of the field's name — and :meth:`model`
rebuilds the model around the module's *current* tensors, so that ``functional_call`` substituting
``layer.neuron_parameters.tau_m``, a ``.double()`` or a device move reach the equations. A model without
tensors is returned as it is (it was validated once and cannot change); :meth:`model` with
``validate=True`` checks a rebuilt one again, element by element (its tensors may have been
substituted or trained out of range since; the checks see through transforms) — what a layer does
once per sequence, in ``init_state`` and ``forward``, not at every step.
"""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

__all__ = ["ModelParameters", "holds_tensors"]


def holds_tensors(record) -> bool:
    """Whether a dataclass ``record`` has a tensor in a field, or in a field's field."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        return False
    return any(isinstance(value, torch.Tensor) or holds_tensors(value)
               for value in (getattr(record, f.name) for f in dataclasses.fields(record)))


class ModelParameters(nn.Module):
    """The tensors of the frozen dataclass ``record`` (and of the dataclasses in its fields)."""

    def __init__(self, record):
        super().__init__()
        self._record = record
        self._names: list[str] = []
        for field in dataclasses.fields(record):
            value = getattr(record, field.name)
            if isinstance(value, nn.Parameter):
                self.register_parameter(field.name, value)
            elif isinstance(value, torch.Tensor):
                self.register_buffer(field.name, value)
            elif holds_tensors(value):
                self.add_module(field.name, ModelParameters(value))
            else:
                continue
            self._names.append(field.name)

    def model(self, *, validate: bool = False):
        """The record with the module's current tensors in its fields (checked again with ``validate``)."""
        if not self._names:
            return self._record
        rebuilt = copy.copy(self._record)
        for name in self._names:
            value = getattr(self, name)
            if isinstance(value, ModelParameters):
                value = value.model(validate=validate)
            object.__setattr__(rebuilt, name, value)
        if validate and hasattr(rebuilt, "__post_init__"):
            rebuilt.__post_init__()
        return rebuilt
