"""Other ways to write the conv and pool layers, to measure the reference against.

`loops`: the definition, one Python loop per image, position and filter (a typical first
student attempt). `offsets`: a different vectorisation with no im2col copy: one matrix
product per kernel offset (u, v), accumulated. `einsum`: numpy.einsum over the strided
window view. All take and return what the reference layers do (NHWC, float64).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pad(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def _out_size(h, k, s, p):
    return (h + 2 * p - k) // s + 1


# ---------------------------------------------------------------- loops
def conv_forward_loops(x, w, b, s, p):
    n, h, wd, c = x.shape
    k, f = w.shape[0], w.shape[3]
    xp = _pad(x, p)
    ho, wo = _out_size(h, k, s, p), _out_size(wd, k, s, p)
    out = np.zeros((n, ho, wo, f))
    for i in range(n):
        for r in range(ho):
            for q in range(wo):
                window = xp[i, r * s:r * s + k, q * s:q * s + k, :]
                for j in range(f):
                    out[i, r, q, j] = np.sum(window * w[:, :, :, j]) + b[j]
    return out


def conv_backward_loops(x, w, dout, s, p):
    n, h, wd, c = x.shape
    k, f = w.shape[0], w.shape[3]
    xp = _pad(x, p)
    dxp, dw = np.zeros_like(xp, dtype=np.float64), np.zeros_like(w)
    _, ho, wo, _ = dout.shape
    for i in range(n):
        for r in range(ho):
            for q in range(wo):
                window = xp[i, r * s:r * s + k, q * s:q * s + k, :]
                for j in range(f):
                    dw[:, :, :, j] += window * dout[i, r, q, j]
                    dxp[i, r * s:r * s + k, q * s:q * s + k, :] += w[:, :, :, j] * dout[i, r, q, j]
    return dxp[:, p:p + h, p:p + wd, :], dw, dout.sum(axis=(0, 1, 2))


def pool_forward_loops(x, size, s):
    n, h, wd, c = x.shape
    ho, wo = (h - size) // s + 1, (wd - size) // s + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(n):
        for r in range(ho):
            for q in range(wo):
                for j in range(c):
                    out[i, r, q, j] = x[i, r * s:r * s + size, q * s:q * s + size, j].max()
    return out


def pool_backward_loops(x, dout, size, s):
    dx = np.zeros_like(x, dtype=np.float64)
    n, ho, wo, c = dout.shape
    for i in range(n):
        for r in range(ho):
            for q in range(wo):
                for j in range(c):
                    window = x[i, r * s:r * s + size, q * s:q * s + size, j]
                    u, v = np.unravel_index(np.argmax(window), window.shape)
                    dx[i, r * s + u, q * s + v, j] += dout[i, r, q, j]
    return dx


# ---------------------------------------------------------------- one product per offset
def conv_forward_offsets(x, w, b, s, p):
    n, h, wd, c = x.shape
    k, f = w.shape[0], w.shape[3]
    xp = _pad(x, p)
    ho, wo = _out_size(h, k, s, p), _out_size(wd, k, s, p)
    out = np.broadcast_to(b, (n, ho, wo, f)).astype(np.float64)
    for u in range(k):
        for v in range(k):
            out += xp[:, u:u + s * ho:s, v:v + s * wo:s, :] @ w[u, v]
    return out


def conv_backward_offsets(x, w, dout, s, p):
    n, h, wd, c = x.shape
    k, f = w.shape[0], w.shape[3]
    xp = _pad(x, p)
    _, ho, wo, _ = dout.shape
    dxp, dw = np.zeros(xp.shape), np.empty_like(w)
    d2 = dout.reshape(-1, f)
    for u in range(k):
        for v in range(k):
            patch = xp[:, u:u + s * ho:s, v:v + s * wo:s, :]
            dw[u, v] = patch.reshape(-1, c).T @ d2
            dxp[:, u:u + s * ho:s, v:v + s * wo:s, :] += dout @ w[u, v].T
    return dxp[:, p:p + h, p:p + wd, :], dw, d2.sum(axis=0)


# ---------------------------------------------------------------- einsum on the window view
def conv_forward_einsum(x, w, b, s, p):
    k = w.shape[0]
    windows = sliding_window_view(_pad(x, p), (k, k), axis=(1, 2))[:, ::s, ::s]  # n, ho, wo, c, k, k
    return np.einsum("nhwcuv,uvcf->nhwf", windows, w, optimize=True) + b


def pool_forward_reshape(x, size, s):
    """Max pooling for the common case stride == size with no remainder: a reshape, no view."""
    n, h, wd, c = x.shape
    return x.reshape(n, h // size, size, wd // size, size, c).max(axis=(2, 4))
