"""Checkpoints that are never lost: written to a temporary file and renamed over the old one in one
atomic step, so a crash mid-write leaves the previous checkpoint intact; read with clear errors."""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "neuroplastic-checkpoint-1"


def save_checkpoint(path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    torch.save({"format": FORMAT, **payload}, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise ValueError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    return payload
