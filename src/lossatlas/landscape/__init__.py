"""Loss landscape geometry: filter-normalised directions, 1-D/2-D slices, linear
interpolation, trajectory PCA and mode connectivity.

Functions take ``loss_fn(params)`` or ``loss_fn(params, batch)`` plus ``data`` and
``chunk_size`` (exact means in chunks, :mod:`lossatlas.batching`), evaluate
every grid point inside one compiled program, and jit and vmap like the rest of
lossatlas.
"""
from .connect import CURVES, ConnectResult, connect, curve_point
from .directions import NORMALIZATIONS, normalize_direction, random_direction
from .slices import Interpolation, interpolate, line, map_points, plane
from .trajectory import TrajectoryProjection, trajectory_projection

__all__ = [
    "CURVES", "ConnectResult", "Interpolation", "NORMALIZATIONS", "TrajectoryProjection", "connect",
    "curve_point", "interpolate", "line", "map_points", "normalize_direction", "plane",
    "random_direction", "trajectory_projection",
]
