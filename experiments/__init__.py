"""lossatlas experiments: one module per study (installed as ``lossatlas_experiments``).

Each module defines ``Config``, ``QUICK``, ``run``, ``table``, ``checks`` and ``plot``
(see ``lossatlas.runner``). Register new studies here.
"""
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
    "forgetting_scenarios": "Task/domain/class-IL on split and permuted digits, 9 strategies, lambda tuned on validation vs van de Ven & Tolias (2019)",
    "fisher_estimators": "EWC with exact/sampled/empirical/batch Fisher: accuracy vs lambda, and each estimator vs the exact Fisher (Kunstner et al. 2019)",
    "learning_curve": "Loss vs step on MNIST-1D and markov_text: power-law fit, shrinking improvement, frequent patterns learned first, entropy-rate floor",
}
