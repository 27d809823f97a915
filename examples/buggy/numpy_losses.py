"""A hand-written softplus gradient with a factor that is 0.1 % off: the audit must flag it.

The story: softplus(x) = log(1 + eˣ) has the logistic function as its derivative; a constant
slipped in while the derivative was being simplified (here 1.001, as a rescaling left behind
would). Plots and losses still look right; `gradcheck audit examples/buggy/numpy_losses.py`
reports every entry off by about 1e-3 relative, far beyond the finite-difference error bound.
"""

import numpy as np

import gradcheck


@gradcheck.case(np.array([-1.0, 0.5, 3.0]), grad=lambda x: 1 / (1 + np.exp(-x)) * 1.001)
def softplus(x):
    """sum(softplus(x)) with a gradient that is 0.1 % off."""
    return np.sum(np.logaddexp(0.0, x))
