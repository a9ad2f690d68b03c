"""numba implementations behind `matchmaker.kernels` (see there for the bit-exactness contract)."""

# mypy: ignore-errors
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

CHUNK = 128

OPTS: dict[str, Any] = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy"}


@njit(inline="always", **OPTS)
def contexts_chunk(  # type: ignore[no-untyped-def]
    hist, pass1, pass1_delta, rep, size_bucket, cap, fam, tv_idx, sv_idx, m, x, dot, tv
):
    """Contexts of ``m`` pairs (teachers ``tv_idx[:m]``, students ``sv_idx[:m]``) into ``x[:, :m]``."""
    k = hist.shape[0]
    for p in range(m):
        x[0, p] = 1.0
        dot[p] = 0.0
        tv[p] = 0.0
    for j in range(k):
        hj = hist[j]
        for p in range(m):
            a = hj[tv_idx[p]]
            b = hj[sv_idx[p]]
            x[1 + j, p] = a * (1.0 - b)
            dot[p] = dot[p] + a * b
            tv[p] = tv[p] + abs(a - b)
    for p in range(m):
        t = tv_idx[p]
        s = sv_idx[p]
        pt = pass1[t]
        x[k + 1, p] = tv[p] * 0.5
        x[k + 2, p] = pt
        diff = pt - pass1[s]
        x[k + 3, p] = diff
        x[k + 4, p] = pt * (1.0 - dot[p])
        x[k + 5, p] = pass1_delta[t]
        x[k + 6, p] = rep[t]
        lr = (size_bucket[t] - size_bucket[s]) * 0.6931471805599453
        x[k + 7, p] = lr
        x[k + 8, p] = abs(lr)
        x[k + 9, p] = 1.0 if fam[t] == fam[s] else 0.0
        x[k + 10, p] = cap[s]
        x[k + 11, p] = diff if diff > 0.0 else 0.0


@njit(inline="always", **OPTS)
def ucb_chunk(x, theta, linv, beta, m, mean, bonus, ucb, z, q):  # type: ignore[no-untyped-def]
    d = theta.shape[0]
    for p in range(m):
        mean[p] = x[0, p] * theta[0]
    for j in range(1, d):
        th = theta[j]
        xj = x[j]
        for p in range(m):
            mean[p] = mean[p] + xj[p] * th
    for p in range(m):
        q[p] = 0.0
    for i in range(d):
        li = linv[i]
        l0 = li[0]
        x0 = x[0]
        for p in range(m):
            z[p] = x0[p] * l0
        for j in range(1, i + 1):
            lij = li[j]
            xj = x[j]
            for p in range(m):
                z[p] = z[p] + xj[p] * lij
        for p in range(m):
            q[p] = q[p] + z[p] * z[p]
    for p in range(m):
        b = math.sqrt(q[p])
        bonus[p] = b
        ucb[p] = mean[p] + beta * b


@njit(parallel=True, **OPTS)
def score_rows(  # type: ignore[no-untyped-def]
    hist, pass1, pass1_delta, rep, size_bucket, cap, fam, theta, linv, beta, t_start, out
):
    """UCB of every pair with teacher ``t_start + r`` into ``out[r, :]`` (``-inf`` on the diagonal)."""
    rows, n = out.shape
    d = theta.shape[0]
    for r in prange(rows):
        t = t_start + r
        x = np.empty((d, CHUNK))
        tv_idx = np.full(CHUNK, t, dtype=np.int64)
        sv_idx = np.empty(CHUNK, dtype=np.int64)
        dot = np.empty(CHUNK)
        tvd = np.empty(CHUNK)
        mean = np.empty(CHUNK)
        bonus = np.empty(CHUNK)
        ucb = np.empty(CHUNK)
        z = np.empty(CHUNK)
        q = np.empty(CHUNK)
        row = out[r]
        for c0 in range(0, n, CHUNK):
            m = min(CHUNK, n - c0)
            for p in range(m):
                sv_idx[p] = c0 + p
            contexts_chunk(
                hist, pass1, pass1_delta, rep, size_bucket, cap, fam, tv_idx, sv_idx, m, x, dot, tvd
            )
            ucb_chunk(x, theta, linv, beta, m, mean, bonus, ucb, z, q)
            for p in range(m):
                row[c0 + p] = ucb[p]
        if t < n:
            row[t] = -np.inf


@njit(parallel=True, **OPTS)
def score_pairs(  # type: ignore[no-untyped-def]
    hist, pass1, pass1_delta, rep, size_bucket, cap, fam, theta, linv, beta, teachers, students, out
):
    """``out[0] = mean``, ``out[1] = bonus``, ``out[2] = ucb`` of the given pairs."""
    n_pairs = teachers.shape[0]
    d = theta.shape[0]
    n_chunks = (n_pairs + CHUNK - 1) // CHUNK
    for ci in prange(n_chunks):
        c0 = ci * CHUNK
        m = min(CHUNK, n_pairs - c0)
        x = np.empty((d, CHUNK))
        dot = np.empty(CHUNK)
        tvd = np.empty(CHUNK)
        mean = np.empty(CHUNK)
        bonus = np.empty(CHUNK)
        ucb = np.empty(CHUNK)
        z = np.empty(CHUNK)
        q = np.empty(CHUNK)
        tv_idx = teachers[c0 : c0 + m]
        sv_idx = students[c0 : c0 + m]
        contexts_chunk(hist, pass1, pass1_delta, rep, size_bucket, cap, fam, tv_idx, sv_idx, m, x, dot, tvd)
        ucb_chunk(x, theta, linv, beta, m, mean, bonus, ucb, z, q)
        for p in range(m):
            out[0, c0 + p] = mean[p]
            out[1, c0 + p] = bonus[p]
            out[2, c0 + p] = ucb[p]


@njit(parallel=True, **OPTS)
def column_top_k(s, ok_thr, row_off, k, out_idx):  # type: ignore[no-untyped-def]
    """Per student (column) the ``k`` best eligible teachers by ``s[t, col] - row_off[t]``.

    Ties go to the lower teacher index. Eligible: off-diagonal, finite and strictly above
    ``ok_thr[student]``. ``out_idx[s, :]`` is ``-1``-padded.
    """
    n = s.shape[0]
    width = 512
    n_chunks = (n + width - 1) // width
    for ci in prange(n_chunks):
        c0 = ci * width
        w = min(width, n - c0)
        best = np.full((w, k), -np.inf)
        idx = np.full((w, k), -1, dtype=np.int64)
        for t in range(n):
            row = s[t]
            off = row_off[t]
            for c in range(w):
                col = c0 + c
                v = row[col]
                if t == col or not (v > ok_thr[col]) or not np.isfinite(v):
                    continue
                v = v - off
                if idx[c, k - 1] >= 0 and not (v > best[c, k - 1]):
                    continue
                pos = k - 1
                while pos > 0 and (idx[c, pos - 1] < 0 or v > best[c, pos - 1]):
                    best[c, pos] = best[c, pos - 1]
                    idx[c, pos] = idx[c, pos - 1]
                    pos -= 1
                best[c, pos] = v
                idx[c, pos] = t
        for c in range(w):
            for j in range(k):
                out_idx[c0 + c, j] = idx[c, j]


@njit(parallel=True, **OPTS)
def row_top_k(s, ok_thr, col_off, k, out_idx):  # type: ignore[no-untyped-def]
    """Per teacher (row) the ``k`` best eligible students by ``s[t, col] - col_off[col]``."""
    n = s.shape[0]
    for t in prange(n):
        row = s[t]
        best = np.full(k, -np.inf)
        idx = np.full(k, -1, dtype=np.int64)
        for col in range(n):
            v = row[col]
            if t == col or not (v > ok_thr[col]) or not np.isfinite(v):
                continue
            v = v - col_off[col]
            if idx[k - 1] >= 0 and not (v > best[k - 1]):
                continue
            pos = k - 1
            while pos > 0 and (idx[pos - 1] < 0 or v > best[pos - 1]):
                best[pos] = best[pos - 1]
                idx[pos] = idx[pos - 1]
                pos -= 1
            best[pos] = v
            idx[pos] = col
        for j in range(k):
            out_idx[t, j] = idx[j]


@njit(parallel=True, **OPTS)
def eligible_range(s, ok_thr, lo, hi, count, total):  # type: ignore[no-untyped-def]
    """Per teacher row: min, max, number and sum (in column order) of the eligible scores."""
    n = s.shape[0]
    for t in prange(n):
        row = s[t]
        a = np.inf
        b = -np.inf
        c = 0
        acc = 0.0
        for col in range(n):
            v = row[col]
            if t == col or not (v > ok_thr[col]) or not np.isfinite(v):
                continue
            c += 1
            acc += v
            if v < a:
                a = v
            if v > b:
                b = v
        lo[t] = a
        hi[t] = b
        count[t] = c
        total[t] = acc


@njit(parallel=True, **OPTS)
def column_sums(s, ok_thr, count, total):  # type: ignore[no-untyped-def]
    """Per student column: number and sum (in teacher order) of the eligible scores."""
    n = s.shape[0]
    width = 512
    n_chunks = (n + width - 1) // width
    for ci in prange(n_chunks):
        c0 = ci * width
        w = min(width, n - c0)
        acc = np.zeros(w)
        cnt = np.zeros(w, dtype=np.int64)
        for t in range(n):
            row = s[t]
            for c in range(w):
                col = c0 + c
                v = row[col]
                if t == col or not (v > ok_thr[col]) or not np.isfinite(v):
                    continue
                cnt[c] += 1
                acc[c] += v
        for c in range(w):
            count[c0 + c] = cnt[c]
            total[c0 + c] = acc[c]


@njit(parallel=True, **OPTS)
def violations(s, ok_thr, cand_t, w_top, u, vmax, margin, lookahead, n_true, limit, n_rec, out_s, out_rc):  # type: ignore[no-untyped-def]
    """Scan every non-candidate eligible pair's reduced cost ``((w_top - s) - u[s]) - vmax[t]``.

    ``n_true[t]``: pairs of teacher row ``t`` below ``margin`` (violations of the certificate).
    ``out_s[t, :n_rec[t]]``/``out_rc``: the (at most ``limit``) smallest reduced costs of the row
    below ``margin + lookahead``, ascending (ties: lower student first).
    """
    n = s.shape[0]
    for t in prange(n):
        row = s[t]
        c = 0
        m = 0
        vt = vmax[t]
        cut = margin + lookahead
        for col in range(n):
            v = row[col]
            if t == col or not (v > ok_thr[col]) or not np.isfinite(v):
                continue
            rc = ((w_top - v) - u[col]) - vt
            if rc < cut and not cand_t[col, t]:
                if rc < margin:
                    c += 1
                if m == limit and not (rc < out_rc[t, m - 1]):
                    continue
                pos = m if m < limit else limit - 1
                while pos > 0 and rc < out_rc[t, pos - 1]:
                    if pos < limit:
                        out_rc[t, pos] = out_rc[t, pos - 1]
                        out_s[t, pos] = out_s[t, pos - 1]
                    pos -= 1
                out_rc[t, pos] = rc
                out_s[t, pos] = col
                if m < limit:
                    m += 1
        n_true[t] = c
        n_rec[t] = m


@njit(**OPTS)
def heap_push(keys, vals, size, key, val):  # type: ignore[no-untyped-def]
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] > keys[i] or (keys[parent] == keys[i] and vals[parent] > vals[i]):
            keys[parent], keys[i] = keys[i], keys[parent]
            vals[parent], vals[i] = vals[i], vals[parent]
            i = parent
        else:
            break
    return size + 1


@njit(**OPTS)
def heap_pop(keys, vals, size):  # type: ignore[no-untyped-def]
    key = keys[0]
    val = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        best = left
        right = left + 1
        if right < size and (
            keys[right] < keys[left] or (keys[right] == keys[left] and vals[right] < vals[left])
        ):
            best = right
        if keys[best] < keys[i] or (keys[best] == keys[i] and vals[best] < vals[i]):
            keys[best], keys[i] = keys[i], keys[best]
            vals[best], vals[i] = vals[i], vals[best]
            i = best
        else:
            break
    return key, val, size


@njit(**OPTS)
def assign(n_rows, n_cols, indptr, indices, costs, v_init):  # type: ignore[no-untyped-def]
    """Min-cost assignment of every row (sparse edges), by shortest augmenting paths (Dijkstra).

    Returns ``(col_of_row, u, v)`` with dual potentials: ``costs - u[row] - v[col] >= 0`` on
    every edge (up to rounding), ``= 0`` on matched edges, ``v <= 0`` and ``v = 0`` on free
    columns. Rows must each have an edge to a private column, so that all can be assigned.
    ``v_init <= 0`` are the starting column potentials (a good guess saves augmentations;
    the caller checks that the columns left free end with ``v = 0``).
    Fully sequential and deterministic (ties: lower column index first).
    """
    u = np.empty(n_rows)
    v = v_init.copy()
    col_of_row = np.full(n_rows, -1, dtype=np.int64)
    row_of_col = np.full(n_cols, -1, dtype=np.int64)
    for i in range(n_rows):
        best = np.inf
        arg = -1
        for e in range(indptr[i], indptr[i + 1]):
            c = costs[e] - v[indices[e]]
            if c < best or (c == best and indices[e] < arg):
                best = c
                arg = indices[e]
        u[i] = best
        if row_of_col[arg] < 0:
            row_of_col[arg] = i
            col_of_row[i] = arg
    # Augmenting row reduction (Jonker-Volgenant): a free row takes its best column, whose
    # price drops to the row's second-best reduced cost; the evicted row goes on. Prices only
    # drop (``v <= 0``), taken columns stay taken, every taken edge stays tight.
    queue = np.empty(11 * n_rows + 1, dtype=np.int64)
    for _ in range(2):
        tail = 0
        for i in range(n_rows):
            if col_of_row[i] < 0:
                queue[tail] = i
                tail += 1
        head = 0
        while head < tail and tail < queue.shape[0] - 1:
            i = queue[head]
            head += 1
            u1 = np.inf
            u2 = np.inf
            j1 = -1
            j2 = -1
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                h = costs[e] - v[j]
                if h < u1 or (h == u1 and j < j1):
                    u2 = u1
                    j2 = j1
                    u1 = h
                    j1 = j
                elif h < u2 or (h == u2 and j < j2):
                    u2 = h
                    j2 = j
            i0 = row_of_col[j1]
            if u1 < u2:
                v[j1] -= u2 - u1
            elif i0 >= 0 and j2 >= 0:
                j1 = j2
                i0 = row_of_col[j2]
            if i0 >= 0:
                col_of_row[i0] = -1
                queue[tail] = i0
                tail += 1
            row_of_col[j1] = i
            col_of_row[i] = j1
    for i in range(n_rows):
        best = np.inf
        for e in range(indptr[i], indptr[i + 1]):
            h = costs[e] - v[indices[e]]
            if col_of_row[i] == indices[e]:
                best = h
                break
            if h < best:
                best = h
        u[i] = best
    dist = np.full(n_cols, np.inf)
    prev_row = np.full(n_cols, -1, dtype=np.int64)
    done = np.zeros(n_cols, dtype=np.bool_)
    touched = np.empty(n_cols, dtype=np.int64)
    scanned = np.empty(n_cols, dtype=np.int64)
    n_edges = indptr[n_rows]
    hkeys = np.empty(n_edges + n_cols + 1)
    hvals = np.empty(n_edges + n_cols + 1, dtype=np.int64)
    for i0 in range(n_rows):
        if col_of_row[i0] >= 0:
            continue
        n_touched = 0
        n_scanned = 0
        size = 0
        for e in range(indptr[i0], indptr[i0 + 1]):
            j = indices[e]
            nd = costs[e] - u[i0] - v[j]
            if nd < 0.0:
                nd = 0.0
            if nd < dist[j]:
                if dist[j] == np.inf:
                    touched[n_touched] = j
                    n_touched += 1
                dist[j] = nd
                prev_row[j] = i0
                size = heap_push(hkeys, hvals, size, nd, j)
        jstar = -1
        big_d = 0.0
        while size > 0:
            dj, j, size = heap_pop(hkeys, hvals, size)
            if done[j] or dj > dist[j]:
                continue
            done[j] = True
            scanned[n_scanned] = j
            n_scanned += 1
            r = row_of_col[j]
            if r < 0:
                jstar = j
                big_d = dj
                break
            for e in range(indptr[r], indptr[r + 1]):
                j2 = indices[e]
                if done[j2]:
                    continue
                red = costs[e] - u[r] - v[j2]
                if red < 0.0:
                    red = 0.0
                nd = dj + red
                if nd < dist[j2]:
                    if dist[j2] == np.inf:
                        touched[n_touched] = j2
                        n_touched += 1
                    dist[j2] = nd
                    prev_row[j2] = r
                    size = heap_push(hkeys, hvals, size, nd, j2)
        # potentials: u_r += D - d_r, v_j -= D - d_j over the scanned columns and their rows
        u[i0] += big_d
        for a in range(n_scanned):
            j = scanned[a]
            delta = big_d - dist[j]
            v[j] -= delta
            r = row_of_col[j]
            if r >= 0 and j != jstar:
                u[r] += delta
        # augment along the path back to i0
        j = jstar
        while True:
            r = prev_row[j]
            nxt = col_of_row[r]
            col_of_row[r] = j
            row_of_col[j] = r
            if r == i0:
                break
            j = nxt
        for a in range(n_touched):
            j = touched[a]
            dist[j] = np.inf
            done[j] = False
            prev_row[j] = -1
    return col_of_row, u, v


@njit(parallel=True, **OPTS)
def build_csr(cand_t, s, w_top, big, capacity, indptr):  # type: ignore[no-untyped-def]
    """Student-major CSR of the candidate edges (``cand_t[student, teacher]``).

    Columns of student ``st``: slots ``j * n + t`` for ``j < capacity`` and candidate ``t``
    ascending, then its dummy ``capacity * n + st``; costs ``w_top - s[t, st]`` and ``big``.
    ``indptr`` (``n + 1``) is filled here.
    """
    n = s.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    for st in prange(n):
        c = 0
        row = cand_t[st]
        for t in range(n):
            if row[t]:
                c += 1
        counts[st] = c * capacity + 1
    indptr[0] = 0
    for st in range(n):
        indptr[st + 1] = indptr[st] + counts[st]
    indices = np.empty(indptr[n], dtype=np.int64)
    costs = np.empty(indptr[n])
    for st in prange(n):
        row = cand_t[st]
        k = (counts[st] - 1) // capacity
        base = indptr[st]
        pos = 0
        for t in range(n):
            if row[t]:
                c = w_top - s[t, st]
                for j in range(capacity):
                    indices[base + j * k + pos] = j * n + t
                    costs[base + j * k + pos] = c
                pos += 1
        indices[base + capacity * k] = capacity * n + st
        costs[base + capacity * k] = big
    return indices, costs
