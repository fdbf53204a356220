"""lossatlas: a JAX toolkit for studying how neural networks learn from their mistakes."""
__version__ = "0.1.0"
