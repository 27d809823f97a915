"""`gradcheck audit`'s machinery: resolve targets, discover candidates, run them in isolation.

`targets.resolve` turns TARGET arguments into units (modules); `pool.Audit` runs each unit in
a reusable worker process (`worker`), where `discover` imports it and lists its declared
cases and recognised objects (`synth`). The CLI (`gradcheck.cli`) only wires these together
and hands the outcomes to `gradcheck.reporting`.
"""

from .pool import Audit, Options
from .targets import Unit, resolve

__all__ = ["Audit", "Options", "Unit", "resolve"]
