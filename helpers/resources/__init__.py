"""Exact resource model: MACs, parameters, flash and peak SRAM under a memory plan.

Modules: :mod:`~helpers.resources.graph` (the graph IR, per-op MACs and scratch, the two
front ends), :mod:`~helpers.resources.planners` (memory plans with offsets),
:mod:`~helpers.resources.flash` (the ``.tflite`` size model) and
:mod:`~helpers.resources.profile` (one result object). Everything public is re-exported
here: ``from helpers import resources; resources.profile(...)``.
May import: :mod:`helpers.tflite_io`. No TensorFlow.

Everything here works on a small graph IR (:class:`Graph`: int8 tensors and
TFLite operators) that is built either

* from an architecture of :mod:`helpers.spaces` **without TensorFlow**, by
  mirroring what the TFLite converter emits for the Keras model that
  :func:`helpers.spaces.build` makes (batch-norm folded into the conv, ReLU
  fused, Flatten -> RESHAPE, GlobalAveragePooling -> MEAN, global max -> REDUCE_MAX,
  Resizing -> RESIZE_BILINEAR, and the converter's operator order), or
* from a real ``.tflite`` file (:func:`graph_from_tflite`, via
  :mod:`helpers.tflite_io`),

so the same planners give plans for a search candidate and for the deployed
file. Memory plans (:func:`plan`, :func:`plan_tflite`):

``"tflm"``
    TFLite-Micro's ``GreedyMemoryPlanner`` replicated exactly: every non-constant
    tensor (network input and output included) and every kernel scratch buffer,
    sizes rounded up to 16 bytes, lifetimes in the file's operator order, buffers
    placed largest first (ties: later-added first) at the lowest offset that does
    not collide with a buffer alive at the same time. ``peak_sram_bytes`` is the arena
    *head* TFLM reports.
``"reordered"``
    Liberis & Lane operator reordering as in muNAS: the execution order minimising
    the maximum bytes live at any step (exact dynamic programme over the sets of
    executed operators; that minimum is ``lower_bound_bytes``), laid out; its
    ``peak_sram_bytes`` is the layout's end (:func:`verify_plan` checks every plan).
``"inplace"``
    TinyEngine's in-place depthwise on top of the best order: a depthwise
    convolution (depth multiplier 1) whose input has no consumer after it writes
    its output over its input, needing one extra output channel (Ho*Wo bytes)
    of scratch, so its step costs N + N/C instead of 2N.

A ``.tflite`` file is its own flash model: :func:`flash_file_breakdown` attributes every byte
(weights, biases, quant, graph, and by name names / min-max / metadata / signature defs /
description / padding) and :func:`device_image` gives the deployable image.

Scratch buffers are those the *reference* int8 kernels of the pinned
tflite-micro build request in ``Prepare`` (see :data:`KERNELS_ASSUMED`).

Taught in 00-overview (what peak SRAM, flash and MACs mean) and 06-deployment
(plans against the measured arena).
"""
from __future__ import annotations

from helpers.resources.flash import (CONVERTER_METADATA, FILE_PARTS, FLASH_FIXED_OVERHEAD, NOT_ON_DEVICE,
                                     OP_VERSIONS, device_image, flash_bytes, flash_file_breakdown)
from helpers.resources.graph import (ALIGN, KERNELS_ASSUMED, PLANS, Graph, Node, Tensor,
                                     graph_from_layers, graph_from_tflite, kernel_scratch, op_macs)
from helpers.resources.planners import MemoryPlan, plan, plan_tflite, timeline, verify_plan
from helpers.resources.profile import Profile, profile

__all__ = ["Tensor", "Node", "Graph", "MemoryPlan", "Profile", "PLANS", "KERNELS_ASSUMED",
           "ALIGN", "graph_from_tflite", "graph_from_layers", "plan", "plan_tflite",
           "timeline", "profile", "flash_bytes", "FLASH_FIXED_OVERHEAD", "CONVERTER_METADATA",
           "OP_VERSIONS", "kernel_scratch", "op_macs", "verify_plan", "flash_file_breakdown",
           "device_image", "FILE_PARTS", "NOT_ON_DEVICE"]
