"""Methods as data: several strategies on one vmap axis of one compiled stream program.

In the spirit of optax's ``inject_hyperparams`` (a hyperparameter becomes a traced input)
and ``multi_transform`` (one transformation routes to several): :func:`stack_strategies`
turns strategies into one :class:`~lossatlas.continual.Strategy` whose member is chosen by
the traced index ``ctx.member``, so ``run_stream`` vmaps over members as it does over
lambdas and seeds, with one compile::

    quad = cl.stack_strategies({"l2": cl.l2(), "ewc": cl.ewc(fisher="sampled"), "si": cl.si()})
    out = cl.run_stream(stream, quad, cfg, key=key, seeds=5, lams=[1.0, 10.0, 100.0])
    out["R"]        # [M=3, L=3, S=5, T, T]; out["members"] == ("l2", "ewc", "si")

The stacked state is the tuple of every member's state; each hook is a ``lax.switch`` on
``ctx.member`` whose branch ``i`` runs member ``i``'s hook on its own state and leaves the
others unchanged. Under ``vmap`` every branch is computed and one is selected, so each
point of a stack costs the sum of its members per step (``M`` members with one lambda each:
``M`` times the members' sum; memory: every member's state), and member ``i`` takes the
steps of strategy ``i`` run alone, up to floating-point differences of a different compiled
program (on permuted MNIST-1D, six members, 625 SGD steps: accuracy matrices within 0.004,
see ``benchmarks/run_all.py``'s continual section).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import jax

from lossatlas.continual.strategies import Strategy

__all__ = ["member_labels", "stack_strategies"]


def _labels(strategies) -> list[tuple[str, Strategy]]:
    if isinstance(strategies, Mapping):
        pairs = [(str(k), v) for k, v in strategies.items()]
    elif isinstance(strategies, (list, tuple)):
        pairs = [(s.name if isinstance(s, Strategy) else str(i), s) for i, s in enumerate(strategies)]
    else:
        raise ValueError(f"stack_strategies: strategies must be a list or a mapping label -> Strategy, "
                         f"got {type(strategies).__name__}")
    if not pairs:
        raise ValueError("stack_strategies: strategies must be non-empty, got none")
    for label, s in pairs:
        if not isinstance(s, Strategy):
            raise ValueError(f"stack_strategies: strategies[{label!r}] must be a Strategy, got {type(s).__name__}")
        if s.members:
            raise ValueError(f"stack_strategies: strategies[{label!r}] is itself a stack; pass its members")
    labels = [lb for lb, _ in pairs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"stack_strategies: labels must be distinct, got {labels} (pass a mapping "
                         f"label -> Strategy to name members of the same kind)")
    return pairs


def stack_strategies(strategies: Sequence[Strategy] | Mapping[str, Strategy]) -> Strategy:
    """One strategy whose member is the traced index ``ctx.member`` (methods as a vmap axis).

    Args:
      strategies: a list of strategies (labelled by their names, which must be distinct) or a
        mapping ``label -> Strategy`` (e.g. ``{"exact": ewc(fisher="exact"), "sampled":
        ewc(fisher="sampled")}``).

    Returns:
      A :class:`~lossatlas.continual.Strategy` named ``"stack"`` with ``members`` the
      ``(label, strategy)`` pairs. Its ``lam`` is the first member's default; ``uses_lam`` is
      True if any member reads lambda. ``run_stream`` gives it a member axis (see there).
    """
    pairs = _labels(strategies)
    members = [s for _, s in pairs]

    def branches(state, make):
        """``[lambda: make(i, member_i, state_i) for i]``: each branch returns the whole result."""
        return [lambda i=i, s=s: make(i, s, state[i]) for i, s in enumerate(members)]

    def put(state, i, new):
        return state[:i] + (new,) + state[i + 1:]

    def init(params, ctx):
        return tuple(s.init(params, ctx) for s in members)

    def loss(state, params, batch, ctx):
        return jax.lax.switch(ctx.member, branches(state, lambda i, s, st: s.loss(st, params, batch, ctx)))

    def update(state, grads, params, batch, ctx):
        def one(i, s, st):
            g, new = s.update(st, grads, params, batch, ctx)
            return g, put(state, i, new)
        return jax.lax.switch(ctx.member, branches(state, one))

    def observe(state, grads, old, new, batch, ctx):
        return jax.lax.switch(ctx.member, branches(
            state, lambda i, s, st: put(state, i, s.observe(st, grads, old, new, batch, ctx))))

    def consolidate(state, params, ctx):
        return jax.lax.switch(ctx.member, branches(
            state, lambda i, s, st: put(state, i, s.consolidate(st, params, ctx))))

    ident = tuple((lb, s.spec if s.spec is not None else tuple(s[:6])) for lb, s in pairs)
    return Strategy("stack", init=init, loss=loss, update=update, observe=observe, consolidate=consolidate,
                    lam=members[0].lam, spec=("stack",) + ident, uses_lam=any(s.uses_lam for s in members),
                    members=tuple(pairs))


def member_labels(strategy: Strategy) -> tuple[str, ...]:
    """The member labels of a stack (``()`` for a plain strategy)."""
    return tuple(lb for lb, _ in strategy.members)
