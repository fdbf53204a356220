"""Compiled training: TrainState, TrainConfig, make_train (scan), sweep (vmap), and the
engine hooks (initial state, checkpoints, probes) that attach measurements to training."""
from lossatlas.train import probes
from lossatlas.train.config import SWEEPABLE, TrainConfig
from lossatlas.train.engine import Program
from lossatlas.train.run import init, make_train, program
from lossatlas.train.hooks import Checkpoints, Probe, as_probe
from lossatlas.train.probes import ModelFns, model_fns
from lossatlas.train.state import TrainState
from lossatlas.train.sweep import grid_points, seed_keys, sweep

__all__ = ["SWEEPABLE", "Checkpoints", "ModelFns", "Probe", "Program", "TrainConfig", "TrainState", "as_probe",
           "grid_points", "init", "make_train", "model_fns", "probes", "program", "seed_keys", "sweep"]
