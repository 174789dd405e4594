"""One profile object for an architecture or a ``.tflite``: MACs, params, flash, peak SRAM, per layer.

Taught in 00-overview. :func:`profile` returns a :class:`Profile` with a printed summary, a
per-layer table and dict export. May import: the other :mod:`helpers.resources` modules,
:mod:`helpers.tflite_io`.
"""
from __future__ import annotations

from dataclasses import dataclass

from helpers.resources.flash import FILE_PARTS, flash_bytes, flash_file_breakdown
from helpers.resources.graph import KERNELS_ASSUMED, PLANS, Graph, graph_from_layers, graph_from_tflite
from helpers.resources.planners import MemoryPlan, plan as _plan

# ============================================================================== profile

@dataclass
class Profile:
    """Resources of one network (MLTK-profiler style result object).

    ``peak_sram_bytes``: activation bytes under ``plan`` (TFLM arena head for "tflm");
    ``flash_bytes``: size of the int8 ``.tflite`` (estimated from the graph for an
    architecture, see :func:`flash_bytes`; for a file, the file's own size with every byte
    attributed by :func:`flash_file_breakdown`, incl. ``device_image_bytes``, the
    deployable image without names / min-max / metadata / signature defs); ``flash`` has
    the parts; ``macs`` / ``params``: totals;
    ``layers``: one dict per operator (see :meth:`table`); ``kernels``: the
    scratch-buffer assumptions used. Taught in 00-overview.
    """

    name: str
    plan: str
    peak_sram_bytes: int
    flash_bytes: int
    macs: int
    params: int
    flash: dict
    layers: list
    kernels: dict
    memory_plan: MemoryPlan | None = None
    input_shape: tuple = ()
    num_classes: int = 0

    def summary(self) -> str:
        lines = [f"Profile of {self.name or 'model'} (plan '{self.plan}')",
                 f"  MACs         {self.macs:>12,}",
                 f"  parameters   {self.params:>12,}",
                 f"  flash        {self.flash_bytes:>12,} B  ({self._flash_parts()})",
                 *([f"  device image {self.flash['device_image_bytes']:>12,} B  (the file without "
                    f"{self.flash['not_on_device']:,} B a device does not need: names, min/max, "
                    f"metadata, signature defs, description)"] if "device_image_bytes" in self.flash
                   else []),
                 f"  peak SRAM    {self.peak_sram_bytes:>12,} B  (activations + scratch, 16-B aligned)",
                 f"  operators    {len(self.layers):>12}"]
        return "\n".join(lines)

    def _flash_parts(self) -> str:
        if "device_image_bytes" in self.flash:  # a file: every byte attributed
            return " + ".join(f"{p} {self.flash[p]:,}" for p in FILE_PARTS if self.flash[p])
        return (f"weights {self.flash['weights']:,} + biases {self.flash['biases']:,} + quant "
                f"{self.flash['quant']:,} + graph {self.flash['graph']:,} + fixed "
                f"{self.flash['overhead']:,}")

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"Profile(plan={self.plan!r}, peak_sram_bytes={self.peak_sram_bytes}, "
                f"flash_bytes={self.flash_bytes}, macs={self.macs}, params={self.params})")

    def table(self):
        """Per-operator pandas DataFrame: op, name, output shape, MACs, params,
        weight bytes, scratch bytes, live bytes at that step of the plan."""
        import pandas as pd
        return pd.DataFrame(self.layers)

    def to_dict(self) -> dict:
        return {"name": self.name, "plan": self.plan, "peak_sram_bytes": self.peak_sram_bytes,
                "flash_bytes": self.flash_bytes, "macs": self.macs, "params": self.params,
                "flash": dict(self.flash), "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "layers": [dict(r) for r in self.layers],
                "kernels": dict(self.kernels)}


def _to_graph(obj, input_shape, num_classes) -> tuple[Graph, str]:
    if isinstance(obj, Graph):
        return obj, obj.name
    if hasattr(obj, "layers") and hasattr(obj, "to_dict") and hasattr(obj, "mutate"):
        if input_shape is None or num_classes is None:
            raise ValueError("profile(arch): input_shape=(H, W, C) and num_classes are required "
                             "for an architecture")
        return graph_from_layers(obj.layers(input_shape, num_classes)), obj.space_name
    if isinstance(obj, (bytes, bytearray, memoryview, str)) or hasattr(obj, "__fspath__") \
            or hasattr(obj, "tensors"):
        return graph_from_tflite(obj), "tflite"
    if hasattr(obj, "inputs") and hasattr(obj, "layers") and hasattr(obj, "get_config"):
        raise ValueError("profile(keras_model): convert it first with "
                         "helpers.deploy.to_tflite_int8(model, data) and profile the bytes, or "
                         "profile the architecture it was built from")
    raise ValueError(f"profile: expected an architecture (helpers.spaces), .tflite bytes, "
                     f"a parsed TFLiteModel or a Graph; got {type(obj).__name__}")


def profile(arch_or_model, input_shape=None, num_classes=None, plan: str = "tflm",
            table: bool = True) -> Profile:
    """Profile an architecture (no TensorFlow, ~1 ms) or a ``.tflite``.

    ``arch_or_model``: a :mod:`helpers.spaces` architecture (give ``input_shape``
    and ``num_classes``), ``.tflite`` bytes / parsed model, or a :class:`Graph`.
    ``plan``: "tflm", "reordered" or "inplace" (see module docstring).
    ``table=False`` skips the per-layer rows (a little faster in searches).

    Taught in 00-overview and 02-aging-evolution.
    """
    if plan not in PLANS:
        raise ValueError(f"plan={plan!r} unknown; allowed: {', '.join(PLANS)}")
    g, name = _to_graph(arch_or_model, input_shape, num_classes)
    mp = _plan(g, plan)
    if isinstance(arch_or_model, (bytes, bytearray, memoryview, str)) \
            or hasattr(arch_or_model, "__fspath__"):
        fl = flash_file_breakdown(arch_or_model)  # a file is its own flash model: exact
    elif hasattr(arch_or_model, "tensors") and not isinstance(arch_or_model, Graph):
        try:  # a parsed model (no bytes): the converter-graph model, else its file size
            fl = flash_bytes(g)
        except ValueError:
            fl = {"weights": 0, "biases": 0, "quant": 0, "graph": 0, "overhead": 0,
                  "total": int(arch_or_model.size)}
    else:
        fl = flash_bytes(g)
    rows = []
    if table:
        step = {oi: p for p, oi in enumerate(mp.order)}
        for op in g.ops:
            t = g.tensors[op.outputs[0]]
            wb = sum(g.tensors[i].nbytes for i in op.inputs if i >= 0 and g.tensors[i].const)
            rows.append({"op": op.index, "opcode": op.opcode, "name": op.name,
                         "output_shape": tuple(t.shape), "macs": op.macs, "params": op.params,
                         "weight_bytes": wb, "scratch_bytes": sum(op.scratch),
                         "step": step[op.index], "live_bytes": mp.live_bytes[step[op.index]]})
    used = {op.opcode for op in g.ops}
    kernels = {k: v for k, v in KERNELS_ASSUMED.items() if k in used}
    return Profile(name=name, plan=plan, peak_sram_bytes=mp.peak_sram_bytes, flash_bytes=fl["total"],
                   macs=g.macs, params=g.params, flash=fl, layers=rows, kernels=kernels,
                   memory_plan=mp, input_shape=tuple(input_shape or ()),
                   num_classes=int(num_classes or 0))
