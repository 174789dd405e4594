"""Read a ``.tflite`` flatbuffer into plain Python objects (no TensorFlow needed).

``read(tflite_bytes)`` returns a :class:`TFLiteModel` holding the tensors,
operators and subgraph inputs/outputs of the main subgraph, with constant data
as numpy arrays and quantisation parameters per tensor. It is what the memory
planners in :mod:`helpers.resources`, the int8 kernels in :mod:`helpers.engine.kernels`
and the emulator harness work from.

Taught in 06-deployment (reading the converted model before running it).

The parser uses the flatbuffers schema module bundled with ``tflite-micro``
(pure Python, imported in ~0.3 s); TensorFlow is not imported. Corrupt or
truncated bytes raise :class:`TFLiteFormatError` (a ``ValueError``) naming the
problem instead of crashing.

Modules: :mod:`~helpers.tflite_io.reader` (the bounds-checked reader, ``require_int8``) and
:mod:`~helpers.tflite_io.writer` (the canonical writer and its exact size simulation); their
public names are re-exported here. The bottom layer: imports no other module of the package.
"""
from __future__ import annotations

from helpers.tflite_io.reader import (DTYPES, MAX_TENSOR_ELEMENTS, TFLiteFormatError, TFLiteModel,
                                      TFLiteNotInt8Error, TFLiteOp, TFLiteTensor, _enum_names,
                                      _options_dict, _schema, _tensor_type_name,
                                      check_operators, opcode_name, read, require_int8, validate)
from helpers.tflite_io.writer import (PackStub, SizeBuilder, canonical_bytes, canonical_model_t,
                                      fb_buffer, pack_model, packed_size)

__all__ = ["TFLiteFormatError", "TFLiteNotInt8Error", "TFLiteTensor", "TFLiteOp", "TFLiteModel",
           "read", "validate", "check_operators", "require_int8", "opcode_name", "DTYPES",
           "MAX_TENSOR_ELEMENTS", "SizeBuilder", "PackStub", "canonical_bytes", "canonical_model_t",
           "fb_buffer", "pack_model", "packed_size"]
