from __future__ import absolute_import, division, print_function

import numpy as np


class sequential(object):
    """An ordered stack of layers whose params and grads are gathered by name."""

    def __init__(self, *args):
        self.params = {}
        self.grads = {}
        self.layers = []
        self.paramName2Indices = {}
        self.layer_names = {}

        # process the parameters layer by layer
        for layer_cnt, layer in enumerate(args):
            for n, v in layer.params.items():
                self.params[n] = v
                self.paramName2Indices[n] = layer_cnt
            for n, v in layer.grads.items():
                self.grads[n] = v
            if layer.name in self.layer_names:
                raise ValueError("Existing name {}!".format(layer.name))
            self.layer_names[layer.name] = True
            self.layers.append(layer)

    def assign(self, name, val):
        # load the given values to the layer by name
        layer_cnt = self.paramName2Indices[name]
        self.layers[layer_cnt].params[name] = val

    def assign_grads(self, name, val):
        # load the given values to the layer by name
        layer_cnt = self.paramName2Indices[name]
        self.layers[layer_cnt].grads[name] = val

    def get_params(self, name):
        # return the parameters by name
        return self.params[name]

    def get_grads(self, name):
        # return the gradients by name
        return self.grads[name]

    def gather_params(self):
        """Collect the current parameter arrays of every layer into self.params."""
        for layer in self.layers:
            for n, v in layer.params.items():
                self.params[n] = v

    def gather_grads(self):
        """Collect the current gradient arrays of every layer into self.grads."""
        for layer in self.layers:
            for n, v in layer.grads.items():
                self.grads[n] = v

    def apply_l1_regularization(self, lam):
        """Add the gradient of lam * sum(|theta|) to every gradient: lam * sign(theta).

        Called after gather_grads; each layer's gradient and the net's copy are replaced together."""
        for layer in self.layers:
            for n, v in layer.grads.items():
                reg = v + lam * np.sign(layer.params[n])
                layer.grads[n] = reg
                self.grads[n] = reg

    def apply_l2_regularization(self, lam):
        """Add the gradient of lam * sum(theta ** 2) to every gradient: 2 * lam * theta."""
        for layer in self.layers:
            for n, v in layer.grads.items():
                reg = v + 2 * lam * layer.params[n]
                layer.grads[n] = reg
                self.grads[n] = reg

    def load(self, pretrained):
        """Copy every parameter whose name is a key of `pretrained` into its layer."""
        for layer in self.layers:
            if not hasattr(layer, "params"):
                continue
            for n, v in layer.params.items():
                if n in pretrained.keys():
                    layer.params[n] = pretrained[n].copy()
                    print("Loading Params: {} Shape: {}".format(n, layer.params[n].shape))


class flatten(object):
    """Reshapes (N, d1, ..., dk) to (N, d1 * ... * dk) in C order."""

    def __init__(self, name="flatten"):
        self.name = name
        self.params = {}
        self.grads = {}
        self.meta = None

    def forward(self, feat):
        output = feat.reshape(feat.shape[0], -1)
        # kept for backward: the input, for its shape
        self.meta = feat
        return output

    def backward(self, dprev):
        feat = self.meta
        if feat is None:
            raise ValueError("No forward function called before for this module!")
        dfeat = dprev.reshape(feat.shape)
        self.meta = None
        return dfeat


class fc(object):
    """Fully connected layer: x @ W + b."""

    def __init__(self, input_dim, output_dim, init_scale=0.002, name="fc"):
        self.name = name
        self.w_name = name + "_w"
        self.b_name = name + "_b"
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.params = {}
        self.grads = {}
        self.params[self.w_name] = init_scale * np.random.randn(input_dim, output_dim)
        self.params[self.b_name] = np.zeros(output_dim)
        self.grads[self.w_name] = None
        self.grads[self.b_name] = None
        self.meta = None

    def forward(self, feat):
        assert len(feat.shape) == 2 and feat.shape[-1] == self.input_dim, \
            "But got {} and {}".format(feat.shape, self.input_dim)
        output = feat.dot(self.params[self.w_name]) + self.params[self.b_name]
        # kept for backward: the input
        self.meta = feat
        return output

    def backward(self, dprev):
        feat = self.meta
        if feat is None:
            raise ValueError("No forward function called before for this module!")
        assert len(feat.shape) == 2 and feat.shape[-1] == self.input_dim, \
            "But got {} and {}".format(feat.shape, self.input_dim)
        assert len(dprev.shape) == 2 and dprev.shape[-1] == self.output_dim, \
            "But got {} and {}".format(dprev.shape, self.output_dim)
        dfeat = dprev.dot(self.params[self.w_name].T)
        self.grads[self.w_name] = feat.T.dot(dprev)
        self.grads[self.b_name] = dprev.sum(axis=0)
        self.meta = None
        return dfeat


class gelu(object):
    """GELU with the tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""

    def __init__(self, name="gelu"):
        self.name = name
        self.params = {}
        self.grads = {}
        self.meta = None

    def forward(self, feat):
        # BEGIN SOLUTION
        # np.sqrt(2.0 / np.pi) is a NumPy float64 scalar, which would make a float32 network's
        # activations float64; the same number as a Python float keeps feat's dtype.
        inner = float(np.sqrt(2.0 / np.pi)) * (feat + 0.044715 * feat ** 3)
        # HANDOUT: inner = np.sqrt(2.0 / np.pi) * (feat + 0.044715 * feat ** 3)
        # END SOLUTION
        output = 0.5 * feat * (1.0 + np.tanh(inner))
        # kept for backward: the input
        self.meta = feat
        return output

    def backward(self, dprev):
        feat = self.meta
        if feat is None:
            raise ValueError("No forward function called before for this module!")
        # The derivative of the same approximation, so that gradient checks agree with forward.
        # BEGIN SOLUTION
        # As in forward: the constant as a Python float, so that dfeat keeps the dtype of dprev and feat.
        tanh = np.tanh(float(np.sqrt(2.0 / np.pi)) * (feat + 0.044715 * feat ** 3))
        slope = float(np.sqrt(2.0 / np.pi)) * (1.0 + 3 * 0.044715 * feat ** 2)
        # HANDOUT: tanh = np.tanh(np.sqrt(2.0 / np.pi) * (feat + 0.044715 * feat ** 3))
        # HANDOUT: slope = np.sqrt(2.0 / np.pi) * (1.0 + 3 * 0.044715 * feat ** 2)
        # END SOLUTION
        dfeat = dprev * (0.5 * (1.0 + tanh) + 0.5 * feat * (1.0 - tanh ** 2) * slope)
        self.meta = None
        return dfeat


class dropout(object):
    """Inverted dropout; keep_prob == 0 or 1 means no dropout (the notebook says 1)."""

    def __init__(self, keep_prob, seed=None, name="dropout"):
        self.name = name
        self.params = {}
        self.grads = {}
        self.keep_prob = keep_prob
        self.meta = None
        self.kept = None
        self.is_training = False
        self.rng = np.random.RandomState(seed)
        assert keep_prob >= 0 and keep_prob <= 1, "Keep Prob = {} is not within [0, 1]".format(keep_prob)

    def forward(self, feat, is_training=True, seed=None):
        if seed is not None:
            self.rng = np.random.RandomState(seed)
        kept = None
        output = feat
        if is_training and 0 < self.keep_prob:
            kept = self.rng.rand(*feat.shape) < self.keep_prob
            output = feat * kept / self.keep_prob
        # kept for backward: the mask and whether it was applied
        self.kept = kept
        self.is_training = is_training
        self.meta = feat
        return output

    def backward(self, dprev):
        feat = self.meta
        if feat is None:
            raise ValueError("No forward function called before for this module!")
        if self.is_training and 0 < self.keep_prob:
            dfeat = dprev * self.kept / self.keep_prob
        else:
            dfeat = dprev
        self.is_training = False
        self.meta = None
        return dfeat


class cross_entropy(object):
    """Softmax cross-entropy on scores; backward gives the gradient w.r.t. the scores."""

    def __init__(self, size_average=True):
        self.size_average = size_average
        self.logit = None
        self.label = None

    def forward(self, feat, label):
        logit = softmax(feat)
        n = feat.shape[0]
        picked = logit[np.arange(n), label]
        loss = -np.sum(np.log(picked))
        if self.size_average:
            loss = loss / n
        self.logit = logit
        self.label = label
        return loss

    def backward(self):
        logit = self.logit
        label = self.label
        if logit is None:
            raise ValueError("No forward function called before for this module!")
        n = logit.shape[0]
        dlogit = logit.copy()
        dlogit[np.arange(n), label] -= 1.0
        if self.size_average:
            dlogit = dlogit / n
        self.logit = None
        self.label = None
        return dlogit


def softmax(feat):
    """Softmax over the last axis, shifted by the max for numerical stability."""
    shifted = feat - np.max(feat, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def reset_seed(seed):
    """Seed NumPy's and Python's generators, so that two runs compared side by side start alike."""
    import random
    np.random.seed(seed)
    random.seed(seed)
