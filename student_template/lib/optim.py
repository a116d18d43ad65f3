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
    """Plain stochastic gradient descent: theta -= lr * grad."""

    def __init__(self, net, lr=1e-4):
        self.net = net
        self.lr = lr

    def update(self, layer):
        for n, dv in layer.grads.items():
            layer.params[n] -= self.lr * dv


class SGDM(Optimizer):
    """SGD with momentum: v = momentum * v - lr * g; theta += v."""

    def __init__(self, net, lr=1e-4, momentum=0.0):
        self.net = net
        self.lr = lr
        self.momentum = momentum
        self.velocity = {}

    def update(self, layer):
        for n, dv in layer.grads.items():
            v = self.momentum * self.velocity.get(n, 0.0) - self.lr * dv
            self.velocity[n] = v
            layer.params[n] += v


class RMSProp(Optimizer):
    """RMSProp: a decaying average of squared gradients scales each step."""

    def __init__(self, net, lr=1e-2, decay=0.99, eps=1e-8):
        self.net = net
        self.lr = lr
        self.decay = decay
        self.eps = eps
        self.cache = {}

    def update(self, layer):
        for n, dv in layer.grads.items():
            c = self.decay * self.cache.get(n, 0.0) + (1 - self.decay) * dv ** 2
            self.cache[n] = c
            layer.params[n] -= self.lr * dv / np.sqrt(c + self.eps)


class Adam(Optimizer):
    """Adam with bias correction; t counts optimizer steps."""

    def __init__(self, net, lr=1e-3, beta1=0.9, beta2=0.999, t=0, eps=1e-8):
        self.net = net
        self.lr = lr
        self.beta1, self.beta2 = beta1, beta2
        self.eps = eps
        self.mt = {}
        self.vt = {}
        self.t = t

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
            layer.params[n] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
