"""MM-EM: expectation-maximisation with a majorised sparsity penalty, and pruning."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._gaussian import MixtureParameters, at_covariance_floor
from .._m_step import gaussian_components, mm_weights
from .._objective import SparseObjective
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
    removal_moves : bool, default=False
        After convergence (with ``sparsity > 0``), remove the lightest
        component, run MM-EM again, and keep the removal if ``F`` ends lower;
        repeat until a removal does not pay. This escapes the local minima
        where a component is split between two (as component-wise EM does).
        During a trial ``loss_curve_`` records the incumbent's objective, so it
        stays non-increasing; the trial's iterations count in ``n_iter_``.
    """

    def __init__(
        self, *, max_iter, tol, reg_covar, prune_threshold, removal_moves=False
    ):
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.prune_threshold = prune_threshold
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

    def _descend(self, X, sample_weight, state, engine, objective, budget, record):
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
        iteration with its lower bound and ``F`` after it.
        """
        parameters, statistics, value = state.parameters, state.statistics, state.value
        lower_bound = state.lower_bound
        penalised = not objective.is_maximum_likelihood
        # A fresh start's lower bound is minus infinity, so its first
        # iteration cannot converge; a warm start's is the previous fit's.
        converged, settled = False, True
        for _ in range(budget):
            previous_lower_bound, lower_bound = lower_bound, -value
            old_weights = parameters.weights.cpu().numpy()
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
            parameters, statistics, value = candidate, new_statistics, new_value
            record(lower_bound, value, parameters.n_components)
            if abs(change) < self.tol and stable:
                converged = True
                break
        return _State(
            parameters, statistics, value, state.never_prune, converged, lower_bound
        )

    def solve(
        self,
        X,
        sample_weight,
        initial: MixtureParameters,
        engine: Engine,
        objective: SparseObjective,
        report: ProgressReport,
        previous_lower_bound: float = -math.inf,
    ) -> FitResult:
        """Run MM-EM from ``initial`` (then the removal moves, if enabled)."""
        statistics, value = self._evaluate(engine, X, sample_weight, initial, objective)
        never_prune = np.zeros(objective.n_components_initial, dtype=bool)
        state = _State(
            initial, statistics, value, never_prune, False, previous_lower_bound
        )
        path = FitPath(report)
        state = self._descend(
            X, sample_weight, state, engine, objective, self.max_iter, path.record
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
        return path.result(state.parameters, state.value, state.converged)
