"""A synthetic character language (a Markov chain) whose entropy rate is known exactly."""
from __future__ import annotations

import numpy as np

from lossatlas import validate
from lossatlas.data.dataset import Dataset

#: Characters used for token ids 0, 1, 2, ... (the vocabulary is the first V).
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Exponent of the Zipf-like preference ``(j + 1) ** -ZIPF_EXPONENT`` over next characters.
ZIPF_EXPONENT = 1.0
#: Weight of the uniform distribution mixed into every row, so all transitions are
#: possible and the chain is ergodic (unique stationary distribution).
UNIFORM_MIX = 1e-4


def _context_step(pi: np.ndarray, P: np.ndarray, order: int) -> np.ndarray:
    """One step of the context chain: the distribution of the next context."""
    V = P.shape[1]
    if order == 1:
        return pi @ P
    # context (a, b) -> (b, j) with probability P[(a, b), j]
    return np.einsum("ab,abj->bj", pi.reshape(V, V), P.reshape(V, V, V)).reshape(-1)


def stationary_distribution(P: np.ndarray, order: int = 1, method: str = "auto",
                            tol: float = 1e-13, max_iter: int = 1_000_000) -> np.ndarray:
    """Exact stationary distribution of the context chain of an order-k Markov source.

    Contexts are the last ``order`` tokens ``(c_1, ..., c_k)`` indexed
    ``sum_i c_i * V**(k-i)`` (most recent token last). Context ``c`` moves to
    ``(c_2, ..., c_k, j)`` with probability ``P[c, j]``. ``method="solve"`` solves
    the balance equations ``pi T = pi, sum(pi) = 1`` directly; ``"power"`` runs
    lazy power iteration (``(T + I) / 2``: same fixed point, always aperiodic)
    until the L1 change is below ``tol``; ``"auto"`` solves for up to 1024
    contexts and iterates otherwise. The chain must be irreducible.

    Args:
      P: transition table ``[V**order, V]`` with rows summing to 1.
      order: context length k (>= 1).
      method: ``"auto"``, ``"solve"`` or ``"power"``.
      tol: L1 convergence tolerance for power iteration.
      max_iter: power-iteration budget.

    Returns:
      ``pi`` of shape ``[V**order]`` (float64, sums to 1).
    """
    P = np.asarray(P, np.float64)
    V = P.shape[1]
    n = V**order
    if P.shape != (n, V):
        raise ValueError(f"P must have shape [V**order, V] = {(n, V)}, got {P.shape}")
    if method not in ("auto", "solve", "power"):
        raise ValueError(f"method must be 'auto', 'solve' or 'power', got {method!r}")
    if method == "solve" or (method == "auto" and n <= 1024):
        T = np.zeros((n, n))
        nxt = (np.arange(n)[:, None] * V + np.arange(V)[None, :]) % n
        np.add.at(T, (np.repeat(np.arange(n), V), nxt.reshape(-1)), P.reshape(-1))
        A = T.T - np.eye(n)
        A[-1, :] = 1.0
        b = np.zeros(n)
        b[-1] = 1.0
        pi = np.linalg.solve(A, b)
    else:
        pi = np.full(n, 1.0 / n)
        for _ in range(max_iter):
            new = 0.5 * (pi + _context_step(pi, P, order))
            if np.abs(new - pi).sum() < tol:
                pi = new
                break
            pi = new
        else:
            raise RuntimeError(f"power iteration did not converge in {max_iter} steps")
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def entropy_rate(P: np.ndarray, pi: np.ndarray) -> float:
    """Entropy rate ``-sum_c pi[c] sum_j P[c, j] log P[c, j]`` in nats per token.

    Args:
      P: transition table ``[num_contexts, V]``.
      pi: stationary distribution over contexts ``[num_contexts]``.

    Returns:
      The entropy rate (``0 log 0 = 0``).
    """
    P = np.asarray(P, np.float64)
    plogp = np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0)
    return float(-(np.asarray(pi, np.float64) @ plogp.sum(axis=1)))


def transition_table(vocab_size: int, order: int, concentration: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Random transition table with a shared Zipf-like bias towards low token ids.

    Each row is ``Dirichlet(concentration * ones(V))`` multiplied elementwise by
    ``w_j = (j + 1) ** -ZIPF_EXPONENT`` and renormalised, then mixed with
    ``UNIFORM_MIX`` of the uniform distribution. The shared preference makes
    character ``j`` roughly ``1/(j+1)`` as frequent as ``'a'``, so frequent and
    rare characters coexist.

    Args:
      vocab_size: V.
      order: context length k.
      concentration: Dirichlet concentration (small: peaky rows, low entropy).
      rng: numpy Generator.

    Returns:
      ``P`` of shape ``[V**order, V]`` (float64, rows sum to 1).
    """
    V = vocab_size
    rows = rng.dirichlet(np.full(V, concentration), size=V**order)
    rows = rows * (np.arange(1, V + 1, dtype=np.float64) ** -ZIPF_EXPONENT)
    sums = rows.sum(axis=1, keepdims=True)
    rows = np.where(sums > 0, rows / np.where(sums > 0, sums, 1.0), 1.0 / V)
    P = (1.0 - UNIFORM_MIX) * rows + UNIFORM_MIX / V
    return P / P.sum(axis=1, keepdims=True)


def sample_sequences(P: np.ndarray, pi: np.ndarray, order: int, num_seqs: int, length: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Sample stationary token sequences: the first ``order`` tokens are a context from ``pi``.

    Args:
      P: transition table ``[V**order, V]``.
      pi: stationary distribution over contexts.
      order: context length k.
      num_seqs: number of sequences.
      length: tokens per sequence (>= order).
      rng: numpy Generator.

    Returns:
      int32 tokens ``[num_seqs, length]``; every window is a draw from the stationary process.
    """
    V = P.shape[1]
    n = V**order
    cdf_pi = np.cumsum(pi)
    ctx = np.minimum(np.searchsorted(cdf_pi, rng.random(num_seqs) * cdf_pi[-1], side="right"),
                     n - 1)
    tokens = np.empty((num_seqs, length), np.int32)
    for i in range(order):  # digits of the context, oldest first
        tokens[:, i] = (ctx // V ** (order - 1 - i)) % V
    cdf = np.cumsum(P, axis=1)
    for t in range(order, length):
        u = rng.random(num_seqs)[:, None] * cdf[ctx, -1:]
        tok = np.minimum((cdf[ctx] <= u).sum(axis=1), V - 1)
        tokens[:, t] = tok
        ctx = (ctx * V + tok) % n
    return tokens


def load_markov_text(*, vocab_size: int = 16, order: int = 1, concentration: float = 0.3,
                     seq_len: int = 64, num_train: int = 2048, num_test: int = 256,
                     seed: int = 0) -> Dataset:
    """Next-character prediction on a random order-k Markov source with exact entropy rate.

    Each sequence has ``seq_len + 1`` tokens: its first ``order`` tokens are a
    context drawn from the stationary distribution, the rest follow ``P``; then
    ``x = tokens[:-1]`` and ``y = tokens[1:]``. The target ``y[:, t]`` is
    predicted from ``x[:, :t+1]`` (``t + 1`` tokens); it has its full k-token
    context iff ``t + 1 >= k``, i.e. ``t >= order - 1`` (every position for
    order 1; all but ``t = 0`` for order 2). On those positions
    ``meta["entropy_rate"]`` is the lowest achievable expected NLL (nats/token).

    Args:
      vocab_size: V, in [2, 62]; characters are ``ALPHABET[:V]``.
      order: context length k, 1 or 2.
      concentration: Dirichlet concentration of each row, > 0 (see ``transition_table``).
      seq_len: tokens per example, >= 1.
      num_train, num_test: numbers of sequences (train >= 1, test >= 0).
      seed: seed (>= 0); table, train and test use independent child streams.

    Returns:
      A ``Dataset`` with int32 ``x, y [N, seq_len]``, ``task="language"``,
      ``num_classes=V`` and ``meta`` keys ``entropy_rate``, ``order``, ``vocab``,
      ``transition`` ``[V**k, V]``, ``stationary`` ``[V**k]``, ``unigram`` ``[V]``,
      ``full_context_start`` (= order - 1), ``concentration``, ``zipf_exponent``, ``note``.
    """
    V = validate.integer("", "vocab_size", vocab_size, 2, len(ALPHABET))
    order = validate.integer("", "order", order, 1, 2)
    concentration = validate.number("", "concentration", concentration, 0.0, lo_open=True)
    seq_len = validate.integer("", "seq_len", seq_len, 1)
    num_train = validate.integer("", "num_train", num_train, 1)
    num_test = validate.integer("", "num_test", num_test, 0)
    seed = validate.integer("", "seed", seed, 0)

    rng_table, rng_train, rng_test = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    P = transition_table(V, order, concentration, rng_table)
    pi = stationary_distribution(P, order)
    H = entropy_rate(P, pi)
    unigram = pi.reshape((V,) * order).sum(axis=tuple(range(order - 1)))
    train = sample_sequences(P, pi, order, num_train, seq_len + 1, rng_train)
    test = sample_sequences(P, pi, order, num_test, seq_len + 1, rng_test)
    note = (f"y[:, t] is predicted from x[:, :t+1]; positions t >= {order - 1} (order - 1) of y "
            f"have the full {order}-token context and entropy_rate is the floor on the mean "
            f"NLL there")
    return Dataset(
        name="markov_text",
        x_train=np.ascontiguousarray(train[:, :-1]), y_train=np.ascontiguousarray(train[:, 1:]),
        x_test=np.ascontiguousarray(test[:, :-1]), y_test=np.ascontiguousarray(test[:, 1:]),
        num_classes=V, task="language",
        meta={"entropy_rate": H, "order": order, "vocab": ALPHABET[:V], "transition": P,
              "stationary": pi, "unigram": unigram, "full_context_start": order - 1,
              "concentration": concentration, "zipf_exponent": ZIPF_EXPONENT, "note": note})
