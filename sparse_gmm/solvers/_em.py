"""MM-EM: expectation-maximisation with a majorised sparsity penalty, and pruning."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._gaussian import (
    MixtureParameters,
    at_covariance_floor,
    precision_cholesky_from_covariances,
)
from .._m_step import gaussian_components, mm_weights
from .._merging import merged, most_overlapping_pair
from .._objective import SparseObjective
from .._size_selection import bic
from ..engines import Engine, SufficientStatistics
from ._base import FitPath, FitResult, ProgressReport, Solver


@dataclass
class _State:
    """An MM-EM iterate with its E-step, as the descent passes it along."""

    parameters: MixtureParameters
    statistics: SufficientStatistics
    value: float
    never_prune: np.ndarray
    converged: bool
    lower_bound: float = -math.inf
    """The last iteration's lower bound: minus ``F`` at its E-step."""


# Relative decrease of F below which an extrapolation or a merge is not taken.
_TIE = 1e-12
# Bhattacharyya coefficient below which two components are not worth the
# E-step that would test their merge: a pair that overlaps less than this
# rarely models one cluster.
_MERGE_OVERLAP = 0.1

NON_FINITE_LIKELIHOOD = (
    "The log-likelihood became {value} during the fit: the data overflow the "
    "working precision or a component collapsed. Scale the input data or "
    "increase reg_covar (it is {reg_covar!r})."
)


def _annihilated(counts, keep, min_count):
    """Which component to annihilate: the weakest one below ``min_count``.

    One at a time, as component-wise EM does (Figueiredo and Jain 2002): the
    next E-step hands its samples to the others, which may then hold
    enough. The last component is never removed.

    Parameters
    ----------
    counts : numpy.ndarray of shape (n_components,)
        Expected sample counts ``n_j``.
    keep : numpy.ndarray of bool, shape (n_components,)
        The components that the weight update keeps.
    min_count : float

    Returns
    -------
    numpy.ndarray of bool, shape (n_components,)
    """
    annihilated = np.zeros_like(keep)
    weak = keep & (counts < min_count)
    if weak.any() and keep.sum() > 1:
        annihilated[np.flatnonzero(weak)[np.argmin(counts[weak])]] = True
    return annihilated


def _weights_settled(old_weights, new_weights, rtol):
    """Whether no weight moved by more than ``rtol`` of itself in an iteration.

    A weak sparsity penalty lets a component die slowly: F then changes by
    less than ``tol`` per iteration while the weight is still falling, and
    a fit that stopped there would keep it.
    """
    return bool(np.all(np.abs(new_weights - old_weights) <= rtol * old_weights))


def _covariance_factor(covariances, covariance_type):
    """A square root of the covariances that stays one under extrapolation.

    The lower Cholesky factor for full and tied covariances, the standard
    deviations for diagonal and spherical ones: any value of the factor
    squares to a positive semi-definite covariance.
    """
    if covariance_type in ("full", "tied"):
        return torch.linalg.cholesky(covariances)
    return covariances.sqrt()


def _squared_factor(factor, covariance_type):
    if covariance_type in ("full", "tied"):
        return factor @ factor.mT
    return factor.square()


def _extrapolated(theta0, theta1, theta2, prune_threshold, reg_covar):
    """SQUAREM's point from three successive MM-EM iterates, or None.

    Varadhan and Roland's (2008) squared iterative method, scheme S3: with
    ``r = theta1 - theta0`` and ``v = theta2 - 2 theta1 + theta0``, the step
    ``alpha = -|r| / |v|`` and the point ``theta0 - 2 alpha r + alpha^2 v``,
    in the coordinates (weights, means, covariance factor); docs/maths.rst,
    section 3.4. Components whose extrapolated weight falls to
    ``prune_threshold`` or below are left out.

    Parameters
    ----------
    theta0, theta1, theta2 : MixtureParameters
        Successive iterates, with the same components.
    prune_threshold, reg_covar : float

    Returns
    -------
    MixtureParameters or None
        None where the step is no longer than plain MM-EM's (``alpha >= -1``)
        or the point is not a mixture.
    """
    kind = theta0.covariance_type
    coordinates = [
        (p.weights, p.means, _covariance_factor(p.covariances, kind))
        for p in (theta0, theta1, theta2)
    ]
    r = [b - a for a, b in zip(coordinates[0], coordinates[1], strict=True)]
    v = [
        c - 2 * b + a
        for a, b, c in zip(coordinates[0], coordinates[1], coordinates[2], strict=True)
    ]
    r_norm = math.sqrt(sum(float(t.square().sum()) for t in r))
    v_norm = math.sqrt(sum(float(t.square().sum()) for t in v))
    if not v_norm > 0 or not math.isfinite(r_norm / v_norm):
        return None
    alpha = -r_norm / v_norm
    if alpha >= -1.0:
        return None
    weights, means, factor = (
        a - 2 * alpha * b + alpha**2 * c
        for a, b, c in zip(coordinates[0], r, v, strict=True)
    )
    keep = (weights > prune_threshold).cpu().numpy()
    if not keep.any():
        return None
    covariances = _squared_factor(factor, kind)
    try:
        precisions_cholesky = precision_cholesky_from_covariances(
            covariances, kind, reg_covar
        )
    except ValueError:
        return None
    # subset renormalises the weights it keeps, all of them positive.
    return MixtureParameters(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=precisions_cholesky,
        covariance_type=kind,
        active=theta0.active,
    ).subset(keep)


def _bic_allows(parameters, statistics, merged, merged_statistics):
    """Whether a merge leaves BIC no higher, at the current iterates.

    The sparsity can prefer fewer components than BIC does, and the walk
    that follows the sparse fit only removes components: a merge that BIC
    would not make could take a real cluster that nothing restores (on
    compare.py's overlapping mixtures in 5 and 8 dimensions, 3 of 4 fits
    of 6 components lost one). A spare component that splits a cluster
    with another costs far less likelihood than its parameters' BIC charge.

    Parameters
    ----------
    parameters, merged : MixtureParameters
        Before and after the merge.
    statistics, merged_statistics : SufficientStatistics
        Their E-steps.

    Returns
    -------
    bool
    """
    total_weight = statistics.total_weight
    return bic(merged_statistics.log_likelihood, merged, total_weight) <= bic(
        statistics.log_likelihood, parameters, total_weight
    )


def _degenerate(counts, parameters, reg_covar, min_count):
    """Components that cannot support a covariance of their own.

    Those with fewer expected samples than ``max(min_count, D + 1)``, and
    those whose smallest variance has fallen to the ``reg_covar`` floor.

    Returns
    -------
    numpy.ndarray of bool, shape (n_components,)
    """
    too_few = counts < max(min_count, parameters.n_features + 1)
    return too_few | at_covariance_floor(parameters, reg_covar)


class MMEMSolver(Solver):
    """Minimise the sparse objective by majorisation-minimisation EM.

    Each iteration is an E-step (one pass of the engine) and a closed-form
    M-step; the concave penalty is replaced by its tangent at the current
    weights, so ``F`` never increases (docs/maths.rst, section 3). Components
    whose weight falls below ``prune_threshold`` are removed; should a removal
    raise ``F`` (possible without sparsity), it is undone and that component is
    never pruned again in this fit. With a penalised objective, an iteration
    whose M-step would raise ``F`` (the covariance update with ``reg_covar``
    is not the exact minimiser, and rounding near a fixed point) ends the fit
    at the previous iterate; without penalty the iterations and the stopping
    rule are scikit-learn's EM's.

    Parameters
    ----------
    max_iter : int
    tol : float
        Convergence when the lower bound (``-F`` at an iteration's E-step)
        changes by less than ``tol`` from one iteration to the next, as in
        scikit-learn; with a penalised objective, over iterations that
        pruned nothing and moved no weight by more than ``10 * tol`` of
        itself.
    reg_covar : float
    prune_threshold : float
    acceleration : {'squarem', None}, default=None
        With 'squarem', while the objective is penalised, every two MM-EM
        iterations are followed by SQUAREM's extrapolation from the three
        iterates (:func:`_extrapolated`), taken only where it lowers ``F``
        (so ``F`` still never increases); it counts as an iteration when
        taken. Maximum likelihood (the relaxed refit, ``sparsity=0`` without
        a covariance prior) keeps plain EM: scikit-learn's iterates.
    merge_moves : bool, default=False
        While the sparsity penalty is in force, at the start of every SQUAREM
        cycle (every third iteration without acceleration), merge the two
        most overlapping components into one with their pooled moments
        where that lowers ``F`` (:mod:`sparse_gmm._merging`); a declined
        pair is not proposed again until the component count changes. It
        counts as an iteration when taken. Not for tied covariances.
    removal_moves : bool, default=False
        After convergence (with ``sparsity > 0``), remove the lightest
        component, run MM-EM again, and keep the removal if ``F`` ends lower;
        repeat until a removal does not pay. This escapes the local minima
        where a component is split between two (as component-wise EM does).
        During a trial ``loss_curve_`` records the incumbent's objective, so it
        stays non-increasing; the trial's iterations count in ``n_iter_``.
    """

    def __init__(
        self,
        *,
        max_iter,
        tol,
        reg_covar,
        prune_threshold,
        acceleration=None,
        merge_moves=False,
        removal_moves=False,
    ):
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.prune_threshold = prune_threshold
        self.acceleration = acceleration
        self.merge_moves = merge_moves
        self.removal_moves = removal_moves

    def _evaluate(self, engine, X, sample_weight, parameters, objective):
        statistics = engine.statistics(X, sample_weight, parameters)
        mean_log_likelihood = statistics.mean_log_likelihood
        if not math.isfinite(mean_log_likelihood):
            raise ValueError(
                NON_FINITE_LIKELIHOOD.format(
                    value=mean_log_likelihood, reg_covar=self.reg_covar
                )
            )
        return statistics, objective.value(mean_log_likelihood, parameters)

    def _m_step(
        self, statistics: SufficientStatistics, weights, keep, parameters, objective
    ):
        means, covariances, precisions_cholesky = gaussian_components(
            statistics,
            parameters.covariance_type,
            self.reg_covar,
            keep,
            objective.covariance_prior,
        )
        kept = weights[keep]
        return MixtureParameters(
            weights=torch.as_tensor(
                kept / kept.sum(), dtype=torch.float64, device=means.device
            ),
            means=means,
            covariances=covariances,
            precisions_cholesky=precisions_cholesky,
            covariance_type=parameters.covariance_type,
            active=parameters.active[keep],
        )

    def _descend(
        self,
        X,
        sample_weight,
        state,
        engine,
        objective,
        budget,
        record,
        stop=None,
    ):
        """MM-EM iterations from ``state`` until convergence or ``budget`` runs out.

        Iteration ``t`` is scikit-learn's: the E-step at the parameters
        ``theta_(t-1)`` (already computed: ``state.statistics`` and
        ``state.value``, ``F(theta_(t-1))``), whose ``-F`` is the iteration's
        lower bound, then the M-step to ``theta_t``. The fit has converged
        when the lower bound changed by less than ``tol`` since the previous
        iteration's (never in the first iteration, whose previous bound is
        ``state.lower_bound``, minus infinity on a fresh start); the M-step of
        that iteration is still taken. With a penalised objective, the change
        counts only when the previous and the current iterations pruned
        nothing and the previous one moved no weight by more than ``10 *
        tol`` of itself, and an M-step that would raise ``F`` is not taken
        (docs/maths.rst, section 3.3). Each M-step's parameters are evaluated
        at once: that E-step is the next iteration's, or the fitted model's.

        ``record(lower_bound, value, n_components)`` is called after each
        iteration with its lower bound and ``F`` after it. Where
        ``stop(parameters, statistics)`` is true after an iteration, the
        descent ends there, unconverged.
        """
        parameters, statistics, value = state.parameters, state.statistics, state.value
        lower_bound = state.lower_bound
        penalised = not objective.is_maximum_likelihood
        # A fresh start's lower bound is minus infinity, so its first
        # iteration cannot converge; a warm start's is the previous fit's.
        converged, settled = False, True
        accelerate = penalised and self.acceleration == "squarem"
        merging = (
            self.merge_moves
            and objective.sparsity > 0
            and parameters.covariance_type != "tied"
        )
        # The pairs whose merge was declined, at the component count they
        # were declined at.
        declined, declined_at = set(), parameters.n_components
        # The plain iterates since the last extrapolation or removal, and F
        # where they began.
        history, cycle_value = [], value
        for _ in range(budget):
            previous_lower_bound, lower_bound = lower_bound, -value
            old_weights = parameters.weights.cpu().numpy()
            if accelerate and len(history) == 2:
                # A cycle: two MM-EM iterations, then the extrapolation. Slow
                # (linear) convergence makes each plain step's change small
                # far from the optimum, so the cycle as a whole is judged.
                cycle_start = history[0]
                jump = self._squarem_step(
                    history, parameters, X, sample_weight, engine, objective, value
                )
                history = []
                if jump is not None:
                    parameters, statistics, value = jump
                    record(lower_bound, value, parameters.n_components)
                if self._cycle_converged(cycle_start, cycle_value, parameters, value):
                    converged = True
                    break
                if jump is not None:
                    continue
            if merging and len(history) % 3 == 0 and parameters.n_components > 1:
                if parameters.n_components != declined_at:
                    declined, declined_at = set(), parameters.n_components
                move = self._merge_move(
                    parameters,
                    statistics,
                    X,
                    sample_weight,
                    engine,
                    objective,
                    value,
                    declined,
                )
                if move is not None:
                    parameters, statistics, value = move
                    history = []
                    record(lower_bound, value, parameters.n_components)
                    continue
            if accelerate and not history:
                cycle_value = value
            mass = statistics.moments[:, 0].cpu().numpy()
            weights = mm_weights(
                mass / mass.sum(), objective.tangent_slopes(old_weights)
            )
            # The masses are in units of sample weight: expected counts.
            counts = mass
            keep = (weights >= self.prune_threshold) | state.never_prune[
                parameters.active
            ]
            keep[np.argmax(weights)] = True
            annihilated = _annihilated(counts, keep, objective.min_count)
            keep &= ~annihilated
            candidate = self._m_step(statistics, weights, keep, parameters, objective)
            new_statistics, new_value = self._evaluate(
                engine, X, sample_weight, candidate, objective
            )
            pruned = not keep.all()
            if pruned and not annihilated.any() and new_value > value:
                # Keeping a light component lowers F here (possible without
                # sparsity): keep it, unless it is degenerate, whose
                # likelihood would otherwise block every later removal.
                degenerate = _degenerate(
                    counts, parameters, self.reg_covar, objective.min_count
                )
                removed = ~keep
                if not degenerate[removed].any():
                    state.never_prune[parameters.active[removed]] = True
                    keep[:] = True
                    pruned = False
                    candidate = self._m_step(
                        statistics, weights, keep, parameters, objective
                    )
                    new_statistics, new_value = self._evaluate(
                        engine, X, sample_weight, candidate, objective
                    )
            if penalised and not pruned and new_value > value:
                # reg_covar makes the covariance update inexact (as in
                # scikit-learn): where a component is collapsing, or near a
                # fixed point, an iteration can raise F slightly; rounding can
                # too. The iteration's M-step is not taken: the fit ends at
                # the better, previous iterate.
                record(lower_bound, value, parameters.n_components)
                converged = True
                break
            # Convergence is judged on the previous M-step's change, as
            # scikit-learn does; this iteration's M-step is taken either way.
            change = lower_bound - previous_lower_bound
            stable = settled and not pruned
            settled = not pruned and (
                not penalised
                or _weights_settled(
                    old_weights, candidate.weights.cpu().numpy(), 10 * self.tol
                )
            )
            history = [] if pruned else [*history, parameters]
            parameters, statistics, value = candidate, new_statistics, new_value
            record(lower_bound, value, parameters.n_components)
            if stop is not None and stop(parameters, statistics):
                break
            if abs(change) < self.tol and stable and not accelerate:
                converged = True
                break
        return _State(
            parameters, statistics, value, state.never_prune, converged, lower_bound
        )

    def _cycle_converged(self, start, start_value, parameters, value):
        """Whether a SQUAREM cycle from ``start`` to ``parameters`` ends the fit.

        As plain MM-EM's rule over the whole cycle: no component removed, ``F``
        changed by less than ``tol`` and no weight moved by more than ``10 *
        tol`` of itself.
        """
        return (
            parameters.n_components == start.n_components
            and abs(start_value - value) < self.tol
            and _weights_settled(
                start.weights.cpu().numpy(),
                parameters.weights.cpu().numpy(),
                10 * self.tol,
            )
        )

    def _merge_move(
        self,
        parameters,
        current_statistics,
        X,
        sample_weight,
        engine,
        objective,
        value,
        declined,
    ):
        """The most overlapping pair merged, where that lowers ``F``.

        Returns
        -------
        tuple of (MixtureParameters, SufficientStatistics, float) or None
            The merged mixture, its E-step and its ``F``; None where no
            pair overlaps by :data:`_MERGE_OVERLAP`, or the merge does not
            lower ``F`` below ``value`` by more than rounding or raises BIC
            (:func:`_bic_allows`; the pair is then added to ``declined``).
        """
        pair, overlap = most_overlapping_pair(parameters, declined)
        if pair is None or overlap < _MERGE_OVERLAP:
            return None
        try:
            point = merged(parameters, *pair)
            statistics, point_value = self._evaluate(
                engine, X, sample_weight, point, objective
            )
        except ValueError:
            point_value = math.inf
        if point_value < value - _TIE * abs(value) and _bic_allows(
            parameters, current_statistics, point, statistics
        ):
            return point, statistics, point_value
        j, k = pair
        declined.add((int(parameters.active[j]), int(parameters.active[k])))
        return None

    def _squarem_step(
        self, history, parameters, X, sample_weight, engine, objective, value
    ):
        """SQUAREM's point after ``history + [parameters]``, where it lowers ``F``.

        Returns
        -------
        tuple of (MixtureParameters, SufficientStatistics, float) or None
            The point, its E-step and its ``F``; None where there is no
            point (:func:`_extrapolated`), it leaves the working precision,
            or it does not lower ``F`` below ``value``, the last iterate's, by
            more than rounding.
        """
        point = _extrapolated(
            *history, parameters, self.prune_threshold, self.reg_covar
        )
        if point is None:
            return None
        try:
            statistics, point_value = self._evaluate(
                engine, X, sample_weight, point, objective
            )
        except ValueError:
            return None
        # Not a tie either: near the optimum rounding alone decides whether a
        # point "lowers" F, and equal data summed in another order (weights
        # against repeated rows) would then take different paths.
        lowers = point_value < value - _TIE * abs(value)
        return (point, statistics, point_value) if lowers else None

    def solve(
        self,
        X,
        sample_weight,
        initial: MixtureParameters,
        engine: Engine,
        objective: SparseObjective,
        report: ProgressReport,
        previous_lower_bound: float = -math.inf,
        stop=None,
    ) -> FitResult:
        """Run MM-EM from ``initial`` (then the removal moves, if enabled).

        ``stop(parameters, statistics) -> bool``, optional: called after
        each iteration with the new iterate and its E-step; true ends the
        fit there, unconverged. For callers that would discard the fit
        (the size choice's fits of a given size, once they lose a
        component or cannot win).
        """
        statistics, value = self._evaluate(engine, X, sample_weight, initial, objective)
        never_prune = np.zeros(objective.n_components_initial, dtype=bool)
        state = _State(
            initial, statistics, value, never_prune, False, previous_lower_bound
        )
        path = FitPath(report)
        state = self._descend(
            X,
            sample_weight,
            state,
            engine,
            objective,
            self.max_iter,
            path.record,
            stop,
        )
        while (
            self.removal_moves
            and objective.sparsity > 0
            and state.parameters.n_components > 1
            and len(path) < self.max_iter
        ):
            incumbent = state
            keep = np.ones(incumbent.parameters.n_components, dtype=bool)
            keep[np.argmin(incumbent.parameters.weights.cpu().numpy())] = False
            trial_parameters = incumbent.parameters.subset(keep)
            trial_statistics, trial_value = self._evaluate(
                engine, X, sample_weight, trial_parameters, objective
            )

            def record_trial(lower_bound, value, n_components, incumbent=incumbent):
                # The model is the incumbent until the trial beats it.
                if value < incumbent.value:
                    path.record(lower_bound, value, n_components)
                else:
                    path.record(
                        incumbent.lower_bound,
                        incumbent.value,
                        incumbent.parameters.n_components,
                    )

            trial = self._descend(
                X,
                sample_weight,
                _State(
                    trial_parameters,
                    trial_statistics,
                    trial_value,
                    incumbent.never_prune.copy(),
                    False,
                ),
                engine,
                objective,
                self.max_iter - len(path),
                record_trial,
            )
            if trial.value >= incumbent.value:
                state = incumbent
                break
            state = trial
        return path.result(
            state.parameters,
            state.value,
            state.converged,
            state.statistics.mean_log_likelihood,
        )
