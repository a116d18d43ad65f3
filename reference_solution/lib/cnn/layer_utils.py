from __future__ import absolute_import, division, print_function

import numpy as np

# The handout keeps an identical copy of `sequential` here; importing it keeps a single
# definition while `from lib.cnn.layer_utils import *` still exports the name.
from lib.mlp.layer_utils import sequential


class ConvLayer2D(object):
    """2-D convolution (cross-correlation) on NHWC batches with square kernels."""

    def __init__(self, input_channels, kernel_size, number_filters,
                 stride=1, padding=0, init_scale=.02, name="conv"):

        self.name = name
        self.w_name = name + "_w"
        self.b_name = name + "_b"

        self.input_channels = input_channels
        self.kernel_size = kernel_size
        self.number_filters = number_filters
        self.stride = stride
        self.padding = padding

        self.params = {}
        self.grads = {}
        self.params[self.w_name] = init_scale * np.random.randn(kernel_size, kernel_size,
                                                                input_channels, number_filters)
        self.params[self.b_name] = np.zeros(number_filters)
        self.grads[self.w_name] = None
        self.grads[self.b_name] = None
        self.meta = None

    def get_output_size(self, input_size):
        '''
        :param input_size - 4-D shape of input image tensor (batch_size, in_height, in_width, in_channels)
        :output a 4-D shape of the output after passing through this layer (batch_size, out_height, out_width, out_channels)
        '''
        output_shape = [None, None, None, None]
        #############################################################################
        # TODO: Implement the calculation to find the output size given the         #
        # parameters of this convolutional layer.                                   #
        #############################################################################
        # BEGIN SOLUTION
        batch_size, in_height, in_width, _ = input_size
        k, s, p = self.kernel_size, self.stride, self.padding
        output_shape = [batch_size,
                        (in_height + 2 * p - k) // s + 1,
                        (in_width + 2 * p - k) // s + 1,
                        self.number_filters]
        # END SOLUTION
        #############################################################################
        #                             END OF YOUR CODE                              #
        #############################################################################
        return output_shape

    def forward(self, img):
        output = None
        assert len(img.shape) == 4, "expected batch of images, but received shape {}".format(img.shape)

        output_shape = self.get_output_size(img.shape)
        #############################################################################
        # TODO: Implement the forward pass of a single convolutional layer.       #
        # Store the results in the variable "output" provided above.                #
        #############################################################################
        # BEGIN SOLUTION
        n, out_h, out_w, n_filters = output_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        img_pad = np.pad(img, ((0, 0), (p, p), (p, p), (0, 0)), mode="constant")
        # Every k x k window as one row, ordered (u, v, c) like the rows of W reshaped to
        # (k*k*C, F): a strided view, one copy into `cols`, then one matrix product.
        windows = np.lib.stride_tricks.sliding_window_view(img_pad, (k, k), axis=(1, 2))[:, ::s, ::s]
        # The layer computes in its parameters' dtype (float32 in a float32 network, whatever the
        # input's): the copy into `cols` converts the input.
        dtype = np.result_type(self.params[self.w_name], self.params[self.b_name], np.float32)
        cols = np.empty((n, out_h, out_w, k, k, self.input_channels), dtype=dtype)
        cols[...] = windows.transpose(0, 1, 2, 4, 5, 3)
        cols = cols.reshape(n * out_h * out_w, k * k * self.input_channels)
        w_mat = self.params[self.w_name].reshape(k * k * self.input_channels, n_filters)
        output = (cols @ w_mat + self.params[self.b_name]).reshape(n, out_h, out_w, n_filters)
        # Kept for backward: the input (its shape) and its windows (the input side of dW).
        self.meta = (img, cols)
        # END SOLUTION
        #############################################################################
        #                             END OF YOUR CODE                              #
        #############################################################################
        return output

    def backward(self, dprev):
        img = None
        if self.meta is None:
            raise ValueError("No forward function called before for this module!")
        dimg, self.grads[self.w_name], self.grads[self.b_name] = None, None, None
        #############################################################################
        # TODO: Implement the backward pass of a single convolutional layer.        #
        # Store the computed gradients wrt weights and biases in self.grads with    #
        # corresponding name.                                                       #
        # Store the output gradients in the variable dimg provided above.           #
        #############################################################################
        # BEGIN SOLUTION
        img, cols = self.meta
        n, in_h, in_w, n_channels = img.shape
        _, out_h, out_w, n_filters = dprev.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        dout = dprev.reshape(n * out_h * out_w, n_filters)
        dout = dout.astype(cols.dtype, copy=False)  # in the dtype forward computed in
        w_mat = self.params[self.w_name].reshape(k * k * n_channels, n_filters)
        self.grads[self.w_name] = (cols.T @ dout).reshape(k, k, n_channels, n_filters)
        self.grads[self.b_name] = dout.sum(axis=0)
        # Gradient of every window, laid out channel-first: dcols[u, v, c] is an
        # (n, out_h, out_w) block, so each slice-add below moves whole image rows.
        dcols = (w_mat @ dout.T).reshape(k, k, n_channels, n, out_h, out_w)
        # Send each window's gradient back to the pixels it read; where windows overlap
        # the contributions add. One strided slice per kernel offset (u, v).
        dimg_pad = np.zeros((n_channels, n, in_h + 2 * p, in_w + 2 * p), dtype=dcols.dtype)
        for u in range(k):
            for v in range(k):
                dimg_pad[:, :, u:u + s * out_h:s, v:v + s * out_w:s] += dcols[u, v]
        dimg = np.ascontiguousarray(dimg_pad[:, :, p:p + in_h, p:p + in_w].transpose(1, 2, 3, 0))
        # END SOLUTION
        #############################################################################
        #                             END OF YOUR CODE                              #
        #############################################################################
        self.meta = None
        return dimg


class MaxPoolingLayer(object):
    """Max pooling over pool_size x pool_size windows, per channel, no padding."""

    def __init__(self, pool_size, stride, name):
        self.name = name
        self.pool_size = pool_size
        self.stride = stride
        self.params = {}
        self.grads = {}
        self.meta = None

    def forward(self, img):
        output = None
        assert len(img.shape) == 4, "expected batch of images, but received shape {}".format(img.shape)
        #############################################################################
        # TODO: Implement the forward pass of a single maxpooling layer.            #
        # Store your results in the variable "output" provided above.               #
        #############################################################################
        # BEGIN SOLUTION
        p, s = self.pool_size, self.stride
        windows = np.lib.stride_tricks.sliding_window_view(img, (p, p), axis=(1, 2))[:, ::s, ::s]
        output = windows.max(axis=(4, 5))
        # Kept for backward: the input, where the maxima are found again.
        self.meta = img
        # END SOLUTION
        #############################################################################
        #                             END OF YOUR CODE                              #
        #############################################################################
        return output

    def backward(self, dprev):
        img = self.meta

        dimg = np.zeros_like(img)
        #############################################################################
        # TODO: Implement the backward pass of a single maxpooling layer.           #
        # Store your results in the variable "dimg" initialized above.              #
        #############################################################################
        # BEGIN SOLUTION
        p, s = self.pool_size, self.stride
        n, out_h, out_w, n_channels = dprev.shape
        windows = np.lib.stride_tricks.sliding_window_view(img, (p, p), axis=(1, 2))[:, ::s, ::s]
        winner = windows.reshape(n, out_h, out_w, n_channels, p * p).argmax(axis=-1)
        # Route each upstream gradient to its window's maximum. Overlapping windows
        # (stride < pool size) can share a maximum, so contributions accumulate.
        for u in range(p):
            for v in range(p):
                dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :] += np.where(winner == u * p + v, dprev, 0)
        # END SOLUTION
        #############################################################################
        #                             END OF YOUR CODE                              #
        #############################################################################
        return dimg
