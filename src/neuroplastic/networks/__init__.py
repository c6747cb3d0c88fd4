"""Networks for learning: layers of any neuron model, a leaky readout, the spiking network; the energy
network that equilibrium propagation relaxes; many networks of one shape run as one (a population)."""
from neuroplastic.networks.energy import EnergyNetwork, NotSettled
from neuroplastic.networks.layers import LayerState, LeakyReadout, SpikingLayer
from neuroplastic.networks.network import LayerStep, NetworkOutput, NetworkState, SpikingNetwork
from neuroplastic.networks.paths import PATHS, use_path
from neuroplastic.networks.population import PopulationOutput, population_forward, stack_networks
from neuroplastic.networks.spiking_energy import SpikingEnergyNetwork

__all__ = ["SpikingLayer", "LayerState", "LeakyReadout", "SpikingNetwork", "NetworkState", "NetworkOutput",
           "LayerStep", "PATHS", "use_path", "EnergyNetwork", "NotSettled", "SpikingEnergyNetwork",
           "PopulationOutput", "population_forward", "stack_networks"]
