"""A correct student submission written with loops, as text to append to a copy of the reference.

Appended to `lib/cnn/layer_utils.py`, it replaces the reference's vectorised layers by loops
over positions (a typical first attempt) that keep the padded image in `meta` and return db
shaped (1, F). The tests grade it as a tolerated variant; `make bench` times its grading.
"""

LOOP_LAYERS = '''
def _loop_conv_forward(self, img):
    """A correct convolution written with loops; keeps the padded image in meta."""
    n, h, w, c = img.shape
    k, s, p, f = self.kernel_size, self.stride, self.padding, self.number_filters
    _, out_h, out_w, _ = self.get_output_size(img.shape)
    padded = np.pad(img, ((0, 0), (p, p), (p, p), (0, 0)))
    out = np.zeros((n, out_h, out_w, f))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, i * s:i * s + k, j * s:j * s + k, :]
            for q in range(f):
                out[:, i, j, q] = np.sum(patch * self.params[self.w_name][:, :, :, q], axis=(1, 2, 3))
    self.meta = padded
    return out + self.params[self.b_name]


def _loop_conv_backward(self, dprev):
    if self.meta is None:
        raise ValueError("No forward function called before for this module!")
    padded = self.meta
    k, s, p = self.kernel_size, self.stride, self.padding
    w = self.params[self.w_name]
    dpadded, dw = np.zeros_like(padded, dtype=float), np.zeros_like(w)
    for i in range(dprev.shape[1]):
        for j in range(dprev.shape[2]):
            patch = padded[:, i * s:i * s + k, j * s:j * s + k, :]
            for q in range(w.shape[3]):
                dw[:, :, :, q] += np.einsum("nuvc,n->uvc", patch, dprev[:, i, j, q])
                dpadded[:, i * s:i * s + k, j * s:j * s + k, :] += \
w[None, :, :, :, q] * dprev[:, i, j, q][:, None, None, None]
    self.grads[self.w_name] = dw
    self.grads[self.b_name] = dprev.sum(axis=(0, 1, 2)).reshape(1, -1)  # shaped (1, F): tolerated
    self.meta = None
    return dpadded[:, p:padded.shape[1] - p, p:padded.shape[2] - p, :]


def _loop_pool_forward(self, img):
    n, h, w, c = img.shape
    size, s = self.pool_size, self.stride
    out = np.zeros((n, (h - size) // s + 1, (w - size) // s + 1, c))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j, :] = img[:, i * s:i * s + size, j * s:j * s + size, :].max(axis=(1, 2))
    self.meta = img
    return out


def _loop_pool_backward(self, dprev):
    img = self.meta
    dimg = np.zeros_like(img)
    size, s = self.pool_size, self.stride
    for b in range(dprev.shape[0]):
        for i in range(dprev.shape[1]):
            for j in range(dprev.shape[2]):
                for c in range(dprev.shape[3]):
                    window = img[b, i * s:i * s + size, j * s:j * s + size, c]
                    u, v = np.unravel_index(np.argmax(window), window.shape)
                    dimg[b, i * s + u, j * s + v, c] += dprev[b, i, j, c]
    return dimg


ConvLayer2D.forward = _loop_conv_forward
ConvLayer2D.backward = _loop_conv_backward
MaxPoolingLayer.forward = _loop_pool_forward
MaxPoolingLayer.backward = _loop_pool_backward
'''
