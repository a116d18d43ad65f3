"""The worker: a child process that imports a student's `lib/` and answers requests.

It runs in a scratch copy of the submission, confined (confinement.py: its own mount, PID and
network namespace and user id where the machine allows), with resource limits and a scrubbed
environment; parent.py is the grader's side (`WorkerProcess`). Besides the layers it answers
`describe` with probe.py, which describes the student's network by what its layers hold. It
receives inputs only: expected values never come here. Answers are plain JSON and .npy arrays
(protocol.py); the parent checks every one of them itself, so nothing here needs to be trusted.

Each request calls the student's code the way the notebook's check cells do, with one rule
(invariant 8, copy at the boundary): every array handed to student code is a fresh copy, and
every value it returns is captured (copied, described) the moment it returns, before any other
student code runs. Student code mutates in place (an in-place softmax shifts the scores it was
given; a layer reuses its output buffer), and must change neither our inputs nor our verdict.
Ops therefore reach student code only through `Worker._run` (handles), `Worker._call` and
`Worker._read` (values) and `Worker._store` (into a student's dict), and may only reply with
`Returned` values, which `_answer` enforces.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import traceback
import types
from typing import Any, Callable

import numpy as np

from autograder.sandbox import probe, protocol

#: The notebook's import list, in its order, with the 2022 handout's loader: the default when the parent
#: names none. The parent names the modules of the submission's own edition at start-up (`op_start`'s
#: "modules": the grader decides the edition, this side only imports what it is told, within
#: `_MODULE_NAME`). A failure in one module is reported only for the requests that need it (a broken
#: Problem-1 loader must not cost the conv items).
LIB_MODULES = ["lib.mlp.fully_conn", "lib.mlp.layer_utils", "lib.mlp.datasets", "lib.mlp.train",
               "lib.cnn.layer_utils", "lib.cnn.cnn_models", "lib.grad_check", "lib.optim"]
#: A module the parent may ask for: inside the submission's lib/ package, plain dotted names only.
_MODULE_NAME = re.compile(r"lib(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,4}")
_MAX_MODULES = 32

#: NumPy names removed in 1.24 / 2.0 that course code of older terms still uses.
_NUMPY_ALIASES = {
    "int": int, "float": float, "bool": bool, "object": object, "complex": complex, "str": str,
    "long": int, "unicode": str, "float_": np.float64, "complex_": np.complex128, "int0": np.intp,
    "NaN": np.nan, "NAN": np.nan, "Inf": np.inf, "Infinity": np.inf, "PINF": np.inf, "NINF": -np.inf,
    "infty": np.inf, "product": np.prod, "cumproduct": np.cumprod, "alltrue": np.all, "sometrue": np.any,
    "round_": np.round, "asscalar": lambda a: np.asarray(a).item(),
}
_NUMPY_LIB_MODULES = ["arraypad", "arraysetops", "function_base", "histograms", "index_tricks", "nanfunctions",
                      "npyio", "polynomial", "shape_base", "twodim_base", "type_check", "ufunclike", "utils"]
#: Third-party modules some submissions import but never use in these items; when one is not
#: installed here, importing it gives a stand-in that fails only when it is actually used.
_OPTIONAL_MODULES = {"cv2", "tqdm", "skimage", "sklearn", "seaborn", "pandas", "imageio", "PIL", "torch",
                     "tensorflow", "IPython", "google"}


def install_numpy_shims() -> None:
    """Make removed NumPy names and old module paths resolve again."""
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)
    for name in _NUMPY_LIB_MODULES:
        old, new = f"numpy.lib.{name}", f"numpy.lib._{name}_impl"
        if old not in sys.modules:
            try:
                importlib.import_module(old)
            except ImportError:
                try:
                    sys.modules[old] = importlib.import_module(new)
                except ImportError:
                    pass


def start_modules(args: Any) -> list[str]:
    """The modules `op_start` imports: the list the parent sent (its edition's), else LIB_MODULES.
    A list that is not plain names under lib/ is the parent's bug, refused rather than imported."""
    modules = args.get("modules") if isinstance(args, dict) else None
    if modules is None:
        return list(LIB_MODULES)
    if not isinstance(modules, list) or len(modules) > _MAX_MODULES or not all(
            isinstance(name, str) and _MODULE_NAME.fullmatch(name) for name in modules):
        raise _HarnessBug(f"start: 'modules' must be at most {_MAX_MODULES} module names under lib, "
                          f"not {str(modules)[:200]}")
    return list(modules)


class _Unavailable(types.ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise ImportError(f"module {self.__name__!r} is not installed in the grading environment "
                          f"(your code used {self.__name__}.{attribute})")


class _OptionalModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: only reached when no real module of that name exists."""

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in _OPTIONAL_MODULES:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Unavailable(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        return None


def describe_error(exc: BaseException, root: str) -> dict[str, Any]:
    """The exception with its traceback trimmed to the student's own files."""
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(root + os.sep):
            where = os.path.relpath(frame.filename, root)
            frames.append(f'{where}, line {frame.lineno}, in {frame.name}: {(frame.line or "").strip()}')
    try:
        message = str(exc)[:2000]
    except Exception:  # noqa: BLE001 - a student's exception may fail to print itself
        message = "(the exception's message could not be printed)"
    return {"type": type(exc).__name__, "message": message, "traceback": frames[-8:]}


def encode(value: Any) -> tuple[dict[str, Any], np.ndarray | None]:
    """Describe a returned value for the parent: plain arrays travel (as our own copy), anything
    else is described at once, so that nothing the student's code does later can change it."""
    if type(value) is np.ndarray and value.dtype.kind in "biufc":
        return {"kind": "array"}, value.copy()
    if value is None:
        return {"kind": "none"}, None
    if isinstance(value, np.ndarray):
        kind = "array subclass" if type(value) is not np.ndarray else f"array of dtype {value.dtype}"
        return {"kind": "other", "type": f"{type(value).__module__}.{type(value).__qualname__}", "note": kind}, None
    if isinstance(value, (bool, int, float, np.generic)) and not isinstance(value, (str, bytes)):
        try:
            return {"kind": "scalar", "value": float(value), "type": type(value).__name__}, None
        except (TypeError, ValueError):
            pass
    if type(value) in (list, tuple):
        items = []
        for item in list(value)[:64]:
            if isinstance(item, (bool, int, float, np.integer, np.floating)) and not isinstance(item, bool):
                number = float(item)
                items.append(int(number) if number.is_integer() and isinstance(item, (int, np.integer)) else number)
            elif item is None:
                items.append(None)
            else:
                items.append({"type": type(item).__name__})
        return {"kind": "sequence", "type": type(value).__name__, "items": items, "length": len(value)}, None
    return {"kind": "other", "type": f"{type(value).__module__}.{type(value).__qualname__}"}, None


class Returned:
    """What a call into student code returned, captured the moment it returned.

    `description` and `array` are what the parent will judge: the array is our private copy,
    read-only so that handing it on without a fresh copy fails loudly. `original` is the object
    itself, kept only to hand a non-array result on to more student code.
    """

    __slots__ = ("description", "array", "original")

    def __init__(self, value: Any):
        self.description, self.array = encode(value)
        if self.array is not None:
            self.array.setflags(write=False)
        self.original = None if self.array is not None else value

    @property
    def is_none(self) -> bool:
        return self.description.get("kind") == "none"

    def handed_on(self) -> Any:
        """What the next student call receives (fresh() copies it): our copy, or the object itself."""
        return self.array if self.array is not None else self.original

    def numbers(self, what: str) -> np.ndarray:
        """The captured array of real numbers, or TypeError (reported as the student's) saying what it was."""
        if self.array is None or self.array.dtype.kind not in "biuf":
            kind = self.description.get("type") or self.description.get("kind")
            raise TypeError(f"{what} returned {kind}, not an array of real numbers")
        return self.array


def fresh(value: Any) -> Any:
    """What we hand to student code: arrays copied (writeable, our original untouched), our lists,
    tuples and dicts rebuilt around copies, a captured value's copy copied again; the rest as is.

    Never pass a student's own container here (it would be replaced by a copy): to store into a
    student's dict use `Worker._store`.
    """
    if isinstance(value, Returned):
        value = value.handed_on()
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True, subok=False)
    if type(value) in (list, tuple):
        return type(value)(fresh(item) for item in value)
    if type(value) is dict:
        return {key: fresh(item) for key, item in value.items()}
    return value


class _HarnessBug(Exception):
    """A mistake of ours in an op, reported to the parent as a harness fault, never as the student's."""


class Worker:
    """Holds the imported student modules and dispatches requests to the `op_*` methods.

    Ops call student code only through the helpers under "the boundary"; see the module's docstring.
    """

    def __init__(self, root: str):
        self.root = root
        self.modules: dict[str, types.ModuleType] = {}
        self.import_errors: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ the boundary
    @staticmethod
    def _run(function: Callable, *args: Any, **kwargs: Any) -> Any:
        """Call student code with fresh copies of our arguments; the result is a handle (a layer,
        a model), never a value to judge or hand on: for those use `_call`."""
        return function(*[fresh(arg) for arg in args], **{key: fresh(arg) for key, arg in kwargs.items()})

    @classmethod
    def _call(cls, function: Callable, *args: Any, **kwargs: Any) -> Returned:
        """Call student code with fresh copies of our arguments and capture its result at once."""
        return Returned(cls._run(function, *args, **kwargs))

    @staticmethod
    def _read(getter: Callable[[], Any]) -> Returned:
        """Read a value out of student objects (`lambda: layer.grads[name]`) and capture it at once."""
        return Returned(getter())

    @classmethod
    def _store(cls, mapping: Any, key: str, value: Any) -> None:
        """`mapping[key] = value` into a student's dict (params), with a fresh copy of our value."""
        cls._run(lambda copied: mapping.__setitem__(key, copied), value)

    # ------------------------------------------------------------------ imports
    def op_start(self, args, arrays):
        for name in start_modules(args):
            try:
                self.modules[name] = importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 - SystemExit at import is the student's too
                self.import_errors[name] = describe_error(exc, self.root)
        return {"import_errors": self.import_errors}, {}

    def _need(self, module: str, name: str):
        if module in self.import_errors:
            error = dict(self.import_errors[module])
            error["message"] = f"importing {module} failed: {error['message']}"
            raise _StudentImportError(error)
        if module not in self.modules:
            raise _StudentImportError({"type": "ImportError", "message": f"{module} was not imported",
                                       "traceback": []})
        try:
            return getattr(self.modules[module], name)
        except AttributeError:
            raise _StudentImportError({"type": "AttributeError", "message": f"{module} has no {name}",
                                       "traceback": []}) from None

    # ------------------------------------------------------------------ layers
    def _conv(self, args, name=None):
        conv_class = self._need("lib.cnn.layer_utils", "ConvLayer2D")
        extra = {"name": name} if name else {}
        return self._run(conv_class, args["input_channels"], args["kernel_size"], args["number_filters"],
                         stride=args["stride"], padding=args["padding"], **extra)

    def _pool(self, args):
        pool_class = self._need("lib.cnn.layer_utils", "MaxPoolingLayer")
        return self._run(pool_class, pool_size=args["pool_size"], stride=args["stride"], name="maxpool_test")

    def _conv_with_params(self, args, arrays):
        layer = self._conv(args, name="conv_test")
        self._store(layer.params, layer.w_name, arrays["w"])
        self._store(layer.params, layer.b_name, arrays["b"])
        return layer

    def op_output_size(self, args, arrays):
        layer = self._conv(args)
        return {"result": "size"}, {"size": self._call(layer.get_output_size, tuple(args["input_size"]))}

    def op_conv_forward(self, args, arrays):
        layer = self._conv_with_params(args, arrays)
        return {}, {"out": self._call(layer.forward, arrays["x"])}

    def op_conv_backward(self, args, arrays):
        layer = self._conv_with_params(args, arrays)
        out = self._call(layer.forward, arrays["x"])
        watch = _ForwardWatch(layer, {"x": arrays["x"]},
                              {"w": (layer.w_name, arrays["w"]), "b": (layer.b_name, arrays["b"])})
        try:
            with watch:
                dx = self._call(layer.backward, arrays["dout"])
        except Exception:
            if out.is_none:  # the skeleton's forward: backward cannot be judged on its own
                return {"forward_returned_none": True}, {}
            raise
        return {"perturbed_forwards": watch.counts}, {
            "dx": dx, "dw": self._read(lambda: layer.grads[layer.w_name]),
            "db": self._read(lambda: layer.grads[layer.b_name])}

    def op_pool_forward(self, args, arrays):
        return {}, {"out": self._call(self._pool(args).forward, arrays["x"])}

    def op_pool_backward(self, args, arrays):
        layer = self._pool(args)
        out = self._call(layer.forward, arrays["x"])
        watch = _ForwardWatch(layer, {"x": arrays["x"]}, {})
        try:
            with watch:
                dx = self._call(layer.backward, arrays["dout"])
        except Exception:
            if out.is_none:
                return {"forward_returned_none": True}, {}
            raise
        if out.is_none and (dx.array is None or dx.array.dtype.kind not in "biuf"):
            return {"forward_returned_none": True}, {}  # the skeleton: zeros_like(None) of an unset meta
        return {"perturbed_forwards": watch.counts}, {"dx": dx}

    # ------------------------------------------------------------------ TestCNN
    def _layer_kind(self, layer) -> str:
        kinds = [("lib.cnn.layer_utils", "ConvLayer2D", "conv"), ("lib.cnn.layer_utils", "MaxPoolingLayer", "pool"),
                 ("lib.mlp.layer_utils", "flatten", "flatten"), ("lib.mlp.layer_utils", "fc", "fc"),
                 ("lib.mlp.layer_utils", "leaky_relu", "activation"), ("lib.mlp.layer_utils", "dropout", "dropout")]
        for module, name, kind in kinds:
            cls = getattr(self.modules.get(module), name, None)
            if isinstance(cls, type) and isinstance(layer, cls):
                return kind
        return "other"

    def _test_cnn(self, seed: int):
        model_class = self._need("lib.cnn.cnn_models", "TestCNN")
        np.random.seed(seed)
        model = self._run(model_class)
        layers = list(model.net.layers)
        described = []
        for layer in layers:
            params = getattr(layer, "params", None) or {}
            kind = self._layer_kind(layer)
            described.append({
                "class": type(layer).__name__, "kind": kind, "name": str(getattr(layer, "name", "")),
                "params": {str(k): list(np.shape(v)) for k, v in params.items()},
                "config": {attribute: _plain_number(getattr(layer, attribute, None))
                           for attribute in _CONFIG.get(kind, ())},
            })
        roles = {}
        for role, kind in (("conv", "conv"), ("fc", "fc")):
            layer = next((each for each in layers if self._layer_kind(each) == kind), None)
            if layer is not None:
                roles[role] = (layer, getattr(layer, "w_name", None), getattr(layer, "b_name", None))
        return model, described, roles

    def op_test_cnn_layers(self, args, arrays):
        _, described, roles = self._test_cnn(args["init_seed"])
        found = {}
        for role, (layer, w_name, b_name) in roles.items():
            found[f"{role}_w"] = self._read(lambda: layer.params.get(w_name))
            found[f"{role}_b"] = self._read(lambda: layer.params.get(b_name))
        return {"layers": described}, found

    def op_test_cnn_probe(self, args, arrays):
        """The shape each layer of TestCNN returns, in order, on a probe batch of the notebook's input
        shape: lists of ints, up to the first layer that returned no array (a separate request, so that a
        slow or broken forward costs the layers' description nothing). The parent checks the layers'
        configuration against these shapes."""
        model, _, _ = self._test_cnn(args["init_seed"])
        value = np.linspace(-1.0, 1.0, int(np.prod(args["probe_shape"]))).reshape(args["probe_shape"])
        shapes = []
        for layer in list(model.net.layers):
            value = self._call(layer.forward, value).handed_on()
            if type(value) is not np.ndarray:
                break
            shapes.append([int(size) for size in value.shape])
        return {"probe_shapes": shapes}, {}

    def op_test_cnn_run(self, args, arrays):
        model, _, roles = self._test_cnn(args["init_seed"])
        keys = {}
        for role, (_, w_name, b_name) in roles.items():
            keys[f"{role}_w"], keys[f"{role}_b"] = w_name, b_name
        missing = [role for role in ("conv_w", "conv_b", "fc_w", "fc_b") if role not in keys]
        if missing:
            return {"missing_roles": missing}, {}
        for role, key in keys.items():
            self._run(model.net.assign, key, arrays[role])
        loss_class = self._need("lib.mlp.layer_utils", "cross_entropy")
        loss_func = self._run(loss_class)
        # As the notebook does, but each value captured as it comes back: the loss's softmax
        # may shift the scores in place, the model may reuse their buffer in backward.
        scores = self._call(model.forward, arrays["feats"])
        found = {"scores": scores}
        try:  # the scores are judged on their own even when the loss or backward then raises
            found["loss"] = self._call(loss_func.forward, scores, arrays["labels"])
            self._run(model.backward, self._call(loss_func.backward))
        except Exception as exc:  # noqa: BLE001 - the student's; reported with the parts it stopped
            return {"later_error": describe_error(exc, self.root)}, found
        for role, (layer, w_name, b_name) in roles.items():
            found[f"d_{role}_w"] = self._read(lambda: layer.grads.get(w_name))
            found[f"d_{role}_b"] = self._read(lambda: layer.grads.get(b_name))
        return {}, found


    # ------------------------------------------------------------------ SmallConvolutionalNetwork
    def _small_cnn(self, args):
        model_class = self._need("lib.cnn.cnn_models", "SmallConvolutionalNetwork")
        np.random.seed(args["seed"])
        return self._run(model_class)

    def op_small_cnn(self, args, arrays):
        """Describe the student's own network by what its layers hold and do (autograder/sandbox/probe.py)."""
        model = self._small_cnn(args)
        header, found = probe.describe_model(model, arrays["probe"], args["limits"], args["tolerance"])
        header["kinds"] = [layer.get("kind") for layer in header["layers"] if layer.get("chain")]
        # probe.py copies what it hands in and what comes back (np.array at every call)
        return header, {name: Returned(value) for name, value in found.items()}

    def op_small_cnn_predict(self, args, arrays):
        """The saved weights put into the student's own network, and its predicted classes for the
        images (labels never come here: the parent compares)."""
        model = self._small_cnn(args)
        images = arrays.pop("images")
        missing, unused = probe.load_weights(model, arrays)
        if missing:
            return {"missing": missing, "unused": unused}, {}
        predictions = probe.predict(model, images, int(args.get("batch", 100)))  # copies in and out
        return {"unused": unused}, {"predictions": Returned(predictions)}


#: The attributes that configure each kind of layer (the interface's names), reported as plain numbers.
_CONFIG = {"conv": ("kernel_size", "stride", "padding"), "pool": ("pool_size", "stride")}


def _plain_number(value: Any) -> Any:
    """An attribute as JSON can carry it: an int (also a NumPy integer or an integral float), else the name
    of its type.
    The parent checks it; this only keeps a student's object from reaching the header."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return {"type": type(value).__name__}


class _ForwardWatch:
    """While backward runs, counts the calls of the layer's forward whose input (or one of whose
    parameters) differs from the given one in exactly one element: what central differences do, two
    calls per element; an analytic backward never does (at most it runs forward again on the same
    input). The parent reads the counts as one piece of evidence of a numerical backward
    (autograder/checks/backward_probe.py); they cannot raise a score, so a forged count gains nothing.

    Both the instance's `forward` (what `self.forward` and a bound method taken inside backward
    reach) and the class's are wrapped, and restored on leaving.
    """

    def __init__(self, layer: Any, inputs: dict[str, np.ndarray], params: dict[str, tuple[str, np.ndarray]]):
        self.layer, self.inputs, self.params = layer, inputs, params
        self.counts = {role: 0 for role in [*inputs, *params]}
        self._restore: list[Callable[[], None]] = []

    @staticmethod
    def _one_off(value: Any, given: np.ndarray) -> bool:
        try:
            array = np.asarray(value)
            return array.shape == given.shape and int(np.count_nonzero(array != given)) == 1
        except Exception:  # noqa: BLE001 - whatever the student passed, it is no evidence
            return False

    def _note(self, args: tuple) -> None:
        try:
            if args and "x" in self.inputs and self._one_off(args[0], self.inputs["x"]):
                self.counts["x"] += 1
            params = self.layer.params
            for role, (key, given) in self.params.items():
                if type(params) is dict and key in params and self._one_off(params[key], given):
                    self.counts[role] += 1
        except Exception:  # noqa: BLE001 - counting never changes what the student's code does
            pass

    def __enter__(self) -> "_ForwardWatch":
        layer, cls = self.layer, type(self.layer)
        try:
            bound = layer.forward
            class_forward = cls.__dict__.get("forward")
        except Exception:  # noqa: BLE001 - no forward to watch: nothing is counted
            return self

        def instance_forward(*args, **kwargs):
            self._note(args)
            return bound(*args, **kwargs)

        try:
            had = "forward" in getattr(layer, "__dict__", {})
            previous = layer.__dict__.get("forward") if had else None
            object.__setattr__(layer, "forward", instance_forward)
            self._restore.append(lambda: object.__setattr__(layer, "forward", previous) if had
                                 else object.__delattr__(layer, "forward"))
        except Exception:  # noqa: BLE001 - a layer with __slots__ or a locked __setattr__
            pass
        if callable(class_forward) and not isinstance(class_forward, (staticmethod, classmethod)):
            def class_forward_watched(this, *args, **kwargs):
                if this is layer:
                    self._note(args)
                return class_forward(this, *args, **kwargs)
            try:
                type.__setattr__(cls, "forward", class_forward_watched)
                self._restore.append(lambda: type.__setattr__(cls, "forward", class_forward))
            except Exception:  # noqa: BLE001 - a class that cannot be changed: the instance's is watched
                pass
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for restore in reversed(self._restore):
            try:
                restore()
            except Exception:  # noqa: BLE001 - the student's layer refused; it is not used again
                pass
        self._restore.clear()


class _StudentImportError(Exception):
    def __init__(self, error: dict[str, Any]):
        super().__init__(error["message"])
        self.error = error


def _answer(result: tuple[dict[str, Any], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An op's result as a reply; every value must have been captured when it was returned."""
    header, values = result
    descriptions, arrays = {}, {}
    for name, value in values.items():
        if not isinstance(value, Returned):
            raise _HarnessBug(f"the op's value {name!r} is a {type(value).__name__}, not captured at the boundary "
                              "(use Worker._call or Worker._read)")
        descriptions[name] = value.description
        if value.array is not None:
            arrays[name] = value.array
    return dict(header, ok=True, values=descriptions), arrays


def serve(request_fd: int, answer_fd: int, root: str) -> None:
    """Answer requests until told to stop or the parent goes away."""
    worker = Worker(root)
    handlers: dict[str, Callable] = {name[3:]: getattr(worker, name) for name in dir(worker) if name.startswith("op_")}
    while True:
        try:
            header, arrays = protocol.receive(request_fd)
        except EOFError:
            return
        op = header.get("op")
        if op == "stop":
            return
        for array in arrays.values():  # ours: a student call gets fresh() copies, never these
            array.setflags(write=False)
        try:
            if op not in handlers:
                raise _HarnessBug(f"there is no op {op!r}")
            reply, out_arrays = _answer(handlers[op](header.get("args", {}), arrays))
        except _StudentImportError as exc:
            reply, out_arrays = {"ok": False, "error": exc.error}, {}
        except _HarnessBug as exc:
            reply, out_arrays = {"ok": False, "harness_fault": str(exc)}, {}
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: all the student's
            reply, out_arrays = {"ok": False, "error": describe_error(exc, root)}, {}
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - a closed or replaced stdout is the student's doing
            pass
        protocol.send(answer_fd, reply, out_arrays)


def main(argv: list[str]) -> None:
    """Entry point: `REQUEST_FD ANSWER_FD ROOT CODE_DIR`, started by parent.py from CODE_DIR, the
    worker's own copy of its modules (worker_code.py), which is taken off the path again here."""
    request_fd, answer_fd = int(argv[0]), int(argv[1])
    root, harness = os.path.realpath(argv[2]), argv[3]
    install_numpy_shims()
    sys.meta_path.append(_OptionalModuleFinder())
    # The submission root first, as in the notebook; the harness's folder off the path.
    sys.path[:] = [root] + [entry for entry in sys.path if entry != harness]
    os.chdir(root)
    serve(request_fd, answer_fd, root)
    os._exit(0)  # skip interpreter teardown: a student's __del__ or atexit must not hang us
