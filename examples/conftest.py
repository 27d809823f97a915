"""Shared set-up for the pytest examples: hypothesis' "gradcheck" settings profile.

The profile has no deadline: the first check of a JAX or TensorFlow function traces and
compiles it, which takes many times longer than the next example and would otherwise be
reported as flaky. ``pytest --hypothesis-profile=gradcheck`` does the same from the command
line.
"""

from hypothesis import settings

import gradcheck.strategies as gst

settings.load_profile(gst.PROFILE)
