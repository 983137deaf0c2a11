"""What a solver returns, and the progress report that every solver prints."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .._gaussian import MixtureParameters


@dataclass(frozen=True)
class FitResult:
    """The outcome of one solver run from one initialisation.

    Attributes
    ----------
    parameters : MixtureParameters
        The surviving components.
    objective : float
        ``F`` at ``parameters``.
    n_iter : int
    converged : bool
    loss_curve : numpy.ndarray of shape (n_iter,)
        ``F`` after each iteration.
    lower_bounds : numpy.ndarray of shape (n_iter,)
        Each iteration's lower bound: ``-F`` at the parameters it started
        from (MM-EM's E-step), scikit-learn's ``lower_bounds_``.
    n_components_curve : numpy.ndarray of shape (n_iter,)
        Number of components after each iteration.
    time_curve : numpy.ndarray of shape (n_iter,)
        Seconds since the solver started, after each iteration.
    mean_log_likelihood : float
        The training data's weighted mean log-likelihood at ``parameters``
        (what a criterion such as BIC scores).
    """

    parameters: MixtureParameters
    objective: float
    n_iter: int
    converged: bool
    loss_curve: np.ndarray
    lower_bounds: np.ndarray
    n_components_curve: np.ndarray
    time_curve: np.ndarray
    mean_log_likelihood: float

    @property
    def lower_bound(self) -> float:
        """The last iteration's lower bound; minus infinity without iterations.

        As scikit-learn's ``lower_bound_``: of the parameters before the
        last M-step, which is what initialisations are compared by.
        """
        return float(self.lower_bounds[-1]) if self.n_iter else -math.inf

    def followed_by(self, later: FitResult) -> FitResult:
        """This run's path continued by ``later``'s, which started at its end.

        Returns
        -------
        FitResult
            ``later``'s model, with both runs' iterations.
        """
        offset = self.time_curve[-1] if self.n_iter else 0.0
        return FitResult(
            parameters=later.parameters,
            objective=later.objective,
            n_iter=self.n_iter + later.n_iter,
            converged=later.converged,
            loss_curve=np.concatenate((self.loss_curve, later.loss_curve)),
            lower_bounds=np.concatenate((self.lower_bounds, later.lower_bounds)),
            n_components_curve=np.concatenate(
                (self.n_components_curve, later.n_components_curve)
            ),
            time_curve=np.concatenate((self.time_curve, offset + later.time_curve)),
            mean_log_likelihood=later.mean_log_likelihood,
        )


class FitPath:
    """Records each iteration's lower bound, objective, component count and time.

    Parameters
    ----------
    report : ProgressReport
        Told of every recorded iteration.
    """

    def __init__(self, report):
        self.report = report
        self.lower_bounds, self.loss, self.n_components, self.time = [], [], [], []
        self._start = time.perf_counter()

    def __len__(self):
        return len(self.loss)

    def record(self, lower_bound, value, n_components):
        """Append one iteration: its lower bound, ``F`` and components after it."""
        self.lower_bounds.append(lower_bound)
        self.loss.append(value)
        self.n_components.append(n_components)
        self.time.append(time.perf_counter() - self._start)
        self.report.iteration(len(self.loss), value, n_components)

    def result(self, parameters, objective, converged, mean_log_likelihood):
        """The :class:`FitResult` of a run that ends at ``parameters``."""
        return FitResult(
            parameters=parameters,
            objective=objective,
            n_iter=len(self.loss),
            converged=converged,
            loss_curve=np.asarray(self.loss, dtype=np.float64),
            lower_bounds=np.asarray(self.lower_bounds, dtype=np.float64),
            n_components_curve=np.asarray(self.n_components, dtype=np.int64),
            time_curve=np.asarray(self.time, dtype=np.float64),
            mean_log_likelihood=mean_log_likelihood,
        )


class Solver(ABC):
    """A loop that minimises the sparse objective through an engine's primitives."""

    @abstractmethod
    def solve(
        self,
        X,
        sample_weight,
        initial,
        engine,
        objective,
        report,
        previous_lower_bound=-math.inf,
    ) -> FitResult:
        """Minimise from ``initial``.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            On the engine's device.
        sample_weight : torch.Tensor of shape (n_samples,)
        initial : MixtureParameters
        engine : Engine
        objective : SparseObjective
        report : ProgressReport
        previous_lower_bound : float, default=-inf
            The lower bound that the first iteration's is compared with:
            a warm start's previous ``lower_bound_``, as in scikit-learn.

        Returns
        -------
        FitResult
        """


class ProgressReport:
    """Prints a fit's progress the way scikit-learn's ``verbose`` does.

    Parameters
    ----------
    verbose : int
        0: silent; 1: the start and end of each initialisation; 2 and more:
        also a line every ``verbose_interval`` iterations.
    verbose_interval : int
    """

    def __init__(self, verbose=0, verbose_interval=10):
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self._start = time.perf_counter()

    def begin(self, init, n_components, n_samples):
        """Report the start of initialisation number ``init``."""
        self._start = time.perf_counter()
        if self.verbose >= 1:
            print(
                f"Initialization {init}: {n_components} components, "
                f"{n_samples} samples",
                flush=True,
            )

    def iteration(self, n_iter, objective, n_components):
        """Report iteration ``n_iter`` (every ``verbose_interval``, verbose >= 2)."""
        if self.verbose >= 2 and n_iter % self.verbose_interval == 0:
            elapsed = time.perf_counter() - self._start
            print(
                f"  Iteration {n_iter}: objective {objective:.6f}, "
                f"{n_components} active components, {elapsed:.2f} s",
                flush=True,
            )

    def end(self, init, result: FitResult):
        """Report the end of initialisation number ``init``."""
        if self.verbose >= 1:
            self._finished(
                f"Initialization {init}", result, f"objective {result.objective:.6f}"
            )

    def selection_sample(self, n_rows, n_samples):
        """Report that the components are chosen on ``n_rows`` of the rows."""
        if self.verbose >= 1:
            print(
                f"Choosing the components on {n_rows} of {n_samples} samples "
                "(selection_samples), then refitting on all of them",
                flush=True,
            )

    def size_scored(
        self, result: FitResult, criterion_name, score, walk="down", abandoned=False
    ):
        """Report one size of the walk (``'down'`` or ``'up'``) and its criterion.

        ``abandoned``: the fit was stopped because it could not win.
        """
        if self.verbose >= 1:
            self._finished(
                f"  Walk {walk}:",
                result,
                f"{criterion_name} {score:.6g}",
                status="abandoned (it cannot win)" if abandoned else None,
            )

    def size_chosen(self, n_components, criterion_name, walk="down"):
        """Report the size the walk (``'down'`` or ``'up'``) keeps."""
        if self.verbose >= 1:
            print(
                f"Walk {walk} kept {n_components} components (lowest {criterion_name})",
                flush=True,
            )

    def start_chosen(self, name, result: FitResult):
        """Report which start the chosen size keeps: the walk's or a fresh one."""
        if self.verbose >= 1:
            self._finished(
                f"Kept the {name}'s fit", result, f"objective {result.objective:.6f}"
            )

    def refitted(self, result: FitResult):
        """Report the end of the penalised refit on all rows."""
        if self.verbose >= 1:
            self._finished(
                "Refit on all samples", result, f"objective {result.objective:.6f}"
            )

    def relaxed(self, result: FitResult):
        """Report the end of the relaxed refit (maximum likelihood)."""
        if self.verbose >= 1:
            # Unpenalised, the objective is the negative mean log-likelihood.
            self._finished(
                "Relaxed refit",
                result,
                f"mean log-likelihood {-result.objective:.6f}",
            )

    def _finished(self, run, result: FitResult, value, status=None):
        if status is None:
            status = "converged" if result.converged else "did not converge"
        elapsed = time.perf_counter() - self._start
        print(
            f"{run} {status} after {result.n_iter} iterations: {value}, "
            f"{result.parameters.n_components} components, {elapsed:.2f} s",
            flush=True,
        )
