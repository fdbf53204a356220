"""lossatlas experiments: one module per study (installed as ``lossatlas_experiments``).

Config field names: ``learning_rate``, ``epochs``, ``batch_size``, ``seed`` and ``seeds`` mean
the same in every experiment (the optimiser's step size; passes over the training data, per
task in a continual stream; examples per step; the root seed the run's key comes from; the
number of seeds, a vmap axis), so ``--set learning_rate=...`` means one thing everywhere. A
sub-study's own value is ``<prefix>_<shared name>``, the prefix naming the sub-study
(``mnist_learning_rate``, ``lm_batch_size``, ``noise_learning_rate``, ``split_epochs``,
``mnist_seeds``); a grid of values is the plural (``learning_rates``, ``rosen_learning_rates``).
Names are spelt out: no ``lr`` / ``lrs``.

Each module defines ``Config``, ``QUICK``, ``run``, ``table``, ``checks`` and ``plot``
(see ``lossatlas.runner``). Register new studies in ``EXPERIMENTS``; ``REGISTRY`` is what
the ``lossatlas`` command (``python -m lossatlas_experiments``) hands to the library.
"""
from lossatlas.registry import Registry

EXPERIMENTS = {
    "mnist1d_benchmark": "MNIST-1D test accuracy of logreg/MLP/CNN/GRU vs Greydanus (2020), Table 1",
    "vanishing_gradients": "Per-layer gradient norms, activation/gradient histograms, trainability by depth",
    "exploding_gradients": "RNN/MLP gradient growth with length/depth, and global-norm clipping (Pascanu 2013)",
    "initialisation_scale": "Order-to-chaos trainability heatmap of deep tanh MLPs over sigma_w^2 and depth",
    "optimizers": "SGD/momentum/Nesterov/RMSProp/Adam: quadratic rates vs theory (kappa 10-1e4), Rosenbrock, MNIST-1D, Adam's effective step",
    "loss_functions": "Cross-entropy/MSE/token-NLL cost of a mistake, and the gradient each loss sends back",
    "backprop_vs_finite_differences": "jax.grad vs finite differences: float64 correctness on 4 models; cost vs parameter count",
    "error_specificity": "Misclassified-example gradients: readout/selective-unit concentration, near-diagonal class cosines, corrective step helps own class; 1/sqrt(B) minibatch error, within>between alignment",
    "batch_noise": "Gradient noise scale/SNR through training, steps to a target loss vs batch size (critical batch), SGD escaping a shallow minimum",
    "forgetting_ewc": "Three permuted tasks: per-task accuracy through training for fine-tuning, L2 and EWC (Kirkpatrick et al. 2017, Fig. 2A)",
    "forgetting_scenarios": "Task/domain/class-IL on split and permuted digits, 9 strategies, lambda tuned on validation vs van de Ven & Tolias (2019)",
    "fisher_estimators": "EWC with exact/sampled/empirical/batch Fisher: accuracy vs lambda, and each estimator vs the exact Fisher (Kunstner et al. 2019)",
    "learning_curve": "Loss vs step on MNIST-1D and markov_text: power-law fit, shrinking improvement, frequent patterns learned first, entropy-rate floor",
    "landscape_interpolation": "Loss/accuracy on the line from init to solution, MLP and CNN on MNIST-1D: monotone, no barrier (Goodfellow et al. 2015)",
    "mode_connectivity": "Two MNIST-1D minima: loss barrier on the straight line vs trained Bezier/polychain curves, plane through both and the bend (Garipov et al. 2018)",
    "landscape_filter_norm": "Filter-normalised 2-D loss surfaces of a deep plain vs residual MLP, convexity map, training path on its PCA plane (Li et al. 2018)",
    "hessian_spectrum": "SLQ Hessian density at init/after training, with/without batch norm: outliers ~ one per class (Ghorbani et al. 2019)",
    "minima_similarity": "Final test loss over hundreds of seeds per width: the spread shrinks as width grows (Choromanska et al. 2015)",
    "sharpness_batch_size": "Small vs large batch: lambda_max, epsilon-sharpness, SB-LB interpolation, generalisation gap (Keskar et al. 2017)",
    "edge_of_stability": "Full-batch GD on an MLP, eta as a vmap axis: lambda_max sharpens up to 2/eta and hovers there while the loss falls non-monotonically (Cohen et al. 2021, Fig. 1)",
    "forgetting_curvature": "Fisher overlap vs permuted fraction per layer (Kirkpatrick 2017 Fig. 2C); 1/2 d'Fd (full and diagonal Fisher) vs measured forgetting; task-A loss on the straight line",
    "deep_linear_plateaus": "Deep linear net from small init: one plateau and sudden drop per singular mode at Saxe's t_half, plateaus are saddles (lambda_min = -(2/n) s), deeper waits longer (Saxe et al. 2014)",
    "saddle_escape": "Starts near a strict saddle: GD's escape step = ln(R/|y0|)/ln(1+eta h), heavy ball faster, Newton attracted, saddle-free Newton fastest, perturbed GD leaves the stable manifold (Dauphin et al. 2014; Jin et al. 2017)",
    "critical_points_index": "Newton-MR critical points of a 70-parameter MLP: index rises with loss, lowest are minima, (eps - eps_c)^b fit (Dauphin et al. 2014 Fig. 1; Pennington & Bahri 2017)",
    "saddles_in_training": "MLP on MNIST-1D, SGD vs momentum: the Hessian's negative spectral mass (SLQ) shrinks but stays > 0, the gradient lies in the top eigenspace, not the negative one (Dauphin 2014; Sagun 2017; Ghorbani 2019; Gur-Ari 2018)",
}

#: The experiments above for :func:`lossatlas.runner.run_experiment` and :func:`lossatlas.cli.main`.
REGISTRY = Registry.from_package(__name__, EXPERIMENTS)
