from __future__ import absolute_import, division, print_function

from lib.mlp.layer_utils import *
from lib.optim import *


class DataLoader(object):
    """Hands out batches: the first pass in file order, each later pass reshuffled."""

    def __init__(self, data, labels, batch_size):
        self.data = data
        self.labels = labels
        self.batch_size = batch_size
        self.indices = np.asarray(range(data.shape[0]))

    def _reset(self):
        self.indices = np.asarray(range(self.data.shape[0]))

    def _shuffle(self):
        np.random.shuffle(self.indices)

    def get_batch(self):
        if len(self.indices) < self.batch_size:
            self._reset()
            self._shuffle()
        indices_curr = self.indices[0:self.batch_size]
        data_batch = self.data[indices_curr]
        labels_batch = self.labels[indices_curr]
        self.indices = np.delete(self.indices, range(self.batch_size))
        return data_batch, labels_batch


def compute_acc(model, data, labels, num_samples=None, batch_size=100):
    """Accuracy of model on (data, labels), optionally on a random subsample."""
    N = data.shape[0]
    if num_samples is not None and N > num_samples:
        indices = np.random.choice(N, num_samples)
        N = num_samples
        data = data[indices]
        labels = labels[indices]

    num_batches = N // batch_size
    if N % batch_size != 0:
        num_batches += 1
    preds = []
    for i in range(num_batches):
        start = i * batch_size
        end = (i + 1) * batch_size
        output = model.forward(data[start:end], False)
        scores = softmax(output)
        pred = np.argmax(scores, axis=1)
        preds.append(pred)
    preds = np.hstack(preds)
    accuracy = np.mean(preds == labels)
    return accuracy


# Training accuracy is measured on this many random training images per epoch (the
# full 40,000 would cost a fifth of the training time); validation always uses all.
TRAIN_ACC_SAMPLES = 10000


def train_net(data, model, loss_func, optimizer, batch_size, max_epochs,
              lr_decay=1.0, lr_decay_every=1000, show_every=10, verbose=False,
              regularization="none", reg_lambda=0.0):
    """Train with minibatches; return (opt_params, loss_hist, train_acc_hist, val_acc_hist).

    opt_params is a copy of the parameters at the best validation accuracy. `regularization`
    ("none", "l1", "l2") and `reg_lambda` are passed to the model's backward. The iteration
    line shows the mean of the last `show_every` losses, which is steadier than one batch's.
    """
    data_train, labels_train = data["data_train"]
    data_val, labels_val = data["data_val"]
    dataloader = DataLoader(data_train, labels_train, batch_size)
    opt_val_acc = 0.0
    opt_params = None
    loss_hist = []
    train_acc_hist = []
    val_acc_hist = []

    iters_per_epoch = int(max(data_train.shape[0] / batch_size, 1))
    max_iters = int(iters_per_epoch * max_epochs)

    for epoch in range(max_epochs):
        iter_start = epoch * iters_per_epoch
        iter_end = (epoch + 1) * iters_per_epoch

        if epoch % lr_decay_every == 0 and epoch > 0:
            optimizer.lr = optimizer.lr * lr_decay
            print("Decaying learning rate of the optimizer to {}".format(optimizer.lr))

        for iter in range(iter_start, iter_end):
            data_batch, labels_batch = dataloader.get_batch()
            output = model.forward(data_batch)
            loss = loss_func.forward(output, labels_batch)
            model.backward(loss_func.backward(), regularization=regularization, reg_lambda=reg_lambda)
            optimizer.step()
            loss_hist.append(loss)

            if verbose and iter % show_every == 0:
                last_losses = loss_hist[-show_every:]
                print("(Iteration {} / {}) Average loss: {}".format(
                    iter + 1, max_iters, sum(last_losses) / len(last_losses)))

        train_acc = compute_acc(model, data_train, labels_train, num_samples=TRAIN_ACC_SAMPLES)
        val_acc = compute_acc(model, data_val, labels_val)
        train_acc_hist.append(train_acc)
        val_acc_hist.append(val_acc)

        if val_acc > opt_val_acc:
            model.net.gather_params()
            opt_val_acc = val_acc
            opt_params = {name: value.copy() for name, value in model.net.params.items()}

        if verbose:
            print("(Epoch {} / {}) Training Accuracy: {}, Validation Accuracy: {}".format(
                epoch + 1, max_epochs, train_acc, val_acc))

    return opt_params, loss_hist, train_acc_hist, val_acc_hist
