"""TestCNN's layers' configuration against the interface's, from plain numbers and the shapes seen.

The worker reports each layer's settings (its attributes, as numbers or the names of their types) and
the shape each layer returned on a probe batch; both are claims of code that student code can rewrite,
so they are only read as plain integers here, and set beside each other: a setting other than the
interface's is named, with the shapes where they are what that setting gives. Kept apart from the
check itself (a pytest suite the grading run collects) so that it can be tested on its own.
"""

from __future__ import annotations

from autograder.fixtures import TEST_CNN_CONFIG, TEST_CNN_PROBE, TEST_CNN_SHAPES

SETTING_WORDS = {"kernel_size": "kernel size", "stride": "stride", "padding": "padding", "pool_size": "pool size"}


def plain_number(value) -> int | None:
    """A configuration value as the worker reported it, if it is a plain integer in a sane range."""
    return value if type(value) is int and 0 <= value <= 10_000 else None


def _out_shape(kind: str, setting: dict[str, int], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """What a conv or pool layer with `setting` returns for an input `shape` (NHWC), or None if nothing."""
    n, h, w, c = shape
    if kind == "conv":
        k, s, p = setting["kernel_size"], setting["stride"], setting["padding"]
        filters = TEST_CNN_SHAPES["conv_w"][3]
        size = [(h + 2 * p - k) // s + 1 if s else 0, (w + 2 * p - k) // s + 1 if s else 0]
        return (n, *size, filters) if min(size) > 0 else None
    k, s = setting["pool_size"], setting["stride"]
    size = [(h - k) // s + 1 if s else 0, (w - k) // s + 1 if s else 0]
    return (n, *size, c) if min(size) > 0 else None


def _image(shape: tuple[int, ...] | None) -> str:
    return "nothing" if shape is None else "x".join(str(size) for size in shape[1:])


def configuration_problems(layers: list[dict], shapes: list[tuple[int, ...] | None]) -> list[str]:
    """What in the conv and pool layers' configuration is not the interface's TestCNN, in words ([] if all is)."""
    problems = []
    given = TEST_CNN_PROBE  # the layer's input on the probe, as the interface's TestCNN has it
    for index, kind in ((0, "conv"), (1, "pool")):
        wanted = TEST_CNN_CONFIG[kind]
        raw = layers[index].get("config")
        values = {name: plain_number(raw.get(name)) if isinstance(raw, dict) else None for name in wanted}
        seen = shapes[index] if index < len(shapes) else None
        seen_input = (shapes[index - 1] if index - 1 < len(shapes) else None) if index else TEST_CNN_PROBE
        right = _out_shape(kind, wanted, given)
        if all(value is not None for value in values.values()):
            wrong = [name for name in wanted if values[name] != wanted[name]]
            if wrong:
                text = " and ".join(f"{SETTING_WORDS[name]} {values[name]} (TestCNN's: {wanted[name]})"
                                    for name in wrong)
                shown = seen is not None and seen_input is not None and len(seen_input) == 4 and \
                    seen == _out_shape(kind, values, seen_input)
                problems.append(f"its {kind} layer has {text}" + (
                    f": it turns {_image(seen_input)} into {_image(seen)}, where TestCNN's turns {_image(given)} "
                    f"into {_image(right)}" if shown else ""))
        elif seen is None:
            problems.append(f"its {kind} layer's {', '.join(wanted)} are not plain numbers (the interface's "
                            "layer keeps them as such), and its output on a probe batch could not be seen")
        elif seen != right or seen_input != given:
            problems.append(f"its {kind} layer's {', '.join(wanted)} are not plain numbers, and it turns "
                            f"{_image(seen_input)} into {_image(seen)}, where TestCNN's turns {_image(given)} into "
                            f"{_image(right)}")
        given = right if right is not None else given
    return problems


