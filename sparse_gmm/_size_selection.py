"""Choose the number of components by a criterion: walk down from the sparse fit.

The sparsity prior ends its fit with about as many components as the data
need, but a weak prior (large samples) lets light, redundant components die
over hundreds of iterations, and no single annihilation threshold both
keeps two real 228-sample clusters in 30 dimensions and stops small data
from being cut into pieces. So the sparse fit only proposes a size; then, as
Figueiredo and Jain's outer loop does, the weakest component is removed and
the fit re-converges, each size is scored by a criterion, and the best is
kept (``docs/maths.rst``, section 10.4).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ._gaussian import n_parameters

# The walk stops once this many removals in a row scored worse than the best
# size found: one worse size can be a poor local optimum, two rarely are,
# and every removal costs a re-convergence.
PATIENCE = 2
# Iterations a walk up's fit may take. It is a safety net for a size that
# the sparse fit lost for want of evidence, which shows at once
# (breast_cancer: BIC 5,373 at two components against 8,116 at one, after
# 13 iterations); a spare component added to a good fit instead settles
# over hundreds of iterations (247 for a seventh on six separated clusters
# in 8 dimensions, 2.5 s of a 4 s fit) and is then annihilated or
# rejected by BIC.
WALK_UP_ITERATIONS = 50
# A walk up's fit is judged hopeless on its last HOPELESS_WINDOW gains in
# log-likelihood (MM-EM with SQUAREM from a fresh start gains irregularly:
# plateaus, then jumps), and only where HOPELESS_MARGIN times what the
# largest of them would bring in every iteration left still falls short.
HOPELESS_WINDOW = 5
HOPELESS_MARGIN = 10.0


def bic(log_likelihood, parameters, total_weight):
    """``-2 log L + P ln N`` of a mixture.

    Parameters
    ----------
    log_likelihood : float
        The weighted log-likelihood of the training data, summed.
    parameters : MixtureParameters
        The mixture, whose free parameters ``P`` are counted.
    total_weight : float
        ``N``.

    Returns
    -------
    float
    """
    n_free = n_parameters(
        parameters.covariance_type, parameters.n_components, parameters.n_features
    )
    return -2.0 * log_likelihood + n_free * math.log(total_weight)


class BIC:
    """The Bayesian information criterion of a fit, with its own likelihood.

    ``-2 N L + P ln N``, with ``L`` the weighted mean log-likelihood of the
    training data at the fitted parameters, ``P`` the mixture's free
    parameters and ``N`` the total sample weight: what
    :meth:`sklearn.mixture.GaussianMixture.bic` computes for a
    maximum-likelihood fit. Evaluated at a fit under the covariance prior
    (MAP), it is the criterion by which R's mclust chooses its models
    (Fraley and Raftery 2007). Lower is better.
    """

    name = "BIC"

    def __call__(self, result, total_weight):
        """The criterion of one fit.

        Parameters
        ----------
        result : FitResult
            The fit: its parameters and mean log-likelihood.
        total_weight : float
            ``N``.

        Returns
        -------
        float
        """
        return bic(
            total_weight * result.mean_log_likelihood, result.parameters, total_weight
        )


CRITERIA = {"bic": BIC}


def fewer_than(n_components):
    """A solver's ``stop``: true once the fit has lost a component.

    Parameters
    ----------
    n_components : int
        The size the fit is for.

    Returns
    -------
    callable
        ``stop(parameters, statistics) -> bool``.
    """

    def stop(parameters, statistics):
        return parameters.n_components < n_components

    return stop


def cannot_win(n_components, score_to_beat, total_weight, budget):
    """A solver's ``stop`` for a walk up's fit: lost a component, or hopeless.

    The fit is hopeless where, even if it went on gaining in every
    iteration left in its budget :data:`HOPELESS_MARGIN` times the largest
    gain in log-likelihood of its last :data:`HOPELESS_WINDOW` iterations,
    its BIC would not fall below ``score_to_beat``. Six separated clusters
    of 10,000 samples in 4 dimensions spent all 50 iterations, 40% of the
    fit, on a seventh component that BIC then rejected (120,720 against
    120,600; its gains had fallen to 0.03 by the 16th iteration). A window
    of one gain is not enough: five blobs fitted from a random start gained
    3.8 at the 14th iteration, then 588 at the 17th, on the way to the
    winning size.

    Parameters
    ----------
    n_components : int
        The size the fit is for.
    score_to_beat : float
        The BIC of the size below.
    total_weight : float
        ``N``.
    budget : int
        The fit's iteration budget.

    Returns
    -------
    callable
        ``stop(parameters, statistics) -> bool``; it keeps the fit's
        log-likelihoods, so each fit needs its own. Its attribute
        ``hopeless`` says whether it stopped the fit as hopeless.
    """
    log_likelihoods = []
    lost_one = fewer_than(n_components)

    def stop(parameters, statistics):
        if lost_one(parameters, statistics):
            return True
        log_likelihoods.append(statistics.log_likelihood)
        if len(log_likelihoods) <= HOPELESS_WINDOW:
            return False
        gain = max(np.diff(log_likelihoods[-HOPELESS_WINDOW - 1 :]))
        gap = bic(statistics.log_likelihood, parameters, total_weight) - score_to_beat
        left = budget - len(log_likelihoods)
        stop.hopeless = 2 * HOPELESS_MARGIN * max(gain, 0.0) * left < gap
        return stop.hopeless

    stop.hopeless = False
    return stop


def walk_up(
    solver,
    X,
    sample_weight,
    chosen,
    engine,
    objective,
    criterion,
    report,
    fresh_start,
    max_components,
):
    """Larger sizes from fresh starts, while the criterion improves.

    The walk down only removes components, so where the sparse fit proposed
    too few (a strong automatic sparsity on few samples in many dimensions:
    breast_cancer's 398 training rows in 30 dimensions went to one
    component, where BIC prefers two) nothing brings them back. From the
    chosen size ``K``, a fit at ``K + 1`` from a fresh start is scored; it is
    kept, and ``K + 2`` tried, while it scores better. Each such fit has
    :data:`WALK_UP_ITERATIONS` iterations at most, and ends as soon as it
    loses a component or cannot win (:func:`cannot_win`). The estimator walks
    up only where the walk down kept the proposed size: below it, the walk
    down has scored ``K + 1`` already.

    Parameters
    ----------
    solver, X, sample_weight, engine, objective, criterion, report :
        As for :func:`walk_down`.
    chosen : FitResult
        The walk down's choice.
    fresh_start : callable
        ``fresh_start(n_components)``: a starting mixture of that size.
    max_components : int
        The largest size to try.

    Returns
    -------
    FitResult
    """
    total_weight = float(sample_weight.sum())
    best, best_score = chosen, criterion(chosen, total_weight)
    while best.parameters.n_components < max_components:
        size = best.parameters.n_components + 1
        stop = cannot_win(size, best_score, total_weight, solver.max_iter)
        larger = solver.solve(
            X,
            sample_weight,
            fresh_start(size),
            engine,
            objective,
            report,
            stop=stop,
        )
        if larger.parameters.n_components != size:
            break
        score = criterion(larger, total_weight)
        report.size_scored(
            larger, criterion.name, score, walk="up", abandoned=stop.hopeless
        )
        if score >= best_score:
            break
        best, best_score = best.followed_by(larger), score
    if best is not chosen:
        report.size_chosen(best.parameters.n_components, criterion.name, walk="up")
    return best


def walk_down(solver, X, sample_weight, proposal, engine, objective, criterion, report):
    """The best-scoring size at or below the proposal's, and the whole path.

    From the proposal, the fit re-converges under ``objective``; then the
    lightest component is removed and the fit re-converges again, down to
    one component or until :data:`PATIENCE` removals in a row have scored
    worse than the best size so far.

    Parameters
    ----------
    solver : MMEMSolver
    X : torch.Tensor of shape (n_samples, n_features)
    sample_weight : torch.Tensor of shape (n_samples,)
    proposal : FitResult
        The sparse fit: its components are the walk's start.
    engine : Engine
    objective : SparseObjective
        What each size is fitted under (the sparse fit's without the
        sparsity, so that the criterion sees unshrunk weights).
    criterion : callable
        ``criterion(result, total_weight)``, lower better.
    report : ProgressReport

    Returns
    -------
    FitResult
        The best size's model, with the proposal's iterations followed by
        all the walk's (``loss_curve`` rises where a removal costs).
    """
    total_weight = float(sample_weight.sum())

    def fit_and_score(parameters):
        result = solver.solve(X, sample_weight, parameters, engine, objective, report)
        score = criterion(result, total_weight)
        report.size_scored(result, criterion.name, score)
        return result, score

    current, score = fit_and_score(proposal.parameters)
    path = proposal.followed_by(current)
    best, best_score, worse = current, score, 0
    while current.parameters.n_components > 1 and worse < PATIENCE:
        keep = np.ones(current.parameters.n_components, dtype=bool)
        keep[np.argmin(current.parameters.weights.cpu().numpy())] = False
        current, score = fit_and_score(current.parameters.subset(keep))
        path = path.followed_by(current)
        if score < best_score:
            best, best_score, worse = current, score, 0
        else:
            worse += 1
    report.size_chosen(best.parameters.n_components, criterion.name)
    return replace(
        path,
        parameters=best.parameters,
        objective=best.objective,
        mean_log_likelihood=best.mean_log_likelihood,
        converged=best.converged,
    )
