"""`import gradcheck` (and the pytest plugin) must load no framework: NumPy only."""

import subprocess
import sys


def test_no_framework_is_imported():
    code = (
        "import sys, gradcheck, pytest_gradcheck\n"
        "gradcheck.check  # the public API is reachable\n"
        "loaded = {'torch', 'jax', 'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_check_loads_no_framework():
    code = (
        "import sys, numpy as np, gradcheck as gc\n"
        "assert gc.check(np.sin, np.array([0.5]), jacobian=lambda x: np.diag(np.cos(x))).passed\n"
        "loaded = {'torch', 'jax', 'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
