r"""Gaussian-process dynamics models on gpytorch: one SE-ARD GP per state dimension.

Problem. From transitions :math:`(x_t, u_t, x_{t+1})` learn

.. math::

    x_{t+1} = x_t + \Delta(x_t, u_t), \qquad
    \Delta_a \sim \mathcal{GP}\big(0, k_a\big),\ a = 1..n, \qquad
    y_a = \Delta_a(z) + \varepsilon_a,\ \varepsilon_a \sim \mathcal N(0, \sigma_{\varepsilon,a}^2),

with independent outputs, the squared-exponential ARD kernel
:math:`k_a(z, z') = \alpha_a^2 \exp(-\tfrac12 \sum_d (z_d - z'_d)^2/\ell_{ad}^2)`,
and GP inputs :math:`z = \phi(x, u) = [x_{\text{other}}, \sin x_{\text{ang}},
\cos x_{\text{ang}}, u]` in which every angle enters through its sine and
cosine (Deisenroth, Fox & Rasmussen, *Gaussian processes for data-efficient
learning in robotics and control*, IEEE TPAMI 37(2), 2015, Sec. 3 and 5.1).

Training maximises the marginal likelihood of each output on standardised
inputs and targets (zero-mean, unit-variance columns) plus PILCO's
hyperparameter penalty (the PILCO MATLAB package, ``hypCurb``), which bounds
length-scales to a band around the input scale and the signal-to-noise ratio:

.. math::

    \mathcal L = \frac1N \sum_a \Big[-\log p(y_a \mid Z, \theta_a)
        + \sum_d \Big(\frac{\log \ell_{ad}}{\log \ell_{\max}}\Big)^{p}
        + \Big(\frac{\log(\alpha_a/\sigma_{\varepsilon,a})}{\log r_{\max}}\Big)^{p}\Big],

with :math:`\ell_{\max} = 100` (standardised units), :math:`r_{\max} = 500`,
:math:`p = 30`, and a hard floor on the standardised noise variance. All
outputs are one gpytorch ``ExactGP`` with ``batch_shape = (n,)``, so fitting
and prediction are batched over outputs, never a Python loop.

Past ``sparse_threshold`` training points (300, as in PILCO) the model is a
sparse GP with ``inducing`` shared inducing inputs, trained with Titsias'
collapsed bound (SGPR) or FITC (:mod:`gpcontrol.models.sparse`), the inducing
inputs optimised with the hyperparameters; prediction and :meth:`GPDynamics.terms`
keep the same API.

After fitting, the posterior is cached from a reported-jitter Cholesky factor
:math:`L_a L_a^\top = K_a + \sigma_{\varepsilon,a}^2 I`, and
:meth:`GPDynamics.terms` returns it in *raw* units (raw features, raw
targets) for exact moment matching (:func:`gpcontrol.models.moment_match`):
a kernel on standardised inputs :math:`(z - c)/\varsigma` with length-scales
:math:`\ell` is the same kernel on raw inputs with length-scales
:math:`\ell\varsigma`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gpytorch
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from gpcontrol.gaussian import safe_cholesky
from gpcontrol.models.moments import GPTerms
from gpcontrol.models.sparse import SPARSE_METHODS, sparse_posterior

__all__ = ["GPDynamics", "GPFitReport"]

logger = logging.getLogger(__name__)

_MAX_CHOLESKY = 100_000  # gpytorch switches to CG above its default of 800 points; we never do


@dataclasses.dataclass(frozen=True)
class GPFitReport:
    """Outcome of :meth:`GPDynamics.fit` (hyperparameters in raw units).

    Attributes
    ----------
    loss : float
        Final penalised loss per data point of the best restart.
    neg_log_marginal_likelihood : ndarray, shape (E,)
        :math:`-\\log p(y_a)/N` per output (standardised targets).
    penalty : float
        Penalty term per data point of the best restart.
    lengthscales : ndarray, shape (E, D)
        In raw feature units.
    signal_var, noise_var : ndarray, shape (E,)
        :math:`\\alpha_a^2`, :math:`\\sigma_{\\varepsilon,a}^2` in raw target units.
    snr : ndarray, shape (E,)
        :math:`\\alpha_a / \\sigma_{\\varepsilon,a}`.
    jitter : float
        Diagonal jitter the posterior Cholesky factor needed (0.0 if none),
        in standardised units.
    restart_losses : tuple of float
        Final loss of every restart (``inf`` for a restart that failed).
    iterations : int
        Optimiser iterations of the best restart.
    n_train : int
        Number of training points.
    method : str
        ``"exact"``, or the sparse approximation used (``"sgpr"``, ``"fitc"``).
    n_inducing : int
        Number of inducing inputs (``n_train`` for the exact GP).
    seconds : float
        Wall-clock time of the whole fit.
    """

    loss: float
    neg_log_marginal_likelihood: NDArray[np.float64]
    penalty: float
    lengthscales: NDArray[np.float64]
    signal_var: NDArray[np.float64]
    noise_var: NDArray[np.float64]
    snr: NDArray[np.float64]
    jitter: float
    restart_losses: tuple[float, ...]
    iterations: int
    n_train: int
    method: str
    n_inducing: int
    seconds: float


class _BatchGP(gpytorch.models.ExactGP):
    """``E`` independent zero-mean SE-ARD GPs as one gpytorch model with batch shape (E,)."""

    def __init__(
        self, Z: Tensor, Y: Tensor, likelihood: gpytorch.likelihoods.GaussianLikelihood
    ) -> None:
        super().__init__(Z, Y, likelihood)
        E, D = Y.shape[0], Z.shape[-1]
        batch = torch.Size([E])
        self.mean_module = gpytorch.means.ZeroMean(batch_shape=batch)
        self.covar_module = gpytorch.kernels.ScaleKernel(
            gpytorch.kernels.RBFKernel(ard_num_dims=D, batch_shape=batch), batch_shape=batch
        )

    def forward(self, z: Tensor) -> gpytorch.distributions.MultivariateNormal:  # type: ignore[override]
        return gpytorch.distributions.MultivariateNormal(self.mean_module(z), self.covar_module(z))

    def hyperparameters(self) -> tuple[Tensor, Tensor, Tensor]:
        """Length-scales ``(E, D)``, signal variances ``(E,)``, noise variances ``(E,)``."""
        kern: Any = self.covar_module
        lik: Any = self.likelihood
        return kern.base_kernel.lengthscale.squeeze(-2), kern.outputscale, lik.noise.squeeze(-1)

    def set_hyperparameters(
        self, lengthscales: Tensor, signal_var: Tensor, noise_var: Tensor
    ) -> None:
        """Set ``(E, D)``, ``(E,)``, ``(E,)`` hyperparameters (standardised units)."""
        kern: Any = self.covar_module
        lik: Any = self.likelihood
        kern.base_kernel.lengthscale = lengthscales.unsqueeze(-2)
        kern.outputscale = signal_var
        lik.noise = noise_var.unsqueeze(-1)

    def kernel(self, Z1: Tensor, Z2: Tensor) -> Tensor:
        """Dense kernel matrices ``(E, n1, n2)`` between ``Z1 (n1, D)`` and ``Z2 (n2, D)``."""
        E = self.train_targets.shape[0]
        kern: Any = self.covar_module
        with gpytorch.settings.lazily_evaluate_kernels(False):
            return kern(Z1.expand(E, *Z1.shape), Z2.expand(E, *Z2.shape)).to_dense()


@dataclasses.dataclass(frozen=True)
class _Posterior:
    """Cached standardised posterior.

    Exact: ``Zn (N, D)`` training inputs, ``L`` the factor of ``K + noise I``, ``LB = None``.
    Sparse: ``Zn (M, D)`` inducing inputs, ``L`` the factor of ``K_uu``, ``LB`` of ``B``
    (:mod:`gpcontrol.models.sparse`). ``beta (E, N or M)`` in both.
    """

    Zn: Tensor
    L: Tensor
    beta: Tensor
    LB: Tensor | None = None

    def variance_reduction(self, Kzx: Tensor) -> Tensor:
        """``k_xz W k_zx`` for ``Kzx (E, N or M, b)``, via triangular solves, shape (E, b)."""
        v1 = torch.linalg.solve_triangular(self.L, Kzx, upper=False)
        red = (v1**2).sum(-2)
        if self.LB is not None:
            red = red - (torch.linalg.solve_triangular(self.LB, v1, upper=False) ** 2).sum(-2)
        return red


def _as_matrix(name: str, value: Any, cols: int | None = None) -> Tensor:
    arr = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=np.float64)
    if arr.ndim != 2 or (cols is not None and arr.shape[1] != cols):
        want = f"(N, {cols})" if cols is not None else "(N, k)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return torch.from_numpy(arr.copy())


class GPDynamics(torch.nn.Module):
    r"""GP model of state differences :math:`x_{t+1} - x_t` with (sin, cos) angle features.

    Parameters
    ----------
    n : int
        State dimension (= number of GP outputs ``E``).
    m : int
        Control dimension.
    angle_indices : sequence of int
        States that are angles; they enter the GP as ``(sin, cos)``.
    lengthscale_max : float
        :math:`\ell_{\max}` of the penalty, in standardised input units (> 1).
    snr_max : float
        :math:`r_{\max}`, the signal-to-noise ratio the penalty allows (> 1).
    penalty_power : int
        :math:`p`, even; larger is closer to a hard wall.
    noise_floor : float
        Lower bound on the standardised noise variance (> 0).
    sparse_threshold : int or None
        Fit a sparse GP when there are more training points than this (PILCO
        switches at 300); ``None`` never does.
    inducing : int
        Number of inducing inputs of the sparse GP (a random subset of the
        training inputs to start, then optimised with the hyperparameters).
    sparse_method : {"sgpr", "fitc"}
        Titsias' variational bound or FITC (:mod:`gpcontrol.models.sparse`).

    Attributes
    ----------
    D : int
        Number of GP inputs, ``n + len(angle_indices) + m``.
    E : int
        Number of outputs, ``n``.

    Notes
    -----
    Feature order: non-angle states in their order, then the sines, then the
    cosines of the angles, then the controls. Cached posterior terms are
    detached from the hyperparameters (refit to change them).

    Examples
    --------
    >>> from gpcontrol.systems import Pendulum
    >>> model = GPDynamics.for_system(Pendulum())
    >>> model.D, model.E
    (4, 2)
    """

    z_mean: Tensor
    z_std: Tensor
    y_mean: Tensor
    y_std: Tensor

    def __init__(
        self,
        n: int,
        m: int,
        *,
        angle_indices: Sequence[int] = (),
        lengthscale_max: float = 100.0,
        snr_max: float = 500.0,
        penalty_power: int = 30,
        noise_floor: float = 1e-6,
        sparse_threshold: int | None = 300,
        inducing: int = 300,
        sparse_method: str = "sgpr",
    ) -> None:
        super().__init__()
        for name, v in (("n", n), ("m", m)):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | np.integer)
                or v < (1 if name == "n" else 0)
            ):
                raise ValueError(
                    f"{name} must be an integer >= {1 if name == 'n' else 0}, got {v!r}"
                )
        ang = tuple(int(i) for i in angle_indices)
        if len(set(ang)) != len(ang) or any(i < 0 or i >= n for i in ang):
            raise ValueError(f"angle_indices must be distinct integers in [0, {n}), got {ang}")
        if not lengthscale_max > 1.0 or not snr_max > 1.0:
            raise ValueError("lengthscale_max and snr_max must be > 1")
        if isinstance(penalty_power, bool) or penalty_power < 2 or penalty_power % 2:
            raise ValueError(f"penalty_power must be an even integer >= 2, got {penalty_power!r}")
        if not noise_floor > 0.0:
            raise ValueError(f"noise_floor must be positive, got {noise_floor!r}")
        if sparse_threshold is not None and (
            isinstance(sparse_threshold, bool) or int(sparse_threshold) < 1
        ):
            raise ValueError(f"sparse_threshold must be None or >= 1, got {sparse_threshold!r}")
        if isinstance(inducing, bool) or int(inducing) < 1:
            raise ValueError(f"inducing must be an integer >= 1, got {inducing!r}")
        if sparse_method not in SPARSE_METHODS:
            raise ValueError(
                f"sparse_method must be one of {SPARSE_METHODS}, got {sparse_method!r}"
            )
        self.sparse_threshold = None if sparse_threshold is None else int(sparse_threshold)
        self.inducing = int(inducing)
        self.sparse_method = sparse_method
        self.n, self.m = int(n), int(m)
        self.angle_indices = ang
        self.other_indices = tuple(i for i in range(n) if i not in ang)
        self.D = n + len(ang) + m
        self.E = n
        self.lengthscale_max = float(lengthscale_max)
        self.snr_max = float(snr_max)
        self.penalty_power = int(penalty_power)
        self.noise_floor = float(noise_floor)
        self.gp: _BatchGP | None = None
        self.likelihood: gpytorch.likelihoods.GaussianLikelihood | None = None
        self._terms: GPTerms | None = None
        self._post: _Posterior | None = None
        for name, size in (("z_mean", self.D), ("z_std", self.D), ("y_mean", n), ("y_std", n)):
            self.register_buffer(name, torch.zeros(size, dtype=torch.float64))

    @classmethod
    def for_system(cls, system: Any, **kwargs: Any) -> GPDynamics:
        """A model with the state/control sizes and angle indices of a :class:`System`."""
        return cls(system.n, system.m, angle_indices=system.angle_indices, **kwargs)

    # ----------------------------------------------------------------- features
    def features(self, inputs: Tensor) -> Tensor:
        r"""GP inputs :math:`z = [x_{\text{other}}, \sin x_{\text{ang}}, \cos x_{\text{ang}}, u]`.

        Parameters
        ----------
        inputs : Tensor, shape (..., n + m)
            ``[x, u]``.

        Returns
        -------
        Tensor, shape (..., D)
        """
        n = self.n
        x, u = inputs[..., :n], inputs[..., n:]
        ang = list(self.angle_indices)
        a = x[..., ang]
        return torch.cat([x[..., list(self.other_indices)], torch.sin(a), torch.cos(a), u], dim=-1)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        inputs: Any,
        targets: Any,
        *,
        restarts: int = 2,
        seed: int = 0,
        max_iter: int = 200,
        optimizer: str = "lbfgs",
        lr: float = 0.05,
    ) -> GPFitReport:
        r"""Maximise the penalised marginal likelihood (module docstring) with restarts.

        .. math::

            \theta^\star = \arg\min_\theta\ \frac1N\sum_a\big[-\log p(y_a\mid Z,\theta_a)
                + \text{penalty}(\theta_a)\big]

        Restart 0 starts from :math:`\ell = 1`, :math:`\alpha^2 = 1`,
        :math:`\sigma^2_\varepsilon = 0.01` (standardised units); the others from
        log-normal perturbations of it drawn with ``seed``. The best final loss
        wins. A restart whose Cholesky fails is recorded as ``inf``; if all
        fail, ``RuntimeError``.

        Parameters
        ----------
        inputs : array_like, shape (N, n + m)
            ``[x_t, u_t]`` rows.
        targets : array_like, shape (N, n)
            ``x_{t+1} - x_t`` rows.
        restarts : int
            Number of optimisations (>= 1).
        seed : int
            Seed of the restart initialisations.
        max_iter : int
            L-BFGS iterations or Adam steps per restart.
        optimizer : {"lbfgs", "adam"}
        lr : float
            Adam step size (unused by L-BFGS, which uses a strong-Wolfe line search).

        Returns
        -------
        GPFitReport
        """
        t0 = time.perf_counter()
        Xin = _as_matrix("inputs", inputs, self.n + self.m)
        Y = _as_matrix("targets", targets, self.n)
        if Y.shape[0] != Xin.shape[0]:
            raise ValueError(
                f"inputs and targets must have the same number of rows, got {Xin.shape[0]} "
                f"and {Y.shape[0]}"
            )
        N = Xin.shape[0]
        if N < 2:
            raise ValueError(f"need at least 2 training points, got {N}")
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
            raise ValueError(f"restarts must be an integer >= 1, got {restarts!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
        if optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")

        Z = self.features(Xin)
        z_mean, z_std = Z.mean(0), Z.std(0)
        y_mean, y_std = Y.mean(0), Y.std(0)
        for name, std in (("input feature", z_std), ("target", y_std)):
            const = std <= 1e-12 * (1.0 + (Z if name == "input feature" else Y).abs().amax(0))
            if bool(const.any()):
                logger.warning(
                    "GPDynamics.fit: %s columns %s are constant; they are not scaled",
                    name,
                    torch.nonzero(const).flatten().tolist(),
                )
            std[const] = 1.0
        self.z_mean.copy_(z_mean)
        self.z_std.copy_(z_std)
        self.y_mean.copy_(y_mean)
        self.y_std.copy_(y_std)
        Zn = (Z - z_mean) / z_std
        Yn = ((Y - y_mean) / y_std).T.contiguous()  # (E, N)
        E, D = self.E, self.D

        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            batch_shape=torch.Size([E]),
            noise_constraint=gpytorch.constraints.GreaterThan(self.noise_floor),
        ).to(torch.float64)
        gp = _BatchGP(Zn.expand(E, N, D), Yn, likelihood).to(torch.float64)
        sparse = self.sparse_threshold is not None and N > self.sparse_threshold
        M = min(self.inducing, N) if sparse else N
        U = torch.nn.Parameter(Zn[:M].clone()) if sparse else None  # inducing inputs
        log_lik = self._objective(gp, likelihood, Zn, Yn, U)
        gen = torch.Generator().manual_seed(int(seed))
        best: tuple[float, dict[str, Tensor], Tensor | None, int] | None = None
        losses: list[float] = []
        for r in range(restarts):
            self._initialise(gp, likelihood, gen, random=r > 0)
            if U is not None:
                with torch.no_grad():
                    U.copy_(Zn[torch.randperm(N, generator=gen)[:M]])
            params = list(gp.parameters()) + ([U] if U is not None else [])
            try:
                loss, iters = self._optimise(
                    gp, likelihood, log_lik, params, max_iter, optimizer, lr
                )
            except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
                logger.warning("GPDynamics.fit: restart %d failed: %s", r, exc)
                losses.append(math.inf)
                continue
            losses.append(loss)
            if math.isfinite(loss) and (best is None or loss < best[0]):
                state = {k: v.detach().clone() for k, v in gp.state_dict().items()}
                best = (loss, state, None if U is None else U.detach().clone(), iters)
        if best is None:
            raise RuntimeError(
                f"GPDynamics.fit: all {restarts} restarts failed (losses {losses}); "
                "check the data for NaN, huge values or a degenerate design"
            )
        gp.load_state_dict(best[1])
        Ubest = best[2]
        with torch.no_grad():
            if U is not None and Ubest is not None:
                U.copy_(Ubest)
            nlml = -log_lik()
            pen = self._penalty(gp, likelihood).sum() / N
        gp.eval()
        likelihood.eval()
        self.gp, self.likelihood = gp, likelihood
        jitter = self._cache(gp, Zn, Yn, Ubest)
        terms = self.terms()
        report = GPFitReport(
            loss=float(best[0]),
            neg_log_marginal_likelihood=nlml.numpy(),
            penalty=float(pen),
            lengthscales=terms.lengthscales.numpy().copy(),
            signal_var=terms.signal_var.numpy().copy(),
            noise_var=terms.noise_var.numpy().copy(),
            snr=torch.sqrt(terms.signal_var / terms.noise_var).numpy(),
            jitter=jitter,
            restart_losses=tuple(losses),
            iterations=best[3],
            n_train=N,
            method=self.sparse_method if sparse else "exact",
            n_inducing=M,
            seconds=time.perf_counter() - t0,
        )
        logger.info("GPDynamics.fit: loss %.4f after %d iterations", report.loss, report.iterations)
        return report

    def _initialise(
        self,
        gp: _BatchGP,
        likelihood: gpytorch.likelihoods.GaussianLikelihood,
        gen: torch.Generator,
        *,
        random: bool,
    ) -> None:
        E, D = self.E, self.D
        log_ell = torch.zeros(E, D, dtype=torch.float64)
        log_sf2 = torch.zeros(E, dtype=torch.float64)
        log_sn2 = torch.full((E,), math.log(1e-2), dtype=torch.float64)
        if random:
            log_ell = log_ell + 0.5 * torch.randn(E, D, generator=gen, dtype=torch.float64)
            log_sf2 = log_sf2 + 0.5 * torch.randn(E, generator=gen, dtype=torch.float64)
            log_sn2 = log_sn2 + 1.0 * torch.randn(E, generator=gen, dtype=torch.float64)
        gp.set_hyperparameters(
            log_ell.exp(), log_sf2.exp(), log_sn2.exp().clamp_min(2.0 * self.noise_floor)
        )

    def _penalty(self, gp: _BatchGP, likelihood: gpytorch.likelihoods.GaussianLikelihood) -> Tensor:
        """PILCO's ``hypCurb`` penalty per output, standardised units, shape (E,)."""
        p = self.penalty_power
        ell, sf2, sn2 = gp.hyperparameters()
        log_ell = torch.log(ell)  # (E, D)
        log_snr = 0.5 * (torch.log(sf2) - torch.log(sn2))
        return ((log_ell / math.log(self.lengthscale_max)) ** p).sum(-1) + (
            log_snr / math.log(self.snr_max)
        ) ** p

    def _objective(
        self,
        gp: _BatchGP,
        likelihood: gpytorch.likelihoods.GaussianLikelihood,
        Zn: Tensor,
        Yn: Tensor,
        U: Tensor | None,
    ) -> Callable[[], Tensor]:
        """``log p(y_a) / N`` per output (E,): exact (gpytorch) or sparse bound."""
        N = Zn.shape[0]
        if U is None:
            mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, gp)

            def exact() -> Tensor:
                gp.train()
                likelihood.train()
                with gpytorch.settings.max_cholesky_size(_MAX_CHOLESKY):
                    return mll(gp(*gp.train_inputs), Yn)

            return exact

        def bound() -> Tensor:
            _, sf2, sn2 = gp.hyperparameters()
            post = sparse_posterior(
                gp.kernel(U, U),
                gp.kernel(U, Zn),
                sf2[:, None].expand(-1, N),
                Yn,
                sn2,
                method=self.sparse_method,
            )
            return post.log_likelihood / N

        return bound

    def _optimise(
        self,
        gp: _BatchGP,
        likelihood: gpytorch.likelihoods.GaussianLikelihood,
        log_lik: Callable[[], Tensor],
        params: list[Tensor],
        max_iter: int,
        optimizer: str,
        lr: float,
    ) -> tuple[float, int]:
        N = gp.train_targets.shape[-1]
        count = [0]

        def objective() -> Tensor:
            return -log_lik().sum() + self._penalty(gp, likelihood).sum() / N

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gpytorch.utils.warnings.NumericalWarning)
            if optimizer == "lbfgs":
                opt: torch.optim.Optimizer = torch.optim.LBFGS(
                    params,
                    lr=1.0,
                    max_iter=max_iter,
                    line_search_fn="strong_wolfe",
                    tolerance_grad=1e-7,
                    tolerance_change=1e-12,
                )

                def closure() -> Tensor:
                    opt.zero_grad()
                    loss = objective()
                    loss.backward()
                    count[0] += 1
                    return loss

                opt.step(closure)  # type: ignore[arg-type]
                iters = int(opt.state[opt._params[0]].get("n_iter", count[0]))  # type: ignore[attr-defined]
            else:
                opt = torch.optim.Adam(params, lr=lr)
                for _ in range(max_iter):
                    opt.zero_grad()
                    loss = objective()
                    loss.backward()
                    opt.step()
                iters = max_iter
            with torch.no_grad():
                final = float(objective())
        if not math.isfinite(final):
            raise RuntimeError(f"non-finite loss {final}")
        return final, iters

    def _cache(self, gp: _BatchGP, Zn: Tensor, Yn: Tensor, U: Tensor | None) -> float:
        """Posterior factors and raw-unit terms from the fitted hyperparameters; returns jitter."""
        with torch.no_grad():
            ell_n, sf2_n, sn2 = gp.hyperparameters()
            if U is None:
                N = Zn.shape[0]
                A = gp.kernel(Zn, Zn) + sn2[:, None, None] * torch.eye(N, dtype=torch.float64)
                L, jitter = safe_cholesky(0.5 * (A + A.mT), name="K + noise I (GPDynamics)")
                beta = torch.cholesky_solve(Yn.unsqueeze(-1), L).squeeze(-1)  # standardised
                Wn = torch.cholesky_inverse(L)
                self._post = _Posterior(Zn=Zn, L=L, beta=beta)
                X = Zn
            else:
                sp = sparse_posterior(
                    gp.kernel(U, U),
                    gp.kernel(U, Zn),
                    sf2_n[:, None].expand(-1, Zn.shape[0]),
                    Yn,
                    sn2,
                    method=self.sparse_method,
                )
                beta, Wn, jitter = sp.beta, sp.W(), sp.jitter
                self._post = _Posterior(Zn=U.detach().clone(), L=sp.L, beta=beta, LB=sp.LB)
                X = self._post.Zn
        ys = self.y_std
        self._terms = GPTerms(
            X=X * self.z_std + self.z_mean,
            beta=beta / ys[:, None],
            W=Wn / (ys**2)[:, None, None],
            lengthscales=ell_n * self.z_std,
            signal_var=sf2_n * ys**2,
            noise_var=sn2 * ys**2,
            mean=self.y_mean.clone(),
        )
        return float(jitter)

    # --------------------------------------------------------------- prediction
    def terms(self) -> GPTerms:
        r"""Posterior terms in raw units, for :func:`gpcontrol.models.moment_match`.

        With :math:`\varsigma`, :math:`c` the feature scales and means and
        :math:`s_y`, :math:`\bar y` the target scales and means, the standardised
        hyperparameters :math:`(\ell, \alpha^2, \sigma^2_\varepsilon)` and weights
        :math:`\beta = (K + \sigma^2_\varepsilon I)^{-1}\tilde y` become

        .. math::

            \ell^{raw} = \ell\,\varsigma,\quad \alpha^{2,raw} = s_y^2\alpha^2,\quad
            \sigma^{2,raw}_\varepsilon = s_y^2\sigma^2_\varepsilon,\quad
            \beta^{raw} = \beta / s_y,\quad W^{raw} = (K + \sigma^2_\varepsilon I)^{-1}/s_y^2,

        with training inputs ``X`` the raw features and ``mean`` :math:`\bar y`,
        so the raw posterior is :math:`\bar y + k^{raw}(z, X)\beta^{raw}`. For a
        sparse GP, ``X`` are the (raw) inducing inputs and ``beta``, ``W`` the
        sparse posterior's (:mod:`gpcontrol.models.sparse`); moment matching is
        then exact for the sparse predictive.

        Returns
        -------
        GPTerms
            ``X (N, D)``, ``beta (E, N)``, ``W (E, N, N)``, ``lengthscales (E, D)``,
            ``signal_var (E,)``, ``noise_var (E,)``, ``mean (E,)`` (detached).
        """
        if self._terms is None:
            raise RuntimeError("GPDynamics has not been fitted; call fit(inputs, targets) first")
        return self._terms

    def predict(self, inputs: Any, *, include_noise: bool = False) -> tuple[Tensor, Tensor]:
        r"""Posterior mean and variance of :math:`\Delta = x_{t+1} - x_t` at deterministic inputs.

        .. math::

            \mathbb E[\Delta_a] = \bar y_a + s_{y,a}\, k_a(\tilde z, \tilde Z)\beta_a,\qquad
            \operatorname{var}[\Delta_a] = s_{y,a}^2\big(\alpha_a^2
                - \lVert L_a^{-1} k_a(\tilde Z, \tilde z)\rVert^2
                [+ \sigma^2_{\varepsilon,a}]\big)

        (standardised :math:`\tilde z`; Rasmussen & Williams 2006, Alg. 2.1); for a
        sparse GP the inducing inputs replace :math:`\tilde Z` and the variance is
        :math:`\alpha^2 - \lVert L^{-1}k\rVert^2 + \lVert L_B^{-1}L^{-1}k\rVert^2`
        (:mod:`gpcontrol.models.sparse`).

        Parameters
        ----------
        inputs : Tensor, shape (..., n + m)
            ``[x, u]``; gradients flow through it.
        include_noise : bool
            Predict a noisy observation instead of the latent difference.

        Returns
        -------
        mean, var : Tensor, each shape (..., n)
        """
        post, gp = self._post, self.gp
        if post is None or gp is None:
            raise RuntimeError("GPDynamics has not been fitted; call fit(inputs, targets) first")
        x = inputs if isinstance(inputs, Tensor) else torch.as_tensor(np.asarray(inputs, float))
        x = x.to(torch.float64)
        if x.ndim < 1 or x.shape[-1] != self.n + self.m:
            raise ValueError(
                f"inputs must have shape (..., {self.n + self.m}) ([x, u]), got {tuple(x.shape)}"
            )
        batch = x.shape[:-1]
        zn = ((self.features(x) - self.z_mean) / self.z_std).reshape(-1, self.D)
        _, sf2, sn2 = gp.hyperparameters()
        Ks = gp.kernel(zn, post.Zn)  # (E, b, N) (M inducing inputs for a sparse GP)
        mean = (Ks @ post.beta.unsqueeze(-1)).squeeze(-1)  # (E, b)
        var = sf2[:, None] - post.variance_reduction(Ks.mT)
        if include_noise:
            var = var + sn2[:, None]
        var = var.clamp_min(0.0)
        ys = self.y_std[:, None]
        mean = (self.y_mean[:, None] + ys * mean).T.reshape(*batch, self.E)
        var = (ys**2 * var).T.reshape(*batch, self.E)
        return mean, var

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Same as :meth:`predict` (latent mean and variance of the state difference)."""
        return self.predict(inputs)

    def step(self, x: Any, u: Any) -> Tensor:
        """Mean next state :math:`x + \\mathbb E[\\Delta(x, u)]`, ``x (..., n)``, ``u (..., m)``."""
        xt = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
        ut = u if isinstance(u, Tensor) else torch.as_tensor(np.asarray(u, dtype=np.float64))
        xt, ut = xt.to(torch.float64), ut.to(torch.float64)
        if xt.shape[-1:] != (self.n,) or ut.shape[-1:] != (self.m,):
            raise ValueError(
                f"x must have shape (..., {self.n}) and u (..., {self.m}), got "
                f"{tuple(xt.shape)} and {tuple(ut.shape)}"
            )
        batch = torch.broadcast_shapes(xt.shape[:-1], ut.shape[:-1])
        xu = torch.cat([xt.expand(*batch, self.n), ut.expand(*batch, self.m)], dim=-1)
        return xt + self.predict(xu)[0]
