"""Checkpoints that are never lost: written to a temporary file, flushed to the disk and renamed over
the old one in one atomic step, so a crash mid-write (even ``kill -9``) leaves the previous checkpoint
intact and a half-written one is never read; read with clear errors.

A checkpoint holds no code: tensors, numbers, strings, lists and dicts only, loaded with
``torch.load(weights_only=True)``, which refuses any pickled object that would run code on loading.
:func:`portable` turns a learner's running state (generators, modules, tensors) into such values and
:func:`restored` puts them back.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

__all__ = ["FORMAT", "load_checkpoint", "portable", "restored", "save_checkpoint"]

FORMAT = "neuroplastic-checkpoint-1"


def save_checkpoint(path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    with open(temporary, "wb") as handle:
        torch.save({"format": FORMAT, **payload}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    if hasattr(os, "O_DIRECTORY"):  # the rename itself reaches the disk, where the file system can say so
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        except OSError:  # some network and FUSE file systems refuse to sync a folder: the rename stands
            pass
        finally:
            os.close(directory)
    return path


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only met bytes or objects that are not plain data
        raise ValueError(f"checkpoint {path} is damaged or holds objects other than tensors and plain data "
                         f"(code could run on loading it): refused") from None
    except Exception as error:  # torch raises many kinds for a damaged file
        raise ValueError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    return payload


def portable(value):
    """``value`` (nested dicts, lists and tuples of tensors, numbers, strings, generators and modules) as
    values a checkpoint may hold: tensors on the CPU, a generator as its state, a module as its
    ``state_dict``."""
    if isinstance(value, torch.Generator):
        return {"generator_state": value.get_state(), "device": str(value.device)}
    if isinstance(value, torch.nn.Module):
        return {"module_state": value.state_dict()}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}")


def restored(live, saved, device):
    """``live`` with the values of ``saved`` (what :func:`portable` made of a value like it): generators
    and modules set in place, tensors moved to ``device``; returns the new value (``live`` may be
    ``None`` or a number where the running state now holds tensors). A generator saved on another
    device keeps its own fresh stream (a resumed run on another device continues, not bit for bit)."""
    if isinstance(live, torch.Generator):  # on another device a fresh stream: states do not travel
        if saved.get("device", str(live.device)) == str(live.device):
            live.set_state(saved["generator_state"])
        return live
    if isinstance(live, torch.nn.Module):
        live.load_state_dict(saved["module_state"])
        return live
    if isinstance(saved, torch.Tensor):
        return saved.to(device)
    if isinstance(saved, dict):
        old = live if isinstance(live, dict) else {}
        return {key: restored(old.get(key), item, device) for key, item in saved.items()}
    if isinstance(saved, list):
        old = live if isinstance(live, (list, tuple)) and len(live) == len(saved) else [None] * len(saved)
        items = [restored(before, item, device) for before, item in zip(old, saved)]
        return tuple(items) if isinstance(live, tuple) else items
    return saved
