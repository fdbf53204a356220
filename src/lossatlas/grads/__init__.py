"""Gradient diagnostics that work for any model: checks, per-example gradients, noise, per-class.

Every function takes ``loss_fn(params, batch) -> scalar`` and a params pytree, not a
model object. ``batch`` / ``data`` is a pytree of arrays sharing a leading example
axis (e.g. ``(x, y)`` or ``{"x": x, "y": y}``) and ``loss_fn`` returns the MEAN loss
of the batch. The per-example loss of example i is ``loss_fn`` applied to a batch
of ONE example: the batch tree with every leaf sliced to ``leaf[i:i + 1]``.

Whole datasets run inside one jitted call: ``lax.scan`` / ``lax.map`` over chunks of
``chunk_size`` examples, the last chunk padded (with copies of example 0) and the
padding masked out exactly; all per-example gradients never exist at once except
in :func:`per_example`, whose job is to return them. ``loss_fn`` is a static
argument of the compiled programs: pass the same function object to reuse them.

* :func:`check`: ``jax.grad`` vs central finite differences, per leaf (float64).
* :func:`per_example`: per-example gradients ``[N, ...]`` (vmap of grad).
* :func:`noise_scale`: mean gradient, tr(Sigma), B_simple (McCandlish et al. 2018),
  gradient SNR; :func:`minibatch_gradient_error`: ||g_B - G|| / ||G|| vs B.
* :func:`class_gradients`: per-class mean gradients and their cosine matrix;
  :func:`within_between_alignment`: gradient cosine within vs between classes.
"""
from lossatlas.grads.flow import Flow, flow, flow_fn, kernel_grad_norms, layer_order, param_names
from lossatlas.grads.gradcheck import check
from lossatlas.grads.jacobian import jacobian_spectrum
from lossatlas.grads.noise import gradient_moments, minibatch_gradient_error, noise_scale
from lossatlas.grads.per_example import per_example
from lossatlas.grads.specificity import ClassGradients, class_gradients, within_between_alignment

__all__ = [
    "Flow", "flow", "flow_fn", "kernel_grad_norms", "layer_order", "param_names", "jacobian_spectrum",
    "ClassGradients", "check", "class_gradients", "gradient_moments", "minibatch_gradient_error",
    "noise_scale", "per_example", "within_between_alignment",
]
