"""The KeOps tutorial's spiral, fitted by MM-EM with pruning, and its figures.

Run it with ``python -m sparse_gmm demo --out DIR`` or :func:`run_demo`.
Needs matplotlib (the ``demo`` extra).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["run_demo"]

#: Sparsity of the demo fit (see ``run_demo``'s notes for the values tried).
DEMO_SPARSITY = 5.0

#: The figures ``run_demo`` writes, and what each shows (``demo --help``
#: lists them).
DEMO_FIGURES = {
    "spiral_density.png": "the sparse fit's log-density, its components' means "
    "and 2-sigma ellipses, and the points",
    "spiral_convergence.png": "the objective and the number of active "
    "components at each iteration",
    "spiral_solvers.png": "the objective against time of MM-EM and the "
    "tutorial's Adam on the tutorial's problem",
}

#: The KeOps tutorial's sparsity, used by the solver comparison.
TUTORIAL_SPARSITY = 20.0
#: The tutorial's Adam: learning rate and number of steps.
TUTORIAL_LEARNING_RATE = 0.1
TUTORIAL_STEPS = 501

_GRID_RESOLUTION = 200
#: The colour scale spans this many nats below the highest log-density: the
#: density falls by e^-12 (6e-6) across it, and lower is off the data.
_LOG_DENSITY_RANGE = 12.0
#: Log-density contours, one every this many nats.
_CONTOUR_STEP = 1.0
#: Ellipses at this many standard deviations (about 86% of a 2-D Gaussian's
#: mass lies inside: 1 - exp(-2**2 / 2)).
_ELLIPSE_SIGMAS = 2.0


def _new_figure(figsize):
    """A figure drawn by the Agg canvas, without pyplot or a global backend.

    ``matplotlib.use("Agg")`` would switch the backend of the whole process
    (and pyplot closes every open figure when it switches), which is rude to a
    caller working in a notebook; an Agg canvas attached to this one figure
    renders headless all the same.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def _unit_square_grid(resolution=_GRID_RESOLUTION):
    """Pixel centres of a ``resolution x resolution`` grid on the unit square."""
    ticks = np.linspace(0, 1, resolution + 1)[:-1] + 0.5 / resolution
    grid_x, grid_y = np.meshgrid(ticks, ticks)
    return np.column_stack((grid_x.ravel(), grid_y.ravel()))


def _covariances_2d(model):
    """Each component's 2 x 2 covariance, whatever its ``covariance_type``."""
    covariances = np.asarray(model.covariances_, dtype=np.float64)
    n_components = len(model.means_)
    kind = getattr(model, "covariance_type", "full")
    if kind == "full":
        return covariances
    if kind == "tied":
        return np.broadcast_to(covariances, (n_components, 2, 2))
    if kind == "diag":
        return covariances[:, :, None] * np.eye(2)
    return covariances[:, None, None] * np.eye(2)


def _ellipse(mean, covariance, sigmas):
    """Points on the ``sigmas``-standard-deviation ellipse of a 2-D Gaussian."""
    angles = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack((np.cos(angles), np.sin(angles)))
    # covariance = L L^T maps the unit circle onto the 1-sigma ellipse.
    factor = np.linalg.cholesky(covariance)
    return mean[:, None] + sigmas * factor @ circle


def density_figure(model, X, title):
    """Draw ``model``'s log-density over the unit square, and its components.

    A heat-map of the log-density with a colour bar (the highest
    ``_LOG_DENSITY_RANGE`` nats; lower values take the lowest colour),
    contours every nat, the points in black, and for each component its mean
    (a cross) and its ``2``-standard-deviation ellipse.

    Parameters
    ----------
    model : fitted 2-D Gaussian mixture
        SparseGaussianMixture or scikit-learn's GaussianMixture: its
        ``score_samples``, ``means_``, ``covariances_`` and
        ``covariance_type``.
    X : ndarray of shape (n_samples, 2)
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    resolution = _GRID_RESOLUTION
    log_density = model.score_samples(_unit_square_grid(resolution))
    log_density = log_density.astype(np.float64).reshape(resolution, resolution)
    # Far from every component the log-density may underflow to -inf: the
    # colour scale and the contours are set by the finite values.
    top = float(np.amax(log_density[np.isfinite(log_density)]))
    bottom = top - _LOG_DENSITY_RANGE

    figure = _new_figure((8.6, 7.4))
    axes = figure.add_subplot()
    extent = (0, 1, 0, 1)
    image = axes.imshow(
        np.maximum(log_density, bottom),
        interpolation="bilinear",
        origin="lower",
        vmin=bottom,
        vmax=top,
        cmap="YlOrRd",
        extent=extent,
    )
    # extend="min": the lowest colour also stands for everything below.
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.85, pad=0.03, extend="min")
    colour_bar.set_label("log-density  log p(x)  (nats)")
    levels = np.arange(np.ceil(bottom), top, _CONTOUR_STEP)
    axes.contour(
        np.maximum(log_density, bottom),
        origin="lower",
        linewidths=0.6,
        colors="0.45",
        # Not matplotlib's dashes for negative levels: the sign of a
        # log-density has no meaning here.
        linestyles="solid",
        levels=levels,
        extent=extent,
    )
    # Light enough for the colours to show through 10,000 points.
    axes.scatter(X[:, 0], X[:, 1], s=0.5, color="k", alpha=0.3, lw=0)
    axes.plot([], [], ".", color="k", alpha=0.5, label="data")
    means = np.asarray(model.means_, dtype=np.float64)
    for index, (mean, covariance) in enumerate(
        zip(means, _covariances_2d(model), strict=True)
    ):
        outline = _ellipse(mean, covariance, _ELLIPSE_SIGMAS)
        axes.plot(
            outline[0],
            outline[1],
            color="C0",
            lw=1.5,
            label=f"{_ELLIPSE_SIGMAS:g}-sigma ellipse" if index == 0 else None,
        )
    axes.plot(
        means[:, 0],
        means[:, 1],
        "X",
        color="C0",
        markeredgecolor="white",
        markersize=10,
        ls="none",
        label="component mean",
    )
    axes.set_title(title, fontsize=14)
    axes.set_xlabel("x[0]")
    axes.set_ylabel("x[1]")
    axes.set_aspect("equal")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left", fontsize=9, framealpha=0.9)
    figure.tight_layout()
    return figure


def plot_density(model, X, path, title):
    """Save :func:`density_figure` as a PNG at ``path``; return the path."""
    density_figure(model, X, title).savefig(path)
    return Path(path)


def plot_convergence(model, path):
    """Plot the objective and the number of active components per iteration.

    Parameters
    ----------
    model : fitted SparseGaussianMixture
    path : path-like
        Where the PNG goes.
    """
    iterations = np.arange(1, len(model.loss_curve_) + 1)
    figure = _new_figure((10, 4))
    objective_axes, count_axes = figure.subplots(1, 2)
    objective_axes.plot(iterations, model.loss_curve_, color="C0")
    objective_axes.set_xlabel("iteration")
    objective_axes.set_ylabel("objective F (nats per sample)")
    objective_axes.set_title("Objective")
    count_axes.step(iterations, model.n_components_curve_, where="post", color="C3")
    count_axes.set_xlabel("iteration")
    count_axes.set_ylabel("active components")
    count_axes.set_title("Active components")
    count_axes.set_ylim(0, max(model.n_components, 1) + 1)
    figure.suptitle(
        f"MM-EM path of SparseGaussianMixture(n_components={model.n_components}, "
        f"sparsity={model.sparsity_:.3g}): {model.n_components_} components kept "
        f"after {model.n_iter_} iterations"
    )
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def tutorial_initialisation(n_components, random_state):
    """The KeOps tutorial's starting point, as ``*_init`` parameters.

    Means uniform in the unit square (the tutorial's ``torch.rand``, drawn
    here by ``numpy.random.default_rng(random_state)``), equal weights and
    precisions ``225 I`` (the tutorial's factor ``A = 15 I``, ``P = A A^T``).

    Returns
    -------
    dict
        ``weights_init``, ``means_init`` and ``precisions_init``.
    """
    rng = np.random.default_rng(random_state)
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": rng.uniform(size=(n_components, 2)),
        "precisions_init": np.repeat(225.0 * np.eye(2)[None], n_components, axis=0),
    }


def plot_solvers(fits, path, title):
    """Plot the objective against the solver's time for several fits.

    Parameters
    ----------
    fits : list of (str, SparseGaussianMixture, float)
        A label, the fitted model and the wall time of its ``fit`` in seconds.
    path : path-like
        Where the PNG goes.
    title : str
    """
    figure = _new_figure((8, 6))
    axes = figure.add_subplot()
    lowest = min(float(np.min(model.loss_curve_)) for _, model, _ in fits)
    highest = max(float(model.loss_curve_[0]) for _, model, _ in fits)
    colours = ("C3", "C0", "C2", "C1")
    for index, (label, model, seconds) in enumerate(fits):
        colour = colours[index % len(colours)]
        axes.plot(
            model.time_curve_,
            model.loss_curve_,
            color=colour,
            lw=1.3,
            label=f"{label}: F = {model.objective_:.4f}, "
            f"{model.n_components_} components, {seconds:.1f} s",
        )
        # The whole fit, initialisation included, ends at the cross.
        axes.plot(seconds, model.objective_, "x", color=colour, ms=8, mew=1.5)
    axes.plot([], [], "kx", ls="none", label="end of fit() (wall time)")
    axes.set_xscale("log")
    # Adam's first steps go far above the end of the fits: keep the end legible.
    axes.set_ylim(lowest - 0.05, min(highest, lowest + 1.5) + 0.05)
    axes.set_xlabel("seconds since the solver started")
    axes.set_ylabel("objective F (nats per sample)")
    axes.set_title(title)
    # Below the axes: where the curves leave room depends on the timings.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9)
    axes.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, bbox_inches="tight")
    return Path(path)


def _timed_fit(estimator, X):
    start = time.perf_counter()
    estimator.fit(X)
    return estimator, time.perf_counter() - start


def format_table(rows):
    """The demo's comparison table as text.

    Parameters
    ----------
    rows : list of dict
        With keys ``method``, ``components``, ``mean_log_likelihood`` and
        ``time_s``.

    Returns
    -------
    str
    """
    method_width = max(len("method"), *(len(row["method"]) for row in rows))
    lines = [
        f"{'method':<{method_width}}  {'components':>10}  "
        f"{'mean log-lik':>12}  {'time (s)':>8}"
    ]
    lines += [
        f"{row['method']:<{method_width}}  {row['components']:>10d}  "
        f"{row['mean_log_likelihood']:>12.4f}  {row['time_s']:>8.2f}"
        for row in rows
    ]
    return "\n".join(lines)


def run_demo(
    out_dir, n_components=30, sparsity=DEMO_SPARSITY, random_state=0, verbose=True
):
    """Fit the tutorial's spiral, compare with GaussianMixture, draw figures.

    Fits ``SparseGaussianMixture(n_components, sparsity=sparsity)`` to
    :func:`~sparse_gmm.datasets.make_spiral`, then
    :class:`sklearn.mixture.GaussianMixture` with as many components as the
    sparse fit kept and with ``n_components`` (with its defaults, so it stops
    at ``tol=1e-3`` where the sparse fit goes on to ``1e-4``), and writes
    into ``out_dir``:

    - ``spiral_density.png``: the sparse fit's log-density (heat-map with a
      colour bar, contours), its components' means and 2-sigma ellipses, and
      the points;
    - ``spiral_convergence.png``: the objective and the number of active
      components against the iteration;
    - ``spiral_solvers.png``: the objective against time of fits of the
      tutorial's problem (``n_components`` components, sparsity 20): the
      tutorial's Adam (learning rate 0.1, 501 steps from its initialisation,
      see :func:`tutorial_initialisation`), MM-EM with its defaults (k-means
      initialisation) and MM-EM with ``removal_moves=True``. Their rows are
      added to the table.

    Parameters
    ----------
    out_dir : path-like
        Folder for the figures; created if missing.
    n_components : int, default=30
        Starting number of components of the sparse fit (the tutorial's 30),
        and the size of the second GaussianMixture.
    sparsity : float or 'auto', default=5.0
        Strength of the prior, as in :class:`SparseGaussianMixture`. On this
        spiral of 10,000 points 'auto' (what BIC charges, 0.45 here) keeps
        about 25 of 30 components and converges slowly (a BIC sweep keeps
        14); 5 keeps 9 and draws a smooth density along the whole spiral.
    random_state : int, default=0
        Seed of the initialisations (the data are always the tutorial's).
    verbose : bool, default=True
        Print the comparison table.

    Returns
    -------
    result : dict
        ``"density_figure"``, ``"convergence_figure"`` and
        ``"solvers_figure"``: the PNG paths; ``"rows"``: one dict per fit with
        ``method``, ``components``, ``mean_log_likelihood`` (mean
        log-likelihood of the data) and ``time_s`` (fit time in seconds);
        ``"model"``: the fitted SparseGaussianMixture; ``"solver_models"``:
        the fits of the solver comparison, under ``"em"``, ``"em_removal"``
        and ``"adam"``.
    """
    # Imported here, not at the top: the command line's --help reads this
    # module's constants and must not wait for torch.
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    from ._estimator import SparseGaussianMixture
    from .datasets import make_spiral

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    X = make_spiral()

    sparse, sparse_time = _timed_fit(
        SparseGaussianMixture(
            n_components=n_components, sparsity=sparsity, random_state=random_state
        ),
        X,
    )
    kept = sparse.n_components_
    rows = [
        {
            "method": f"SparseGaussianMixture(n_components={n_components}, "
            f"sparsity={sparsity!r})",
            "components": kept,
            "mean_log_likelihood": sparse.score(X),
            "time_s": sparse_time,
        }
    ]
    # Both sizes, once each (they coincide when nothing was pruned).
    for size in dict.fromkeys((kept, n_components)):
        mixture, mixture_time = _timed_fit(
            GaussianMixture(n_components=size, random_state=random_state), X
        )
        rows.append(
            {
                "method": f"GaussianMixture(n_components={size})",
                "components": size,
                "mean_log_likelihood": mixture.score(X),
                "time_s": mixture_time,
            }
        )

    # The tutorial's problem, by the tutorial's Adam and by MM-EM: its
    # objective has no covariance prior and no relaxed refit.
    objective = {"covariance_prior": None, "relax": False}

    def tutorial_row(options, model, seconds):
        return {
            "method": f"SparseGaussianMixture(n_components={n_components}, "
            f"sparsity={TUTORIAL_SPARSITY:g}, {options})",
            "components": model.n_components_,
            "mean_log_likelihood": model.score(X),
            "time_s": seconds,
        }

    em, em_time = _timed_fit(
        SparseGaussianMixture(
            n_components=n_components,
            sparsity=TUTORIAL_SPARSITY,
            solver="em",
            random_state=random_state,
            **objective,
        ),
        X,
    )
    removal, removal_time = _timed_fit(
        SparseGaussianMixture(
            n_components=n_components,
            sparsity=TUTORIAL_SPARSITY,
            solver="em",
            removal_moves=True,
            random_state=random_state,
            **objective,
        ),
        X,
    )
    # The first torch optimiser of a process imports torch._dynamo (seconds,
    # once): build a throwaway one so that Adam's time is Adam's.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    with warnings.catch_warnings():
        # tol=0 runs the tutorial's 501 steps; not converging is the point.
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam, adam_time = _timed_fit(
            SparseGaussianMixture(
                n_components=n_components,
                sparsity=TUTORIAL_SPARSITY,
                solver="adam",
                learning_rate=TUTORIAL_LEARNING_RATE,
                max_iter=TUTORIAL_STEPS,
                tol=0,
                **objective,
                **tutorial_initialisation(n_components, random_state),
            ),
            X,
        )
    rows += [
        tutorial_row("solver='em'", em, em_time),
        tutorial_row("solver='em', removal_moves=True", removal, removal_time),
        tutorial_row("solver='adam'", adam, adam_time),
    ]

    density_figure = plot_density(
        sparse,
        X,
        out_dir / "spiral_density.png",
        f"SparseGaussianMixture on the spiral: {kept} of {n_components} "
        f"components kept (sparsity {sparse.sparsity_:.3g})",
    )
    convergence_figure = plot_convergence(sparse, out_dir / "spiral_convergence.png")
    solvers_figure = plot_solvers(
        [
            (
                f"Adam (tutorial: lr {TUTORIAL_LEARNING_RATE:g}, "
                f"{TUTORIAL_STEPS} steps)",
                adam,
                adam_time,
            ),
            ("MM-EM (k-means init)", em, em_time),
            ("MM-EM, removal_moves=True", removal, removal_time),
        ],
        out_dir / "spiral_solvers.png",
        f"Spiral, {n_components} components, sparsity {TUTORIAL_SPARSITY:g}",
    )
    if verbose:
        print(format_table(rows))
        print(f"Figures written to {out_dir}")
    return {
        "density_figure": density_figure,
        "convergence_figure": convergence_figure,
        "solvers_figure": solvers_figure,
        "rows": rows,
        "model": sparse,
        "solver_models": {"em": em, "em_removal": removal, "adam": adam},
    }
