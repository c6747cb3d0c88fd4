"""Throughput of evaluation and of many small networks: the numbers of BENCHMARKS.md "Throughput".

    python benchmarks/throughput.py            # every case, ~3 min on one thread
    python benchmarks/throughput.py --quick    # digits and one population, ~40 s

``inference``: a recipe's network (``build_network(load_task(task), recipe_for(task))``, untrained)
over its task's test split in batches of 256: a training forward pass (train mode, gradients on: what
a training step pays before its backward pass), the forward pass in eval mode under ``torch.no_grad``
and under ``torch.inference_mode``, and — where it applies — what ``Trainer.evaluate`` runs instead,
the readouts and spike counts in one kernel (:func:`~neuroplastic.networks.evaluation.counted_passes`,
prepared once for the split), beside the same prepared anew for every batch (``counted_pass``); and
``Trainer.evaluate`` end to end: its own batches of the split, the pass, the metrics and NeuroBench's
counts.
digits: feed-forward LIF (the fused path); mnist1d: recurrent LIF on an amplitude code (21% of its
entries spikes); cue: recurrent ALIF on spikes (both the fused recurrent kernel; both evaluations one
kernel).

``population``: ``M`` networks of ``N`` hidden neurons (LIF, feed-forward or recurrent, 64 inputs, 10
outputs) on ``B`` samples of ``T`` steps of spikes (rate 0.1), four ways: a loop over the models (each
model's readout kept), ``torch.vmap`` over ``functional_call`` with the stacked parameters, and one
batched pass (:func:`~neuroplastic.networks.population.population_forward`), keeping every hidden spike
or, as the loop, the readouts only (``keep_spikes=False``: for the feed-forward networks one kernel,
``fused.population_lif``); forward under ``torch.inference_mode``
(how evolution scores a population) and forward+backward of a loss summed over the models.

Every round times each way once, the ways taking turns, so that a busy spell of a shared machine slows
one round of every way rather than every round of one; a time is the median over the rounds. Prints
one markdown table per case and, last, one JSON object with every time (ms).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch.func import functional_call, vmap

from neuroplastic.bench.timing import machine, machine_record
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.networks.evaluation import counted_pass, counted_passes
from neuroplastic.networks.population import population_forward, stack_networks
from neuroplastic.neurons import ALIF
from neuroplastic.spikes import FastSigmoid
from neuroplastic.tasks import load_task
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.training.trainer import Trainer


def timed(ways: dict, rounds: int) -> dict:
    """The median milliseconds of each of ``ways`` (name → function), after one warm-up round."""
    times = {name: [] for name in ways}
    for round_ in range(rounds + 1):
        for name, run in ways.items():
            start = time.perf_counter()
            run()
            if round_:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def inference(task_name: str, rounds: int) -> dict:
    task = load_task(task_name)
    network = build_network(task, recipe_for(task_name))
    batches = [inputs for inputs, _ in task.batches("test", 256, shuffle=False)]

    def over_the_split(train: bool, mode):
        def run():
            network.train(train)
            with mode():
                for inputs in batches:
                    network(inputs)
        return run
    def counted():  # as Trainer.evaluate: the passes prepared once for the split
        network.eval()
        passes = counted_passes(network)
        for inputs in batches:
            passes(inputs)
    ways = {"training forward": over_the_split(True, torch.enable_grad),
            "evaluation (no_grad)": over_the_split(False, torch.no_grad),
            "evaluation (inference_mode)": over_the_split(False, torch.inference_mode)}
    def counted_per_batch():  # the kernel's weights and the network's checks made again for every batch
        network.eval()
        for inputs in batches:
            counted_pass(network, inputs)
    if counted_pass(network.eval(), batches[0]) is not None:
        ways["one kernel, prepared for every batch (counted_pass)"] = counted_per_batch
        ways["evaluation as Trainer.evaluate runs it: one kernel (counted_passes)"] = counted
    trainer = Trainer(task, network, None, None, evaluate=objective_for(task).evaluate)
    ways["Trainer.evaluate, end to end (its batches, metrics, NeuroBench's counts)"] = trainer.evaluate
    return timed(ways, rounds)


def population(models: int, neurons: int, batch: int, steps: int, recurrent: bool, rounds: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    neuron = ALIF(beta=0.0, t_ref=0.0, v_th=1.0, surrogate=FastSigmoid(10.0))  # the digits recipe's LIF
    networks = [SpikingNetwork([SpikingLayer(64, neurons, neuron, recurrent=recurrent, scale=2.0,
                                             generator=generator)], LeakyReadout(neurons, 10, generator=generator))
                for _ in range(models)]
    x = (torch.rand(steps, batch, 64, generator=generator) < 0.1).float()
    parameters = stack_networks(networks)
    template = networks[0]

    def loop():
        return torch.stack([network(x).readout for network in networks])

    def vmapped():
        return vmap(lambda p: functional_call(template, p, (x,)).readout)(parameters)

    def batched():
        return population_forward(template, parameters, x).readout

    def readouts_only():
        return population_forward(template, parameters, x, keep_spikes=False).readout

    def forward(way):
        def run():
            with torch.inference_mode():
                way()
        return run

    def forward_backward(way):
        return lambda: way().square().mean().backward()
    ways = {"loop over the models": loop, "vmap over functional_call": vmapped, "population_forward": batched,
            "population_forward, readouts only": readouts_only}
    return {"fwd": timed({name: forward(way) for name, way in ways.items()}, rounds),
            "fwd_bwd": timed({name: forward_backward(way) for name, way in ways.items()}, rounds)}


def inference_table(task_name: str, times: dict) -> str:
    base = times["training forward"]
    rows = [f"| {task_name} | {way} | {ms:.1f} | {base / ms:.2f}× |" for way, ms in times.items()]
    return "\n".join(rows)


def population_table(label: str, times: dict) -> str:
    rows = []
    for way in times["fwd"]:
        fwd, fwd_bwd = times["fwd"][way], times["fwd_bwd"][way]
        loop_fwd, loop_fwd_bwd = times["fwd"]["loop over the models"], times["fwd_bwd"]["loop over the models"]
        rows.append(f"| {label} | {way} | {fwd:.1f} | {loop_fwd / fwd:.1f}× | {fwd_bwd:.1f} | "
                    f"{loop_fwd_bwd / fwd_bwd:.1f}× |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits and the feed-forward population only")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5, 3 with --quick)")
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--neurons", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(machine_record(), flush=True)
    rounds = args.rounds or (3 if args.quick else 5)
    tasks = ("digits",) if args.quick else ("digits", "mnist1d", "cue")
    results = {"threads": args.threads, "rounds": rounds, "inference": {}, "population": {}, "machine": machine(),
               "load_average": [os.getloadavg()[0]]}
    print(f"| task | pass over the test split ({args.threads} thread(s)) | ms | vs training forward |")
    print("|---|---|---|---|")
    for task_name in tasks:
        results["inference"][task_name] = inference(task_name, rounds)
        print(inference_table(task_name, results["inference"][task_name]), flush=True)
    size = f"{args.models} × {args.neurons} LIF, B = {args.batch}, T = {args.steps}"
    print(f"\n| networks ({size}) | way | fwd ms | vs loop | fwd+bwd ms | vs loop |")
    print("|---|---|---|---|---|---|")
    for recurrent in (False,) if args.quick else (False, True):
        label = "recurrent" if recurrent else "feed-forward"
        results["population"][label] = population(args.models, args.neurons, args.batch, args.steps, recurrent,
                                                  rounds)
        print(population_table(label, results["population"][label]), flush=True)
    results["load_average"].append(os.getloadavg()[0])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
