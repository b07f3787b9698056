"""The profile's element types and their canonical byte encoding (docs/SPEC.md, "Elements")."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from verifier.core.errors import ShapeError, UnsupportedOpError

MAX_RANK = 6
# Protocol bound: every dim and the element count fit in a uint32.
MAX_DIM = 2**32 - 1
# Engine bound on one tensor's element count; larger tensors are refused at load.
DEFAULT_MAX_ELEMENTS = 2**24


class DType(enum.IntEnum):
    """Profile dtypes, numbered with ONNX's TensorProto codes."""

    INT8 = TensorProto.INT8
    INT32 = TensorProto.INT32
    INT64 = TensorProto.INT64
    BOOL = TensorProto.BOOL

    @property
    def np(self) -> np.dtype:
        return _NP[self]

    @property
    def width(self) -> int:
        """Bytes per element in the committed encoding."""
        return _WIDTH[self]

    @property
    def min(self) -> int:
        return 0 if self is DType.BOOL else -(1 << (8 * self.width - 1))

    @property
    def max(self) -> int:
        return 1 if self is DType.BOOL else (1 << (8 * self.width - 1)) - 1

    @property
    def is_int(self) -> bool:
        return self is not DType.BOOL

    @classmethod
    def from_onnx(cls, code: int, where: str) -> DType:
        try:
            return cls(code)
        except ValueError:
            name = TensorProto.DataType.Name(code) if code in TensorProto.DataType.values() else str(code)
            raise UnsupportedOpError(
                f"{where} has dtype {name}, which is outside the integer profile "
                "(int8, int32, int64, bool); quantize it to fixed-point integers first."
            ) from None

    @classmethod
    def from_numpy(cls, dtype: np.dtype, where: str = "tensor") -> DType:
        for d, n in _NP.items():
            if np.dtype(dtype) == n:
                return d
        raise UnsupportedOpError(
            f"{where} has numpy dtype {np.dtype(dtype)}, which is outside the integer profile "
            "(int8, int32, int64, bool); convert it to one of those first."
        )


_NP = {
    DType.INT8: np.dtype(np.int8),
    DType.INT32: np.dtype(np.int32),
    DType.INT64: np.dtype(np.int64),
    DType.BOOL: np.dtype(np.bool_),
}
_WIDTH = {DType.INT8: 1, DType.INT32: 4, DType.INT64: 8, DType.BOOL: 1}
# Big-endian encodings used for commitments.
_BE = {
    DType.INT8: np.dtype(">i1"),
    DType.INT32: np.dtype(">i4"),
    DType.INT64: np.dtype(">i8"),
    DType.BOOL: np.dtype(">u1"),
}


@dataclass(frozen=True)
class TensorType:
    """Static type of a slot: dtype and shape."""

    dtype: DType
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.width

    def check(self, where: str, max_elements: int = DEFAULT_MAX_ELEMENTS) -> TensorType:
        """Refuse types the protocol cannot commit to or the engine will not hold."""
        if len(self.shape) > MAX_RANK:
            raise ShapeError(
                f"{where} has rank {len(self.shape)}; the profile allows rank <= {MAX_RANK}. "
                "Reshape it to fewer dimensions."
            )
        if any(d < 0 or d > MAX_DIM for d in self.shape) or self.size > MAX_DIM:
            raise ShapeError(f"{where} has a dimension outside 0..2^32-1 in {self.shape}; use static, non-negative dims.")
        if self.size > max_elements:
            raise ShapeError(
                f"{where} has {self.size} elements, above the limit of {max_elements}; "
                "split the tensor or raise --max-elements."
            )
        return self

    def __str__(self) -> str:
        return f"{self.dtype.name.lower()}{list(self.shape)}"


def type_of(array: np.ndarray, where: str = "tensor") -> TensorType:
    return TensorType(DType.from_numpy(array.dtype, where), tuple(int(d) for d in array.shape))


def wrap(values: np.ndarray | int, dtype: DType) -> np.ndarray:
    """Two's-complement wraparound of (int64 or Python int) values into `dtype`."""
    arr = np.asarray(values)
    if dtype is DType.BOOL:
        return arr != 0
    return arr.astype(np.int64, copy=False).astype(dtype.np)


def encode(array: np.ndarray) -> bytes:
    """Canonical element bytes: row-major, big-endian two's complement, bool as 0x00/0x01."""
    d = DType.from_numpy(array.dtype)
    return np.ascontiguousarray(array, dtype=_BE[d]).tobytes()


def decode(data: bytes, ttype: TensorType) -> np.ndarray:
    """Inverse of `encode`; refuses non-canonical bool bytes."""
    if len(data) != ttype.nbytes:
        raise ShapeError(f"expected {ttype.nbytes} bytes for {ttype}, got {len(data)}; check the tensor's type.")
    raw = np.frombuffer(data, dtype=_BE[ttype.dtype])
    if ttype.dtype is DType.BOOL:
        if raw.size and raw.max() > 1:
            raise ShapeError("bool tensor bytes must be 0x00 or 0x01; re-encode the tensor canonically.")
        return raw.astype(np.bool_).reshape(ttype.shape)
    return raw.astype(ttype.dtype.np).reshape(ttype.shape)


def decode_element(data: bytes, dtype: DType) -> int:
    """One element's value from its `dtype.width` big-endian bytes."""
    v = int.from_bytes(data, "big", signed=dtype.is_int)
    if dtype is DType.BOOL and v > 1:
        raise ShapeError("bool element byte must be 0x00 or 0x01; re-encode the tensor canonically.")
    return v
