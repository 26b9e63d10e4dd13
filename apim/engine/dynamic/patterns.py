"""The ratings of the dynamic model on the session grid and the schedule of the Kalman
filter: which dyads share the covariance algebra at each session.

The filter's covariance ``P``, gain, innovation covariance ``F``, its inverse and
log-determinant and the regressors' state depend on a dyad's pattern of observed ratings
only, never on the values. A *history* is the pattern of observed variables since the
last fully observed session (a fully observed session leaves the filtered covariance at
zero and the regressors' filtered state at the identity whatever came before, so all
histories merge there). At each session the dyads still in the study fall into *nodes*:
the distinct pairs (history so far, variables observed now). The covariance algebra is
done once per node; per dyad only the data's own state (a K-vector) is carried. Balanced
complete data have one node per session; the seed data (240 dyads, missing ratings and
dropout) about 18.

Examples
--------
>>> y = np.ones((3, 2, 2))
>>> y[2, 1, 0] = np.nan
>>> data = prepare_dynamic(y)
>>> [step.n_nodes for step in data.steps]     # one node, then two
[1, 2]
>>> prepare_dynamic(y, share=False).steps[1].n_nodes
3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DynamicData", "Step", "prepare_dynamic"]

#: Up to this many nodes per session, per-node products for one parameter set run as
#: one matrix product
_DENSE_NODES = 64


@dataclass(frozen=True, eq=False)
class Step:
    """One session of the filter's schedule (``na`` dyads still in the study, ``U``
    nodes, ``H`` histories before and ``H'`` after the session).

    Attributes
    ----------
    na : dyads with a rating at or after this session (a leading slice)
    take : the node of each of those dyads (``slice(0, 1)`` when there is one node)
    sort, runs : the dyads ordered by node and each node's run in that order
    counts : dyads per node, shape (U, 1, 1, 1)
    parent : the history of each node (into the covariances predicted for the session)
    d : the observed variables of each node (U, K) as 0/1
    both, off, rows : ``d d'``, ``diag(1 - d)`` (U, 1, K, K) and ``d`` as rows (U, 1, K, 1)
    dyad_mask : each dyad's ``d`` (na, K)
    keep : the node whose filtered quantities each history after the session takes
    reset : whether history 0 after the session is the merged, fully observed one
    complete : the fully observed nodes (they all go to history 0)
    following : the history after the session of each node
    group_rows, group_nodes, group_starts : the groups (patterns over the whole grid)
        started by this session, ordered by node, the node of each and where each
        node's run starts (every node has one)
    member : (na, U) 0/1, which dyads are in which node (only up to ``_DENSE_NODES``
        nodes, where it is used)
    adopt : (H, U) 0/1, which nodes come from which history (for sums over them)
    same_parent : node ``j`` comes from history ``j`` (no reordering needed)
    all_complete : every dyad is fully observed (one history after the session)
    """

    na: int
    take: np.ndarray | slice
    sort: np.ndarray
    runs: tuple[tuple[int, int], ...]
    counts: np.ndarray
    parent: np.ndarray
    d: np.ndarray
    both: np.ndarray
    off: np.ndarray
    rows: np.ndarray
    dyad_mask: np.ndarray
    keep: np.ndarray
    reset: bool
    complete: np.ndarray
    following: np.ndarray
    group_rows: np.ndarray
    group_nodes: np.ndarray
    group_starts: np.ndarray
    member: np.ndarray
    adopt: np.ndarray
    same_parent: bool
    all_complete: bool

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    def apply(self, matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Each dyad's vector times its node's matrix: ``matrices`` (U, m, K, K) per
        node and parameter set, ``vectors`` (m, na, K) per set and dyad. For one set
        and few nodes, one product against all nodes' matrices side by side and each
        dyad's block picked out; else one product per node over its dyads."""
        u, m, k, _ = matrices.shape
        if u == 1:
            return vectors @ matrices[0].mT
        if m == 1 and u <= _DENSE_NODES:
            side = matrices[:, 0].transpose(2, 0, 1).reshape(k, u * k)
            out = (vectors[0] @ side).reshape(self.na, u, k)
            return out[np.arange(self.na), self.take][None]
        ordered = vectors[:, self.sort]
        out = np.empty_like(ordered)
        for h, (lo, hi) in enumerate(self.runs):
            out[:, lo:hi] = ordered[:, lo:hi] @ matrices[h].mT
        result = np.empty_like(out)
        result[:, self.sort] = out
        return result

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Sums over the groups started by now of each node: ``values`` (G, ...) ->
        (U, ...)."""
        return np.add.reduceat(values[self.group_rows], self.group_starts, axis=0)

    def to_histories(self, values: np.ndarray) -> np.ndarray:
        """Sums over the nodes from each history before the session: (U, m, K, K) ->
        (H, m, K, K)."""
        return (self.adopt @ values.reshape(len(values), -1)).reshape(
            (len(self.adopt),) + values.shape[1:])

    def node_outer(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Sums over the dyads of each node of the outer products ``left right'``:
        (m, na, K) and (m, na, J) -> (U, m, K, J)."""
        if isinstance(self.take, slice):
            return (left.mT @ right)[None]
        m, na, k = left.shape
        if m == 1 and self.n_nodes <= _DENSE_NODES:
            spread = (left[0, :, None, :] * self.member[:, :, None]).reshape(na, -1)
            return (spread.T @ right[0]).reshape(self.n_nodes, 1, k, -1)
        left, right = left[:, self.sort].mT, right[:, self.sort]
        return np.stack([left[..., lo:hi] @ right[:, lo:hi] for lo, hi in self.runs])


@dataclass(frozen=True, eq=False)
class DynamicData:
    """Ratings on the session grid, dyads ordered by their last rated session (latest
    first, so the dyads still in the study at a session are a leading slice):
    ``y`` (dyads, sessions, K) with zeros where missing, ``observed`` the mask,
    ``codes`` each dyad's pattern of observed variables per session as a bit mask,
    ``active`` the number of dyads with a rating at or after each session, ``order``
    the original position of each dyad, ``groups`` the group of dyads with the same
    pattern over the whole grid, ``group_first`` each group's first dyad,
    ``group_counts`` its number of dyads, ``steps`` the filter's schedule (one
    :class:`Step` per session up to the last rated one) and ``design`` the dyads'
    covariates of the means (dyads, q; the first column the intercept's ones), or None
    (the means the same for every dyad)."""

    y: np.ndarray
    observed: np.ndarray
    codes: np.ndarray
    active: np.ndarray
    order: np.ndarray
    n_obs: int
    groups: np.ndarray
    group_first: np.ndarray
    group_counts: np.ndarray
    steps: tuple[Step, ...]
    design: np.ndarray | None = None

    @property
    def k(self) -> int:
        return int(self.y.shape[2])

    @property
    def n_dyads(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_sessions(self) -> int:
        return int(self.y.shape[1])


def prepare_dynamic(y: np.ndarray, share: bool = True,
                    design: np.ndarray | None = None) -> DynamicData:
    """Ratings as an array (dyads, sessions of the grid, K) with NaN where missing.

    ``share=False`` gives every dyad its own node and group at every session (the
    per-dyad filter, no sharing; for checks of the shared one). ``design`` (dyads, q):
    each dyad's covariates of the means, ``mu_i = B' x_i`` (the first column ones for
    the intercepts); the means are then the K x q coefficients ``B`` (flattened as
    ``B[variable, covariate]``)."""
    y = np.asarray(y, float)
    n, n_t, k = y.shape
    observed = ~np.isnan(y)
    any_rating = observed.any(axis=2)
    last = np.where(any_rating.any(axis=1), n_t - 1 - np.argmax(any_rating[:, ::-1], axis=1),
                    -1)
    order = np.argsort(-last, kind="stable")
    observed, last = observed[order], last[order]
    codes = (observed * (1 << np.arange(k))).sum(axis=2)
    active = (last[None, :] >= np.arange(n_t)[:, None]).sum(axis=1)
    if share:
        _, group_first, groups = np.unique(codes, axis=0, return_index=True,
                                           return_inverse=True)
        groups = groups.ravel()
    else:
        groups = group_first = np.arange(n)
    steps = _schedule(codes, active, group_first, k, share)
    return DynamicData(np.where(observed, y[order], 0.0), observed, codes, active, order,
                       int(observed.sum()), groups,
                       group_first, np.bincount(groups, minlength=len(group_first)),
                       steps, None if design is None else np.asarray(design, float)[order])


def _schedule(codes: np.ndarray, active: np.ndarray, group_first: np.ndarray, k: int,
              share: bool) -> tuple[Step, ...]:
    full = (1 << k) - 1
    bits = ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(float)
    eye = np.eye(k)
    history = np.zeros(len(codes), np.int64)
    steps: list[Step] = []
    for t in range(codes.shape[1]):
        na = int(active[t])
        if na == 0:
            break
        code = codes[:na, t]
        if share:
            key = history[:na] * (full + 1) + code
            _, first, node = np.unique(key, return_index=True, return_inverse=True)
            node = node.ravel()
            complete = code[first] == full
        else:
            first = node = np.arange(na)
            complete = np.zeros(na, bool)
        parent = history[:na][first]
        d = bits[code[first]]
        if complete.any():
            following = np.where(complete, 0, np.cumsum(~complete))
            keep = np.concatenate([np.flatnonzero(complete)[:1], np.flatnonzero(~complete)])
        else:
            following, keep = np.arange(len(first)), np.arange(len(first))
        history[:na] = following[node]
        sort = np.argsort(node, kind="stable")
        edges = np.r_[np.flatnonzero(np.r_[True, np.diff(node[sort]) != 0]), na]
        started = np.flatnonzero(group_first < na)
        started = started[np.argsort(node[group_first[started]], kind="stable")]
        group_nodes = node[group_first[started]]
        n_before = len(steps[-1].keep) if steps else 1
        steps.append(Step(
            na=na, take=slice(0, 1) if len(first) == 1 else node, sort=sort,
            runs=tuple(zip(edges[:-1].tolist(), edges[1:].tolist())),
            counts=np.bincount(node).astype(float)[:, None, None, None], parent=parent,
            d=d, both=(d[:, :, None] * d[:, None, :])[:, None],
            off=((1 - d)[:, :, None] * eye)[:, None], rows=d[:, None, :, None],
            dyad_mask=d[node], keep=keep, reset=bool(complete.any()),
            complete=complete, following=following, group_rows=started,
            group_nodes=group_nodes,
            group_starts=np.flatnonzero(np.r_[True, np.diff(group_nodes) != 0]),
            member=(node[:, None] == np.arange(len(first))).astype(float)
            if len(first) <= _DENSE_NODES else np.zeros((0, 0)),
            adopt=(parent == np.arange(n_before)[:, None]).astype(float),
            same_parent=len(parent) == n_before and bool(np.all(parent == np.arange(n_before))),
            all_complete=bool(complete.all())))
    return tuple(steps)
