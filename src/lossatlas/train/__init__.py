"""Compiled training: TrainState, TrainConfig, make_train (scan), sweep (vmap)."""
from lossatlas.train.config import SWEEPABLE, TrainConfig
from lossatlas.train.engine import Program, make_train, program
from lossatlas.train.state import TrainState
from lossatlas.train.sweep import grid_points, seed_keys, sweep

__all__ = ["SWEEPABLE", "Program", "TrainConfig", "TrainState", "grid_points", "make_train", "program",
           "seed_keys", "sweep"]
