"""Reductions over products: MatMul, Gemm, MatMulInteger, ConvInteger (docs/SPEC.md, section 4).

Every output element is a sum over a reduction index k of products of input elements, wrapped
to the output dtype. Wrapping is a ring homomorphism Z -> Z/2^w, so the wrapped sum does not
depend on the order of the terms nor on where intermediate results are wrapped: summing in
uint64 (exact modulo 2^64) and then narrowing to int32 gives the same value as the exact
Python-int sum wrapped to int32, because 2^32 divides 2^64. That is why the reference kernels
below may compute in 64 bits and wrap once at the end.

Signed overflow is undefined in C, unsigned overflow is defined modulo 2^64, so the kernels
reinterpret int64 as uint64 before any product or sum that may overflow (numpy's integer
matmul is plain C loops, no BLAS).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from verifier.core.dtypes import DType, TensorType, type_of, wrap
from verifier.core.errors import ShapeError

from ._base import CanonContext, Canonical, Op, register

_MATMUL_DTYPES = (DType.INT32, DType.INT64)
# Largest im2col patch matrix conv_accumulate builds; larger convs loop over kernel positions.
IM2COL_BYTES = 32 << 20
_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _present(ctx: CanonContext, i: int) -> bool:
    return i < len(ctx.node.input) and ctx.node.input[i] != ""


def _opt(ctx: CanonContext, i: int) -> int | None:
    return i if _present(ctx, i) else None


def _check_arity(ctx: CanonContext, lo: int, hi: int) -> None:
    n = len(ctx.node.input)
    if not lo <= n <= hi or any(not _present(ctx, i) for i in range(lo)):
        want = f"{lo} inputs" if lo == hi else f"{lo} to {hi} inputs with the first {lo} present"
        raise ctx.unsupported(f"expects {want}, got {n}; fix the node's inputs.")
    used = [o for o in ctx.node.output if o]
    if len(used) != 1:
        raise ctx.unsupported(f"must have exactly one output, has {len(used)}; drop the extra outputs.")


def _check_attrs(ctx: CanonContext, allowed: set[str]) -> None:
    extra = sorted(ctx.attr_names() - allowed)
    if extra:
        raise ctx.unsupported(f"has attributes {extra} outside the profile; remove them or rewrite the node.")


def _type(ctx: CanonContext, i: int) -> TensorType:
    t = ctx.in_types[i]
    assert t is not None, "present inputs have types"
    return t


def _dtype_of(a: np.ndarray, where: str) -> DType:
    """Runtime guard: the reference refuses arrays outside the profile (e.g. float)."""
    return DType.from_numpy(a.dtype, where)


def _broadcast(sa: Sequence[int], sb: Sequence[int], where: str, what: str) -> tuple[int, ...]:
    """Numpy (multidirectional) broadcasting of two shapes."""
    r = max(len(sa), len(sb))
    a = (1,) * (r - len(sa)) + tuple(sa)
    b = (1,) * (r - len(sb)) + tuple(sb)
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and x != 1 and y != 1:
            raise ShapeError(
                f"{where}: {what} {tuple(sa)} and {tuple(sb)} do not broadcast; make the batch dims equal or 1."
            )
        out.append(y if x == 1 else x)
    return tuple(out)


def _mm_mod64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul of int arrays, exact modulo 2^64, as int64 (see the module docstring)."""
    ua = a.astype(np.int64, copy=False).view(np.uint64)
    ub = b.astype(np.int64, copy=False).view(np.uint64)
    return np.asarray(np.matmul(ua, ub)).view(np.int64)


def _add_mod64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ua = np.asarray(a, dtype=np.int64).view(np.uint64)
    ub = np.asarray(b, dtype=np.int64).view(np.uint64)
    return np.asarray(ua + ub).view(np.int64)


def matmul_shape(sa: Sequence[int], sb: Sequence[int], where: str) -> tuple[int, ...]:
    """ONNX/numpy matmul output shape: 1-D promotion, then batch broadcasting."""
    if len(sa) == 0 or len(sb) == 0:
        raise ShapeError(f"{where}: matmul inputs must have rank >= 1, got {tuple(sa)} and {tuple(sb)}; reshape them.")
    a = (1, *sa) if len(sa) == 1 else tuple(sa)
    b = (*sb, 1) if len(sb) == 1 else tuple(sb)
    if a[-1] != b[-2]:
        raise ShapeError(
            f"{where}: inner dims differ, A {tuple(sa)} has K={a[-1]} but B {tuple(sb)} has K={b[-2]}; "
            "transpose or reshape an input."
        )
    batch = _broadcast(a[:-2], b[:-2], where, "batch dims of")
    return batch + ((a[-2],) if len(sa) > 1 else ()) + ((b[-1],) if len(sb) > 1 else ())


def _scalar_zero_point(ctx: CanonContext, i: int, of: str, dtype: DType) -> None:
    if not _present(ctx, i):
        return
    t = _type(ctx, i)
    if t.dtype is not dtype:
        raise ctx.unsupported(
            f"{ctx.node.input[i]!r} ({t}) must have the dtype of {of} ({dtype.name.lower()}); cast it."
        )
    if t.size != 1:
        raise ctx.unsupported(
            f"zero point {ctx.node.input[i]!r} has shape {t.shape}; per-row, per-column or per-channel zero points "
            "are outside the profile, so quantize with one per-tensor (scalar) zero point."
        )


def _zp(z: np.ndarray | None) -> int:
    """A per-tensor zero point's value (0 when absent)."""
    return 0 if z is None else int(np.asarray(z).reshape(-1)[0])


def _inputs(inputs: Sequence[np.ndarray | None], n: int) -> list[np.ndarray | None]:
    """Pads trailing absent optional inputs with None."""
    return list(inputs) + [None] * (n - len(inputs))


# ---------------------------------------------------------------------------------------------
# MatMul


@register
class MatMul(Op):
    name = "MatMul"
    code = 39

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        _check_arity(ctx, 2, 2)
        _check_attrs(ctx, set())
        ta, tb = _type(ctx, 0), _type(ctx, 1)
        if ta.dtype not in _MATMUL_DTYPES or ta.dtype is not tb.dtype:
            raise ctx.unsupported(
                f"takes two int32 or two int64 inputs, got {ta} and {tb}; Cast them to one of those, "
                "or use MatMulInteger for int8."
            )
        self._infer((ta, tb), ctx.where)
        return Canonical((0, 1), ())

    def _infer(self, in_types: Sequence[TensorType | None], where: str) -> TensorType:
        ta, tb = in_types[0], in_types[1]
        assert ta is not None and tb is not None
        return TensorType(ta.dtype, matmul_shape(ta.shape, tb.shape, where))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        return self._infer(in_types, self.name)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        a, b = inputs[0], inputs[1]
        assert a is not None and b is not None
        dt = _dtype_of(a, self.name)
        return wrap(_mm_mod64(a, b), dt)


# ---------------------------------------------------------------------------------------------
# Gemm


def _unidirectional(sc: Sequence[int], target: tuple[int, ...]) -> bool:
    """Whether shape sc broadcasts to target without changing target."""
    if len(sc) > len(target):
        return False
    return all(c in (1, t) for c, t in zip(reversed(tuple(sc)), reversed(target), strict=False))


@register
class Gemm(Op):
    name = "Gemm"
    code = 40

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        _check_arity(ctx, 2, 3)
        _check_attrs(ctx, {"alpha", "beta", "transA", "transB", "broadcast"})
        alpha = float(ctx.attr("alpha", 1.0))  # type: ignore[arg-type]
        beta = float(ctx.attr("beta", 1.0))  # type: ignore[arg-type]
        if alpha != 1.0:
            raise ctx.unsupported(
                f"alpha={alpha} is not 1.0; integer programs fold scales into the weights, so do that and set alpha=1."
            )
        c = _opt(ctx, 2)
        if c is not None and beta == 0.0:
            c = None  # C * 0 contributes nothing: the canonical node has no C
        elif c is not None and beta != 1.0:
            raise ctx.unsupported(
                f"beta={beta} is not 1.0; integer programs fold scales into the bias, so do that and set beta=1."
            )
        trans_a = int(ctx.attr("transA", 0) != 0)
        trans_b = int(ctx.attr("transB", 0) != 0)
        ta, tb = _type(ctx, 0), _type(ctx, 1)
        tc = _type(ctx, 2) if c is not None else None
        if ta.dtype not in _MATMUL_DTYPES or tb.dtype is not ta.dtype or (tc is not None and tc.dtype is not ta.dtype):
            got = ", ".join(str(t) for t in (ta, tb, tc) if t is not None)
            raise ctx.unsupported(f"takes int32 or int64 inputs of one dtype, got {got}; Cast them to one of those.")
        out = self._infer((ta, tb, tc), (trans_a, trans_b), ctx.where)
        if tc is not None and ctx.attr("broadcast", 1) == 0 and tc.shape != out.shape:
            raise ctx.shape_error(f"broadcast=0 needs C of shape {out.shape}, got {tc.shape}; fix C's shape.")
        return Canonical((0, 1, c), (trans_a, trans_b))

    def _infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...], where: str) -> TensorType:
        ta, tb = in_types[0], in_types[1]
        tc = in_types[2] if len(in_types) > 2 else None
        assert ta is not None and tb is not None
        if len(attrs) != 2:
            raise ShapeError(
                f"{where}: canonical attrs must be (transA, transB), got {attrs}; re-canonicalize the node."
            )
        if len(ta.shape) != 2 or len(tb.shape) != 2:
            raise ShapeError(
                f"{where}: A and B must be 2-D, got {ta.shape} and {tb.shape}; use MatMul for other ranks."
            )
        m, ka = ta.shape[::-1] if attrs[0] else ta.shape
        kb, n = tb.shape[::-1] if attrs[1] else tb.shape
        if ka != kb:
            raise ShapeError(
                f"{where}: inner dims differ (A' is {m}x{ka}, B' is {kb}x{n}); check transA/transB and the shapes."
            )
        if tc is not None and not _unidirectional(tc.shape, (m, n)):
            raise ShapeError(f"{where}: C of shape {tc.shape} does not broadcast to ({m}, {n}); reshape C.")
        return TensorType(ta.dtype, (m, n))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        return self._infer(in_types, attrs, self.name)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        a, b, c = _inputs(inputs, 3)
        assert a is not None and b is not None
        dt = _dtype_of(a, self.name)
        y = _mm_mod64(a.T if attrs[0] else a, b.T if attrs[1] else b)
        if c is not None:
            y = _add_mod64(y, np.broadcast_to(c, y.shape))
        return wrap(y, dt)


# ---------------------------------------------------------------------------------------------
# MatMulInteger


@register
class MatMulInteger(Op):
    name = "MatMulInteger"
    code = 41

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        _check_arity(ctx, 2, 4)
        _check_attrs(ctx, set())
        ta, tb = _type(ctx, 0), _type(ctx, 1)
        if ta.dtype is not DType.INT8 or tb.dtype is not DType.INT8:
            raise ctx.unsupported(
                f"takes int8 A and B (the profile has no uint8), got {ta} and {tb}; "
                "requantize to int8, or use MatMul for int32/int64."
            )
        _scalar_zero_point(ctx, 2, "A", DType.INT8)
        _scalar_zero_point(ctx, 3, "B", DType.INT8)
        self._infer((ta, tb), ctx.where)
        return Canonical((0, 1, _opt(ctx, 2), _opt(ctx, 3)), ())

    def _infer(self, in_types: Sequence[TensorType | None], where: str) -> TensorType:
        ta, tb = in_types[0], in_types[1]
        assert ta is not None and tb is not None
        return TensorType(DType.INT32, matmul_shape(ta.shape, tb.shape, where))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        return self._infer(in_types, self.name)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        a, b, za, zb = _inputs(inputs, 4)
        assert a is not None and b is not None
        _dtype_of(a, self.name)
        # |(a - za)(b - zb)| <= 255^2, so the int64 sum is exact for any K below 2^47.
        a64 = a.astype(np.int64) - _zp(za)
        b64 = b.astype(np.int64) - _zp(zb)
        return wrap(_mm_mod64(a64, b64), DType.INT32)


# ---------------------------------------------------------------------------------------------
# ConvInteger


def conv_params(
    attrs: tuple[int, ...],
) -> tuple[int, int, tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Splits ConvInteger's canonical attrs into (n, group, kernel, pads_begin, pads_end, strides, dilations)."""
    n = attrs[0] if attrs else -1
    if n < 1 or len(attrs) != 2 + 5 * n:
        raise ShapeError(
            f"ConvInteger: canonical attrs {attrs} are not (n, group, kernel[n], pads_begin[n], pads_end[n], "
            "strides[n], dilations[n]); re-canonicalize the node."
        )
    f = [tuple(attrs[2 + i * n : 2 + (i + 1) * n]) for i in range(5)]
    return n, attrs[1], f[0], f[1], f[2], f[3], f[4]


def conv_out_dims(
    spatial: Sequence[int],
    kernel: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> tuple[int, ...]:
    """out_i = floor((D_i + pb_i + pe_i - ((k_i - 1) * d_i + 1)) / s_i) + 1, assuming the window fits."""
    return tuple(
        (d + b + e - ((k - 1) * dl + 1)) // s + 1
        for d, k, b, e, s, dl in zip(spatial, kernel, pb, pe, strides, dilations, strict=True)
    )


@register
class ConvInteger(Op):
    name = "ConvInteger"
    code = 42

    def canonicalize(self, ctx: CanonContext) -> Canonical:
        _check_arity(ctx, 2, 4)
        _check_attrs(ctx, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
        tx, tw = _type(ctx, 0), _type(ctx, 1)
        if tx.dtype is not DType.INT8 or tw.dtype is not DType.INT8:
            raise ctx.unsupported(
                f"takes int8 x and w (the profile has no uint8), got {tx} and {tw}; requantize them to int8."
            )
        _scalar_zero_point(ctx, 2, "x", DType.INT8)
        _scalar_zero_point(ctx, 3, "w", DType.INT8)
        if len(tx.shape) < 3 or len(tw.shape) != len(tx.shape):
            raise ctx.shape_error(
                f"x {tx.shape} must be (N, C, spatial...) and w {tw.shape} (M, C/group, kernel...) of the same "
                "rank >= 3; reshape them."
            )
        n = len(tx.shape) - 2
        kernel = tuple(tw.shape[2:])

        def ints(name: str, default: list[int], length: int, lo: int) -> tuple[int, ...]:
            raw = ctx.attr(name, default)
            v = [int(x) for x in raw] if isinstance(raw, list | tuple) else []
            if len(v) != length or any(x < lo for x in v):
                raise ctx.unsupported(f"{name}={v} must be {length} integers >= {lo}; fix the attribute.")
            return tuple(v)

        group = ctx.attr("group", 1)
        if not isinstance(group, int):
            raise ctx.unsupported(f"group={group!r} must be an integer; fix the attribute.")
        strides = ints("strides", [1] * n, n, 1)
        dilations = ints("dilations", [1] * n, n, 1)
        pads = ints("pads", [0] * (2 * n), 2 * n, 0)
        if ctx.attr("kernel_shape") is not None and ints("kernel_shape", [], n, 1) != kernel:
            raise ctx.shape_error(f"kernel_shape {ctx.attr('kernel_shape')} differs from w's {kernel}; fix either one.")
        if any(k < 1 for k in kernel):
            raise ctx.shape_error(f"kernel dims {kernel} must be >= 1; fix w's shape.")
        auto_pad = ctx.attr("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad not in _AUTO_PADS:
            raise ctx.unsupported(f"auto_pad={auto_pad!r} is not one of {_AUTO_PADS}; pick one of those.")
        if auto_pad != "NOTSET" and any(pads):
            raise ctx.unsupported(f"pads={list(pads)} and auto_pad={auto_pad} are both set; keep only one.")
        spatial = tx.shape[2:]
        pb, pe = pads[:n], pads[n:]
        if auto_pad == "VALID":
            pb = pe = (0,) * n
        elif auto_pad.startswith("SAME"):
            # ONNX: output = ceil(D / s); the odd pixel goes at the end (UPPER) or the beginning (LOWER).
            need = [
                max(0, (-(-d // s) - 1) * s + (k - 1) * dl + 1 - d)
                for d, k, s, dl in zip(spatial, kernel, strides, dilations, strict=True)
            ]
            pb = tuple((p + 1) // 2 if auto_pad == "SAME_LOWER" else p // 2 for p in need)
            pe = tuple(p - b for p, b in zip(need, pb, strict=True))
        attrs = (n, group, *kernel, *pb, *pe, *strides, *dilations)
        self._infer((tx, tw), attrs, ctx.where)
        return Canonical((0, 1, _opt(ctx, 2), _opt(ctx, 3)), attrs)

    def _infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...], where: str) -> TensorType:
        tx, tw = in_types[0], in_types[1]
        assert tx is not None and tw is not None
        n, group, kernel, pb, pe, strides, dilations = conv_params(attrs)
        if len(tx.shape) != n + 2 or len(tw.shape) != n + 2 or tuple(tw.shape[2:]) != kernel:
            raise ShapeError(
                f"{where}: x {tx.shape} and w {tw.shape} do not match attrs {attrs}; re-canonicalize the node."
            )
        nb, c = tx.shape[:2]
        m, cg = tw.shape[:2]
        if group < 1 or c % group or m % group or cg * group != c:
            raise ShapeError(
                f"{where}: group={group} does not fit x channels C={c} and w {tw.shape}; "
                "w must be (M, C/group, ...) with M and C divisible by group."
            )
        for i, (d, k, b, e, dl) in enumerate(zip(tx.shape[2:], kernel, pb, pe, dilations, strict=True)):
            if d + b + e < (k - 1) * dl + 1:
                raise ShapeError(
                    f"{where}: spatial axis {i} has padded size {d + b + e}, smaller than the dilated kernel "
                    f"{(k - 1) * dl + 1}; pad the input or shrink the kernel."
                )
        return TensorType(DType.INT32, (nb, m, *conv_out_dims(tx.shape[2:], kernel, pb, pe, strides, dilations)))

    def infer(self, in_types: Sequence[TensorType | None], attrs: tuple[int, ...]) -> TensorType:
        return self._infer(in_types, attrs, self.name)

    def run(self, inputs: Sequence[np.ndarray | None], attrs: tuple[int, ...]) -> np.ndarray:
        x, w, zx, zw = _inputs(inputs, 4)
        assert x is not None and w is not None
        out_t = self._infer((type_of(x, self.name), type_of(w, self.name)), attrs, self.name)
        # Terms are bounded by 255^2, so int64 sums are exact for any K below 2^47.
        acc = conv_accumulate(x, w, _zp(zx), _zp(zw), attrs, np.int64)
        return wrap(acc.reshape(out_t.shape), DType.INT32)


def conv_accumulate(
    x: np.ndarray, w: np.ndarray, zx: int, zw: int, attrs: tuple[int, ...], acc_dtype: type[np.generic]
) -> np.ndarray:
    """sum over kernel positions j of W[:, :, j] @ shifted-and-padded x at j, in `acc_dtype`.

    Returns shape (N, M, prod(out)). Used by the reference (int64, exact for int8 inputs) and by
    the fast path (float64, exact under its bound): one matmul per kernel position, each a
    partial sum of the same integer total.
    """
    _, group, kernel, pb, pe, strides, dilations = conv_params(attrs)
    nb = x.shape[0]
    m, cg = w.shape[:2]
    out = conv_out_dims(x.shape[2:], kernel, pb, pe, strides, dilations)
    p = int(np.prod(out, dtype=np.int64))
    mg = m // group
    acc = np.zeros((group, mg, nb * p), dtype=acc_dtype)
    if acc.size == 0 or cg == 0:
        return acc.reshape(group * mg, nb, p).transpose(1, 0, 2).reshape(nb, m, p)
    # Subtract the zero point first, then pad with zeros: padding contributes (zx - zx) * w = 0.
    xs = np.zeros((*x.shape[:2], *(d + b + e for d, b, e in zip(x.shape[2:], pb, pe, strict=True))), dtype=acc_dtype)
    inner = tuple(slice(b, b + d) for d, b in zip(x.shape[2:], pb, strict=True))
    np.subtract(x, zx, out=xs[(slice(None), slice(None), *inner)], dtype=acc_dtype, casting="unsafe")
    ws = (w.astype(acc_dtype) - zw).reshape(group, mg, cg, *kernel)
    taps = math.prod(kernel)
    if cg * taps * nb * p * acc.itemsize <= IM2COL_BYTES:
        # One matmul over all kernel positions (im2col): far fewer numpy calls for small convs.
        # Integer sums are exact in any order under the same bound, so the result is identical.
        spans = tuple((k - 1) * dl + 1 for k, dl in zip(kernel, dilations, strict=True))
        axes = tuple(range(2, 2 + len(kernel)))
        win = np.lib.stride_tricks.sliding_window_view(xs, spans, axis=axes)
        # (N, C, pos..., span...) -> strided output positions, dilated kernel taps
        win = win[(slice(None), slice(None), *(slice(None, (o - 1) * s + 1, s) for o, s in zip(out, strides, strict=True)),
                   *(slice(None, None, dl) for dl in dilations))]
        n_sp = len(kernel)
        # -> (G, C/G, kernel..., N, out...) -> (G, C/G * taps, N * P), matching ws's (C/G, kernel...) order
        win = win.reshape(nb, group, cg, *out, *kernel)
        order = (1, 2, *range(3 + n_sp, 3 + 2 * n_sp), 0, *range(3, 3 + n_sp))
        patches = np.ascontiguousarray(win.transpose(order)).reshape(group, cg * taps, nb * p)
        acc = np.matmul(ws.reshape(group, mg, cg * taps), patches)
        return acc.reshape(group * mg, nb, p).transpose(1, 0, 2).reshape(nb, m, p)
    for j in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(
            slice(ji * dl, ji * dl + (o - 1) * s + 1, s)
            for ji, dl, o, s in zip(j, dilations, out, strides, strict=True)
        )
        # (N, C, out...) -> (G, C/G, N * P), contiguous so that float64 matmul goes to BLAS.
        window = xs[(slice(None), slice(None), *sl)].reshape(nb, group, cg, p)
        patch = np.ascontiguousarray(window.transpose(1, 2, 0, 3)).reshape(group, cg, nb * p)
        wj = np.ascontiguousarray(ws[(slice(None), slice(None), slice(None), *j)])  # type: ignore[arg-type]
        acc += np.matmul(wj, patch)
    # (G, M/G, N, P) -> (N, M, P); output channel m = g * M/G + m'.
    return acc.reshape(group * mg, nb, p).transpose(1, 0, 2).reshape(nb, m, p)


__all__ = [
    "ConvInteger",
    "Gemm",
    "MatMul",
    "MatMulInteger",
    "conv_accumulate",
    "conv_out_dims",
    "conv_params",
    "matmul_shape",
]
