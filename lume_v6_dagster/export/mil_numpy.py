"""Evaluate a saved mlprogram's MIL with NumPy: Core ML parity on machines without Core ML.

Each op's result is cast to the dtype the program declares (fp16 inside, fp32 at the I/O),
so the check sees the same rounding as the FP16 compute the device runs.
"""

from pathlib import Path

import coremltools as ct
import numpy as np
from coremltools.converters.mil.frontend.milproto.load import load as load_milproto
from coremltools.converters.mil.mil import types
from scipy.special import expit


def _slice(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    index = []
    for d in range(x.ndim):
        b = None if begin_mask is not None and begin_mask[d] else int(begin[d])
        e = None if end_mask is not None and end_mask[d] else int(end[d])
        s = 1 if stride is None else int(stride[d])
        index.append(int(begin[d]) if squeeze_mask is not None and squeeze_mask[d] else slice(b, e, s))
    return x[tuple(index)]


def _layer_norm(x, axes, gamma=None, beta=None, epsilon=1e-5):
    axes = tuple(int(a) for a in axes)
    mean = x.mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + epsilon)
    return y * (1 if gamma is None else gamma) + (0 if beta is None else beta)


def _split(x, axis, num_splits=None, split_sizes=None):
    if split_sizes is not None:
        return np.split(x, np.cumsum(split_sizes)[:-1], axis=int(axis))
    return np.split(x, int(num_splits), axis=int(axis))


OPS = {
    "cast": lambda x, dtype: x,  # the output dtype cast below does the work
    "linear": lambda x, weight, bias=None: x @ weight.T + (0 if bias is None else bias),
    "matmul": lambda x, y, transpose_x=False, transpose_y=False: (x.T if transpose_x else x) @ (y.T if transpose_y else y),
    "silu": lambda x: x * expit(x),
    "sigmoid": expit,
    "relu": lambda x: np.maximum(x, 0),
    "exp": np.exp,
    "sin": np.sin,
    "cos": np.cos,
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "real_div": lambda x, y: x / y,
    "concat": lambda values, axis, interleave=False: np.concatenate(values, axis=int(axis)),
    "slice_by_index": _slice,
    "layer_norm": _layer_norm,
    "split": _split,
    "reshape": lambda x, shape: x.reshape(tuple(int(s) for s in shape)),
    "expand_dims": lambda x, axes: np.expand_dims(x, tuple(int(a) for a in axes)),
    "squeeze": lambda x, axes=None: np.squeeze(x, None if axes is None else tuple(int(a) for a in axes)),
}


def load_program(path: Path):
    """The `main` function of a saved .mlpackage, as PyMIL (no Core ML runtime needed)."""
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    return load_milproto(spec, spec.specificationVersion, file_weights_dir=model.weights_dir).functions["main"]


def run(function, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate the function on `feeds` (name -> array); returns output name -> array."""
    env = {name: np.asarray(feeds[name]) for name in function.inputs}
    for op in function.operations:
        if op.op_type == "const":
            env[op.outputs[0].name] = np.asarray(op.outputs[0].val)
            continue
        if op.op_type not in OPS:
            raise NotImplementedError(f"MIL op '{op.op_type}' has no NumPy evaluation yet")
        kwargs = {k: ([env.get(x.name, x.val) for x in v] if isinstance(v, (list, tuple)) else env.get(v.name, v.val))
                  for k, v in op.inputs.items()}
        result = OPS[op.op_type](**kwargs)
        results = result if isinstance(result, list) else [result]
        for var, value in zip(op.outputs, results):
            env[var.name] = np.asarray(value).astype(types.nptype_from_builtin(var.dtype))
    return {v.name: env[v.name] for v in function.outputs}
