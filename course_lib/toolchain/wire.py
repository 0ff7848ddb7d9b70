"""Plain data across the sandbox's wall: what a check's cases returned, as JSON with a few tags, never pickle.

In grading mode the checkers (running in the student's kernel) encode what the student's function returned
on each case; the trusted grader decodes it and judges it against the reference. Only these types cross:
None, bool, int, float (nan and infinities too), str, bytes, list, tuple, dict (any dict subclass, such as a
Counter, arrives as a dict), numpy arrays and torch tensors of numeric or boolean dtypes. Anything else
arrives as `Unsupported(type name)`, which never equals an expected value.

Imports only the standard library at module level: the kernel imports this before the student's code runs.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

MIME = "application/x-course-grade+json"  # the output type a check cell's records travel in
MAX_DEPTH = 40
MAX_ITEMS = 2_000_000      # values in one record, all containers together
_NUMERIC_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64", "bfloat16", "complex64", "complex128"}


@dataclass(frozen=True)
class Unsupported:
    """A value of a type that does not cross the wall; never equal to a reference value."""

    type_name: str

    def __repr__(self) -> str:
        return f"<a {self.type_name}>"


class WireError(ValueError):
    """A record that is not well-formed (too deep, too big, or with unknown tags)."""


def encode(value: Any) -> Any:
    """`value` as JSON-ready data with tags for what JSON lacks."""
    budget = [MAX_ITEMS]

    def enc(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise WireError("the value is too large or too deeply nested to send")
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v) if math.isfinite(v) else {"$float": repr(float(v))}
        if isinstance(v, (bytes, bytearray)):
            return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
        if isinstance(v, tuple):
            return {"$tuple": [enc(x, depth + 1) for x in v]}
        if isinstance(v, list):
            return [enc(x, depth + 1) for x in v]
        if isinstance(v, dict):
            return {"$dict": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
        module = type(v).__module__.split(".")[0]
        if module == "numpy" and hasattr(v, "dtype"):
            if getattr(v, "ndim", 0) == 0 and str(v.dtype) in _NUMERIC_DTYPES:
                return enc(v.item(), depth)
            if str(v.dtype) in _NUMERIC_DTYPES:
                budget[0] -= int(v.size)
                return {"$ndarray": {"dtype": str(v.dtype), "shape": list(v.shape), "data": _flat(v.ravel().tolist())}}
        if module == "torch" and type(v).__name__ in ("Tensor", "Parameter"):
            dtype = str(v.dtype).replace("torch.", "")
            if dtype in _NUMERIC_DTYPES:
                budget[0] -= int(v.numel())
                flat = v.detach().cpu().reshape(-1)
                if dtype == "bfloat16":
                    flat = flat.float()
                return {"$tensor": {"dtype": dtype, "shape": list(v.shape), "data": _flat(flat.tolist())}}
        return {"$unsupported": type(v).__name__[:80]}

    return enc(value, 0)


def _flat(values: list) -> list:
    return [{"$float": repr(x)} if isinstance(x, float) and not math.isfinite(x) else
            ({"$complex": [x.real, x.imag]} if isinstance(x, complex) else x) for x in values]


def decode(data: Any) -> Any:
    """The value `encode` described, rebuilt from plain data (raises WireError on anything unexpected)."""

    def dec(d: Any, depth: int) -> Any:
        if depth > MAX_DEPTH + 2:
            raise WireError("too deeply nested")
        if d is None or isinstance(d, (bool, int, float, str)):
            return d
        if isinstance(d, list):
            return [dec(x, depth + 1) for x in d]
        if not isinstance(d, dict) or len(d) != 1:
            raise WireError("not a tagged value")
        (tag, body), = d.items()
        if tag == "$float":
            return float(str(body)) if str(body) in ("nan", "inf", "-inf") else _bad(tag)
        if tag == "$bytes":
            return base64.b64decode(str(body), validate=True)
        if tag == "$tuple" and isinstance(body, list):
            return tuple(dec(x, depth + 1) for x in body)
        if tag == "$dict" and isinstance(body, list):
            out = {}
            for pair in body:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("bad dict item")
                key = dec(pair[0], depth + 1)
                try:
                    out[key] = dec(pair[1], depth + 1)
                except TypeError:  # an unhashable key (a list): not a value any reference returns
                    return Unsupported("dict with unhashable keys")
            return out
        if tag in ("$ndarray", "$tensor") and isinstance(body, dict):
            return _array(tag, body)
        if tag == "$unsupported":
            return Unsupported(str(body)[:80])
        return _bad(tag)

    return dec(data, 0)


def _bad(tag: str):
    raise WireError(f"unknown or malformed tag {tag[:20]!r}")


def _array(tag: str, body: dict):
    import numpy as np

    dtype, shape, data = str(body.get("dtype")), body.get("shape"), body.get("data")
    if dtype not in _NUMERIC_DTYPES or not isinstance(shape, list) or not isinstance(data, list):
        raise WireError("bad array")
    if not all(isinstance(n, int) and n >= 0 for n in shape) or math.prod(shape) != len(data):
        raise WireError("bad array shape")
    values = [complex(*x["$complex"]) if isinstance(x, dict) and "$complex" in x else
              (float(x["$float"]) if isinstance(x, dict) and "$float" in x else x) for x in data]
    if not all(isinstance(x, (bool, int, float, complex)) for x in values):
        raise WireError("bad array values")
    if tag == "$ndarray":
        return np.array(values, dtype=dtype).reshape(shape)
    import torch

    work = "float32" if dtype == "bfloat16" else dtype
    return torch.tensor(np.array(values, dtype=work).reshape(shape)).to(getattr(torch, dtype))
