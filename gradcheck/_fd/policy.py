"""The step-choice policy of the finite-difference engine, as one frozen value.

Every number that decides how a ladder of steps starts, grows, shrinks and stops lives here,
so that a check's strategy is a value passed down (`Ladder`), not module constants threaded
through five files. The figures are measured, not guessed: see Note: Step choice and error
estimate in `ladder`, and the power benchmark (`benchmarks/power.py`) that validates them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Ladder:
    """How one ladder of steps runs along a direction.

    Attributes:
        start_factor: first step as a fraction of |x| along the direction (a power of two is
            taken below it); 2^-7 measured best for cost at no loss of power.
        rtol: relative error at which a ladder may stop early.
        ratio: step ratio between rows of one tableau.
        coarse_ratio: step jump when the ladder is above the function's length scale.
        nonfinite_ratio: step jump after non-finite samples (overflow, a domain edge).
        min_rows: rows a tableau needs before its estimate is accepted.
        stall_rows: rows without improvement that end the ladder.
        max_rows: rows per direction at the most, jumps and retries included.
        noise_ulps: round-off of one function value, in units of eps_f·|f|.
        snap_halvings: ladder depth (in halvings) below which probe points stay exact.
        noisy_restart: a round-off limited ladder starts again this many times higher.
        kink_significance: a jump in one-sided slopes must exceed this many times its noise.
        bump_growth: one-sided slopes moving apart this fast as h halves: a bump, not a kink.
        too_big_ratio: row differences must shrink like r^-2 = 0.25; slower means "too big".
        step_target: relative round-off a first ladder should stay under when the caller
            knows the derivative's size (the noise-aware start floor).
        absolute: start_factor is a step in units of 1 rather than of |x|: where x is tiny
            the function's length scale is usually not (cos at 1e-8 needs steps near 1e-3,
            not 1e-10; NUMERICS.md, "Length scale ≠ |x| at tiny x").
        grid: steps are grid·2^k; 1.5 puts a ladder's samples between those of the power-of-two
            ladders (Note: A second grid of steps in `_judge`).
    """

    start_factor: float = 2.0**-7
    rtol: float = 1e-9
    ratio: float = 2.0
    coarse_ratio: float = 8.0
    nonfinite_ratio: float = 64.0
    min_rows: int = 3
    stall_rows: int = 2
    max_rows: int = 18
    noise_ulps: float = 1.0
    snap_halvings: int = 40
    noisy_restart: float = 128.0
    kink_significance: float = 32.0
    bump_growth: float = 1.5
    too_big_ratio: float = 0.45
    step_target: float = 1e-9
    absolute: bool = False
    grid: float = 1.0


DEFAULT = Ladder()
"""The first, cheap ladder every entry gets."""

THOROUGH = (
    *(Ladder(start_factor=s, rtol=1e-14) for s in (1.0, 0.1, 0.01, 0.001)),
    *(Ladder(start_factor=s, rtol=1e-14, absolute=True) for s in (1.0, 2.0**-4, 2.0**-10)),
)
"""The second look at contested entries: ladders from four starts relative to |x|, one to
four decades apart, and three in absolute units for where |x| is far below the length scale
(the one from a step of 1 also serves large constant offsets: Note: Step choice)."""

OFF_GRID = tuple(replace(p, grid=1.5) for p in THOROUGH)
"""The thorough ladders again on steps 1.5·2^k, for an estimate independent of theirs. Their
points stay exact (Note: Exact steps): 1.5·h is a multiple of h/2, one halving more."""

LARGEST_START = max(p.start_factor for p in THOROUGH if not p.absolute) * DEFAULT.noisy_restart
"""The largest first step (relative to |x|) any ladder may take, for snapping directions."""
