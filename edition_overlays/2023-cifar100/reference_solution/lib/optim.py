from __future__ import absolute_import, division, print_function

import numpy as np


class Optimizer(object):
    """Base class: step() updates every layer of a `sequential` net in place."""

    def __init__(self, net, lr=1e-4):
        self.net = net
        self.lr = lr

    def step(self):
        if hasattr(self.net, "preprocess") or hasattr(self.net, "rnn") or hasattr(self.net, "postprocess"):
            for part in (getattr(self.net, "preprocess", None), getattr(self.net, "rnn", None),
                         getattr(self.net, "postprocess", None)):
                if part is not None:
                    self.update(part)
        else:
            for layer in self.net.layers:
                self.update(layer)

    def update(self, layer):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional weight decay: theta -= lr * grad + weight_decay * theta."""

    def __init__(self, net, lr=1e-4, weight_decay=0.0):
        self.net = net
        self.lr = lr
        self.weight_decay = weight_decay

    def update(self, layer):
        for n, dv in layer.grads.items():
            layer.params[n] -= self.lr * dv + self.weight_decay * layer.params[n]


class Adam(Optimizer):
    """Adam with bias correction and optional (decoupled) weight decay; t counts optimizer steps.

    theta -= lr * m_hat / (sqrt(v_hat) + eps) + weight_decay * theta: the decay is applied to the
    parameters as in SGD, not added to the gradient (which is what L2 regularisation does)."""

    def __init__(self, net, lr=1e-3, beta1=0.9, beta2=0.999, t=0, eps=1e-8, weight_decay=0.0):
        self.net = net
        self.lr = lr
        self.beta1, self.beta2 = beta1, beta2
        self.eps = eps
        self.mt = {}
        self.vt = {}
        self.t = t
        self.weight_decay = weight_decay

    def step(self):
        # One time step per optimizer step, however many layers the net has.
        self.t += 1
        super(Adam, self).step()

    def update(self, layer):
        for n, dv in layer.grads.items():
            m = self.beta1 * self.mt.get(n, 0.0) + (1 - self.beta1) * dv
            v = self.beta2 * self.vt.get(n, 0.0) + (1 - self.beta2) * dv ** 2
            self.mt[n], self.vt[n] = m, v
            m_hat = m / (1 - self.beta1 ** self.t)
            v_hat = v / (1 - self.beta2 ** self.t)
            layer.params[n] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps) + self.weight_decay * layer.params[n]
