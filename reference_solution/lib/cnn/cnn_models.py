from __future__ import absolute_import, division, print_function

from lib.mlp.fully_conn import *
from lib.mlp.layer_utils import *
from lib.cnn.layer_utils import *

# BEGIN SOLUTION
def _in_dtype(dtype, *layers):
    """The layers, every parameter converted to `dtype`: the handout's layers draw float64 weights
    and biases whatever the network declares, and each layer computes in its parameters' dtype, so
    a float32 network trains in float32 (the draws are the same, rounded)."""
    for converted in layers:
        for key, value in converted.params.items():
            converted.params[key] = np.asarray(value, dtype=dtype)
    return layers


# HANDOUT:
# END SOLUTION
class TestCNN(Module):
    def __init__(self, dtype=np.float32, seed=None):
        self.net = sequential(
            ########## TODO: ##########
            # BEGIN SOLUTION
            # Each layer's parameters in the network's dtype (see _in_dtype above).
            *_in_dtype(dtype,
            ConvLayer2D(3, 3, 3, stride=1, padding=0, init_scale=0.02, name="conv"),
            MaxPoolingLayer(2, 2, name="pool"),
            flatten(name="flatten"),
            fc(27, 5, init_scale=0.02, name="fc"),
            ),
            # HANDOUT: # your layers here
            # END SOLUTION
            ########### END ###########
        )


class SmallConvolutionalNetwork(Module):
    def __init__(self, keep_prob=0, dtype=np.float32, seed=None):
        self.net = sequential(
            ########## TODO: ##########
            # BEGIN SOLUTION
            # Each layer's parameters in the network's dtype (see _in_dtype above).
            *_in_dtype(dtype,
            # 32x32x3 -> 32x32x16: small filters at full resolution find strokes and edges.
            ConvLayer2D(3, 3, 16, stride=1, padding=1, init_scale=0.27, name="conv1"),
            leaky_relu(name="relu1"),
            # -> 15x15x32: the stride halves the resolution instead of a second pooling.
            ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),
            leaky_relu(name="relu2"),
            # -> 7x7x32 = 1568 features.
            MaxPoolingLayer(2, 2, name="pool1"),
            flatten(name="flatten"),
            fc(1568, 100, init_scale=0.036, name="fc1"),
            leaky_relu(name="relu3"),
            fc(100, 10, init_scale=0.14, name="fc2"),
            ),
            # HANDOUT: # your layers here
            # END SOLUTION
            ########### END ###########
        )
