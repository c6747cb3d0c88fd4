"""``neuroplastic neuron MODEL``: one model under a step current, as a trace, a summary or JSON."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from neuroplastic.analysis import spike_times, step_current
from neuroplastic.cli.common import (
    build_model,
    capped_duration,
    device,
    emit,
    finite_floats,
    noise_generator,
    noise_seed,
    plot_path,
    time_step,
)
from neuroplastic.report.plots import draw_trace, save
from neuroplastic.sim import Record, run
from neuroplastic.validation import require_finite


def simulate(model, current: float, duration: float, dt: float, seed: int, device="cpu"):
    """Voltage trace (T,), spike raster (T, 1) and the time axis (ms) of one neuron, simulated on
    ``device`` and returned on the CPU."""
    inputs = model.drive(step_current([current], duration, dt, device=device))
    probe = Record(model.voltage)
    result = run(model, inputs, dt, probes=[probe], noise=noise_generator(model, seed, device))
    times = torch.arange(1, inputs.shape[0] + 1, dtype=torch.float64) * dt
    return times, result[probe.name][:, 0].cpu(), result.spikes.cpu()


def main(args):
    model = build_model(args)
    dt = time_step(args, model)
    duration = capped_duration(args, dt)
    seed = noise_seed(args)
    current = require_finite("--current", model.default_current if args.current is None else args.current)
    path = plot_path(args.plot)
    times, voltage, raster = simulate(model, current, duration, dt, seed, device(args))
    spikes_ms = spike_times(raster, dt)[0]
    rate = require_finite("the firing rate (--duration too short)", len(spikes_ms) * 1000.0 / duration)
    name = args.model + (f" ({args.preset})" if args.preset else "")
    if path is not None:
        fig, ax = plt.subplots(figsize=(8, 3))
        draw_trace(ax, times.numpy(), voltage.numpy(), spikes_ms, title=f"{name}, I = {current:g} {model.current_unit}")
        save(fig, path)
    summary = {
        "model": args.model, "preset": args.preset, "current": current, "duration_ms": duration,
        "dt_ms": dt, "spike_count": len(spikes_ms), "rate_hz": rate,
        "spike_times_ms": finite_floats(spikes_ms), "plot": str(path) if path else None,
    }
    shown = ", ".join(f"{t:.2f}" for t in spikes_ms[:10]) + (" …" if len(spikes_ms) > 10 else "")
    emit(summary, args.json, [
        f"{name}: I = {current:g} {model.current_unit} for {duration:g} ms (dt = {dt:g} ms)",
        f"spikes: {len(spikes_ms)}  rate: {rate:.2f} Hz",
        f"spike times (ms): {shown or 'none'}",
    ] + ([f"plot: {path}"] if path else []))
