"""Per-token activation quantization for an int8 ONNX graph: predictions that do not depend on the batch.

Why: ``onnxruntime.quantization.quantize_dynamic`` puts a ``DynamicQuantizeLinear`` before every int8
MatMul. It takes one scale and zero point for the whole activation tensor, i.e. over every text in the
batch and their padding, so an item's probabilities move with its neighbours. On the shipped finsent-topics
this flips 8 of 953 sentiment labels when the batch order changes (benchmarks/batch_invariance.py).

This rewrite gives every token (every row of the flattened ``[..., hidden]`` activation) its own asymmetric
uint8 scale and zero point, so a text's numbers depend on nothing but the text itself. ORT's MatMulInteger
rejects per-row zero points (microsoft/onnxruntime#27897), so the MatMul runs with zero point 0 on the
quantized rows and the zero point is subtracted afterwards, in int32 before the cast to float:
``sum_k (q_k - z) w_k = sum_k q_k w_k - z * colsum(w)`` (|z * colsum| <= 255 * 127 * 1536 fits easily),
so this is exactly per-token quantization. The cost is speed: ORT can no longer fuse quantize + MatMul
(about 0.6x the items/s of the per-tensor graph on 2 cores); accuracy is unchanged within noise.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from kgfusion.core.errors import BundleError

PREFIX = "kgf_ptq"


def per_token_quantized(model: Any) -> tuple[Any, int]:
    """Rewrite every ``DynamicQuantizeLinear`` feeding ``MatMulInteger -> Cast`` in ``model`` (an
    ``onnx.ModelProto``, changed in place); returns the model and how many were rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    weights = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    consts = {"zero": np.array(0.0, np.float32), "u8max": np.array(255.0, np.float32),
              "eps": np.array(1e-8, np.float32), "flat": np.array([-1], np.int64), "zp0": np.array(0, np.uint8),
              "last": np.array([-1], np.int64)}
    graph.initializer.extend(numpy_helper.from_array(v, f"{PREFIX}_{k}") for k, v in consts.items())
    c = {k: f"{PREFIX}_{k}" for k in consts}

    def reduce(op: str, x: str, out: str) -> Any:  # over the last axis; opset 18 moved axes to an input
        if opset >= 18:
            return helper.make_node(op, [x, c["last"]], [out], keepdims=1)
        return helper.make_node(op, [x], [out], axes=[-1], keepdims=1)
    replaced: dict[int, list[Any]] = {}  # id(node) -> the nodes that take its place
    after: dict[int, list[Any]] = defaultdict(list)  # id(node) -> nodes inserted right after it
    count = 0
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            continue
        x, (q, scale, zero_point) = node.input[0], node.output
        p = f"{PREFIX}{count}_"
        count += 1
        replaced[id(node)] = [
            reduce("ReduceMin", x, p + "min"),
            reduce("ReduceMax", x, p + "max"),
            helper.make_node("Min", [p + "min", c["zero"]], [p + "lo"]),  # the range always holds 0
            helper.make_node("Max", [p + "max", c["zero"]], [p + "hi"]),
            helper.make_node("Sub", [p + "hi", p + "lo"], [p + "range"]),
            helper.make_node("Max", [p + "range", c["eps"]], [p + "range_eps"]),
            helper.make_node("Div", [p + "range_eps", c["u8max"]], [scale]),  # [..., 1]: one per token
            helper.make_node("Div", [p + "lo", scale], [p + "lo_steps"]),
            helper.make_node("Neg", [p + "lo_steps"], [p + "zp_neg"]),
            helper.make_node("Round", [p + "zp_neg"], [p + "zp"]),  # float zero point, in [0, 255]
            helper.make_node("Cast", [p + "zp"], [p + "zp_u8"], to=TensorProto.UINT8),
            helper.make_node("Cast", [p + "zp"], [p + "zp_i32"], to=TensorProto.INT32),
            # one QuantizeLinear, per axis over the flattened tokens
            helper.make_node("Shape", [x], [p + "shape"]),
            helper.make_node("Flatten", [x], [p + "rows"], axis=-1),
            helper.make_node("Reshape", [scale, c["flat"]], [p + "scale_1d"]),
            helper.make_node("Reshape", [p + "zp_u8", c["flat"]], [p + "zp_1d"]),
            helper.make_node("QuantizeLinear", [p + "rows", p + "scale_1d", p + "zp_1d"], [p + "q_rows"], axis=0),
            helper.make_node("Reshape", [p + "q_rows", p + "shape"], [q]),
            helper.make_node("Identity", [c["zp0"]], [zero_point]),  # MatMulInteger sees zero point 0 ...
        ]
        for matmul in consumers[q]:
            casts = consumers[matmul.output[0]] if matmul.op_type == "MatMulInteger" else []
            if len(casts) != 1 or casts[0].op_type != "Cast" or matmul.input[1] not in weights:
                raise BundleError(f"{node.name}: not the quantize_dynamic pattern (DynamicQuantizeLinear -> "
                                  "MatMulInteger with constant weights -> Cast); cannot make it per-token")
            w = numpy_helper.to_array(weights[matmul.input[1]]).astype(np.int64)
            w_zp = matmul.input[3] if len(matmul.input) > 3 else ""
            if w_zp:
                w = w - numpy_helper.to_array(weights[w_zp]).astype(np.int64)
            colsum = f"{matmul.name}_{PREFIX}_colsum"
            graph.initializer.append(numpy_helper.from_array(w.sum(axis=0).astype(np.int32), colsum))
            cast = casts[0]
            raw, shift, exact = (f"{matmul.output[0]}_{PREFIX}_{k}" for k in ("raw", "shift", "exact"))
            matmul.output[0] = raw
            after[id(matmul)] += [  # ... and the zero point comes off here, in exact int32: z * colsum(w)
                helper.make_node("Mul", [p + "zp_i32", colsum], [shift]),
                helper.make_node("Sub", [raw, shift], [exact]),
            ]
            cast.input[0] = exact
    nodes: list[Any] = []
    for node in graph.node:
        nodes += replaced.get(id(node), [node]) + after.get(id(node), [])
    del graph.node[:]
    graph.node.extend(nodes)
    return model, count
