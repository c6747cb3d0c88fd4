"""Spiking networks for learning: layers of any neuron model, a leaky readout, the network."""
from neuroplastic.networks.layers import LayerState, LeakyReadout, SpikingLayer
from neuroplastic.networks.network import NetworkOutput, NetworkState, SpikingNetwork

__all__ = ["SpikingLayer", "LayerState", "LeakyReadout", "SpikingNetwork", "NetworkState", "NetworkOutput"]
