"""Cluster norm (Jacob, Bach & Vert 2009): tasks close to their cluster, clusters close to the mean.

With our (K, P) matrices A (row k = task k's copy of a layer; the paper's W transposed), r
clusters given by a K x r assignment E, ``M = E (E^T E)^-1 E^T`` (averaging within clusters)
and ``U = 1 1^T / K`` (averaging over all tasks), the penalty has three parts:

    Omega_mean    = tr(A^T U A)       = K ||a_bar||^2                        (overall size)
    Omega_between = tr(A^T (M - U) A) = sum_c K_c ||a_bar_c - a_bar||^2       (clusters apart)
    Omega_within  = tr(A^T (I - M) A) = sum_c sum_{k in c} ||a_k - a_bar_c||^2 (tasks apart)

    penalty = weight * (mean_weight Omega_mean + between_weight Omega_between
                        + within_weight Omega_within)

(``mean_weight``, ``between_weight``, ``within_weight`` are the paper's epsilon_M, epsilon_B,
epsilon_W; the issue's lambda_1..3.) With ``clusters`` given (lists of task names; a task in
no list is a cluster of its own) that is the whole regulariser, a smooth quadratic.

Learning the clusters (``clusters: []``, the default). Minimising over the discrete E is
combinatorial; Jacob et al. relax ``between_weight (M - U) + within_weight (I - M)`` on the
centred weights to ``Sigma^-1`` with Sigma in the convex set

    S = {Sigma : alpha I <= Sigma <= beta I, tr(Sigma) = gamma},
    alpha = 1 / within_weight, beta = 1 / between_weight,
    gamma = (K - r + 1) alpha + (r - 1) beta            (r = ``num_clusters``)

so that ``Omega = mean_weight Omega_mean + min_{Sigma in S} tr(A_c^T Sigma^-1 A_c)`` with
``A_c = (I - U) A`` (each task minus the mean task), jointly convex in (A, Sigma). The inner
minimum has a closed form: with ``A_c A_c^T = V diag(s^2) V^T``, ``Sigma = V diag(sigma) V^T``
and ``sigma_i = clamp(s_i / nu, alpha, beta)``, nu > 0 found by bisection so that the
sigma sum to gamma (the KKT conditions of ``min sum s_i^2 / sigma_i``). We take that minimum at
every step, on the detached weights: by Danskin's theorem the gradient of the relaxed penalty
is the gradient of ``tr(A_c^T Sigma*^-1 A_c)`` with Sigma* held fixed, so each gradient step is
a step on the convex relaxation itself, not an alternating heuristic. It requires
``between_weight < within_weight`` (alpha < beta), as in the paper.

What was learned. Sigma* is a K x K task covariance: ``task_covariance()`` returns it per layer
(the DRN report format; the experiment writes ``task_covariance.json/.png`` and ``textmtl
covariance RUN_DIR`` prints it) with a hard clustering read from it: k-means (r clusters) on
the rows of ``V diag(sqrt(sigma))``, the task embedding whose Gram matrix is Sigma*. With given
clusters it returns those.

One Sigma per layer: a layer's weight and bias (names differing only in their last component)
are joined column-wise, as for :mod:`~textmtl.regularizers.task_covariance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Regularizer, correlation, matrices_by_layer

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod


def cluster_averaging(assignment: list[int]) -> torch.Tensor:
    """``M = E (E^T E)^-1 E^T``: (K, K), ``M[i, j] = 1 / K_c`` when i and j are in cluster c."""
    labels = torch.tensor(assignment)
    same = (labels[:, None] == labels[None, :]).double()  # (K, K)
    return same / same.sum(dim=1, keepdim=True)


def relaxed_cluster_covariance(centred: torch.Tensor, alpha: float, beta: float, gamma: float,
                               iterations: int = 100) -> torch.Tensor:
    """``argmin_{Sigma in S} tr(A_c^T Sigma^-1 A_c)`` in closed form (float64).

    Args:
        centred: A_c, (K, P), the task copies minus their mean.
        alpha, beta: the eigenvalue bounds of Sigma (0 < alpha <= beta).
        gamma: its trace (K alpha <= gamma <= K beta).
        iterations: bisection steps for the multiplier nu.
    Returns:
        (K, K) Sigma*, symmetric, eigenvalues in [alpha, beta], trace gamma.
    References:
        Jacob, Bach & Vert (2009), Clustered Multi-Task Learning: A Convex Formulation (NIPS),
        section 3 (the set S_c and its minimiser).
    """
    a = centred.detach().double()
    values, vectors = torch.linalg.eigh(a @ a.T)  # (K,), (K, K)
    s = values.clamp_min(0).sqrt()  # singular values of A_c
    # sigma(c) = clamp(c * s, alpha, beta) grows with c = 1 / nu; find c with sum = gamma
    low, high = 0.0, 1.0
    while torch.clamp(high * s, alpha, beta).sum() < gamma and high < 1e300:
        high *= 2.0
    for _ in range(iterations):
        middle = (low + high) / 2
        if torch.clamp(middle * s, alpha, beta).sum() < gamma:
            low = middle
        else:
            high = middle
    sigma = torch.clamp(high * s, alpha, beta)
    sigma = sigma * (gamma / sigma.sum())  # the bisection's last digits (the bounds stay in reach)
    covariance = (vectors * sigma) @ vectors.T
    return (covariance + covariance.T) / 2


def clusters_of(covariance: torch.Tensor, num_clusters: int, seed: int = 0) -> list[int]:
    """A hard clustering of the tasks from a K x K covariance: k-means on its PSD factor's rows."""
    from sklearn.cluster import KMeans

    values, vectors = torch.linalg.eigh(covariance.double())
    embedding = (vectors * values.clamp_min(0).sqrt()).cpu().numpy()  # (K, K), Gram = covariance
    count = min(num_clusters, covariance.shape[0])
    return KMeans(count, n_init=10, random_state=seed).fit_predict(embedding).astype(int).tolist()


@REGULARIZERS.register("cluster_norm")
class ClusterNorm(Regularizer):
    """``weight * (mean_weight Omega_mean + between_weight Omega_between + within_weight
    Omega_within)`` for given clusters, or its convex relaxation that learns them.

    Args:
        weight: overall multiplier (>= 0), the one a ``grid:`` over lambda varies.
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
        clusters: lists of task names, one list per cluster (a task in no list is a cluster
            of its own; a name the model does not have is ignored and reported); empty: learn
            them (the convex relaxation).
        num_clusters: r, the number of clusters the relaxation allows (learned mode; >= 1).
        mean_weight: epsilon_M, on ``K ||a_bar||^2`` (>= 0).
        between_weight: epsilon_B, on the spread of the cluster means (> 0).
        within_weight: epsilon_W, on the spread inside clusters (> between_weight: a task
            is pulled to its cluster harder than clusters to each other).
    Returns:
        ``penalty(model)``: a scalar tensor; ``task_covariance()``: per layer the learned
        Sigma* (or the given clusters) and the clusters read from it.
    References:
        Jacob, Bach & Vert (2009), Clustered Multi-Task Learning: A Convex Formulation (NIPS);
        Evgeniou, Micchelli & Pontil (2005) (the given-cluster quadratic); Ruder (2017), An
        Overview of Multi-Task Learning, "Regularization approaches for learning task
        relationships".
    """

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [],
                 clusters: list[list[str]] = [], num_clusters: int = 3, mean_weight: float = 1.0,
                 between_weight: float = 1.0, within_weight: float = 10.0) -> None:
        super().__init__(weight=weight, parameters=parameters)
        if not (isinstance(clusters, list) and all(isinstance(c, list) and c and
                                                   all(isinstance(t, str) for t in c) for c in clusters)):
            raise ValueError(f"'clusters' of ClusterNorm must be lists of task names, got {clusters!r}")
        named = [t for c in clusters for t in c]
        if len(named) != len(set(named)):
            raise ValueError(f"'clusters' of ClusterNorm name a task twice: {clusters!r}")
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
            raise ValueError(f"'num_clusters' of ClusterNorm must be an integer >= 1, got {num_clusters!r}")
        if not mean_weight >= 0:
            raise ValueError(f"'mean_weight' of ClusterNorm must be >= 0, got {mean_weight}")
        if not 0 < between_weight < within_weight:
            raise ValueError(f"ClusterNorm needs 0 < between_weight < within_weight, got "
                             f"{between_weight} and {within_weight}")
        self.clusters = [list(c) for c in clusters]
        self.num_clusters = num_clusters
        self.mean_weight, self.between_weight, self.within_weight = \
            float(mean_weight), float(between_weight), float(within_weight)
        self.task_names: list[str] = []
        self.covariances: dict[str, torch.Tensor] = {}  # layer -> (K, K) Sigma* (learned mode)
        self.updates = 0

    def assignment(self, task_names: list[str]) -> list[int]:
        """Cluster index per task (given clusters first, then one singleton per other task).

        A named task the model does not have is left out (a config written for 16 domains
        runs on a subset of them, e.g. a 3-domain quick check); :meth:`task_covariance`
        lists such names under ``ignored`` so a misspelt one is visible."""
        of = {t: i for i, c in enumerate(self.clusters) for t in c if t in task_names}
        extra = iter(range(len(self.clusters), len(self.clusters) + len(task_names)))
        return [of[t] if t in of else next(extra) for t in task_names]

    def bounds(self, k: int) -> tuple[float, float, float]:
        """alpha, beta, gamma of the relaxation's set S for K = k tasks."""
        alpha, beta = 1.0 / self.within_weight, 1.0 / self.between_weight
        r = min(self.num_clusters, k)
        return alpha, beta, (k - r + 1) * alpha + (r - 1) * beta

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        self.task_names = list(model.task_names)
        total = next(model.parameters()).new_zeros(())
        for layer, matrix in matrices_by_layer(self.matrices(model)).items():  # (K, P)
            k = matrix.shape[0]
            mean = matrix.mean(dim=0)  # (P,)
            centred = matrix - mean  # A_c = (I - U) A
            total = total + self.mean_weight * k * mean.pow(2).sum()
            if self.clusters:
                averaging = cluster_averaging(self.assignment(self.task_names)).to(matrix)  # M
                cluster_means = averaging @ matrix  # row k: the mean of k's cluster
                # summing over rows (tasks) counts each cluster mean K_c times, as Omega_between does
                total = total + self.between_weight * (cluster_means - mean).pow(2).sum() \
                    + self.within_weight * (matrix - cluster_means).pow(2).sum()
            else:
                covariance = relaxed_cluster_covariance(centred, *self.bounds(k))  # Sigma*
                self.covariances[layer] = covariance
                inverse = torch.linalg.inv(covariance).to(matrix)
                total = total + (centred * (inverse @ centred)).sum()  # tr(A_c^T Sigma^-1 A_c)
        self.updates += 0 if self.clusters else 1
        return self.weight * total

    def task_covariance(self) -> dict:
        """What the regulariser holds about the tasks, in the format of the DRN report.

        Returns:
            ``tasks``; ``updates`` (closed-form minimisations over Sigma); ``epsilon`` (None:
            no ridge here); ``source``; ``layers``: per layer its ``name``, ``covariance``
            (Sigma*), ``correlation`` and ``clusters`` (lists of task names); with given
            clusters one entry, ``given``, holding just the clusters.
        """
        names = self.task_names
        report = {"tasks": list(names), "updates": self.updates, "epsilon": None,
                  "source": "cluster_norm", "layers": []}
        if self.clusters and names:
            report["layers"].append({"name": "given", "clusters": groups(self.assignment(names), names)})
            report["ignored"] = [t for c in self.clusters for t in c if t not in names]
        for layer, sigma in self.covariances.items():
            report["layers"].append({
                "name": layer, "covariance": sigma.cpu().tolist(),
                "correlation": correlation(sigma).cpu().tolist(),
                "clusters": groups(clusters_of(sigma, self.num_clusters), names)})
        return report

    def __repr__(self) -> str:
        return (f"ClusterNorm(weight={self.weight}, parameters={self.parameters}, "
                f"clusters={self.clusters}, num_clusters={self.num_clusters}, "
                f"mean_weight={self.mean_weight}, between_weight={self.between_weight}, "
                f"within_weight={self.within_weight})")


def groups(assignment: list[int], names: list[str]) -> list[list[str]]:
    """Task names per cluster, clusters in order of their first task."""
    out: dict[int, list[str]] = {}
    for label, name in zip(assignment, names):
        out.setdefault(label, []).append(name)
    return list(out.values())


__all__ = ["ClusterNorm", "cluster_averaging", "clusters_of", "relaxed_cluster_covariance"]
