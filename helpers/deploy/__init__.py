"""Deployment: int8 conversion, the TFLite-Micro interpreter, and one measure-deployed result.

Modules: :mod:`~helpers.deploy.convert` (Keras -> int8 ``.tflite``),
:mod:`~helpers.deploy.tflm` (arena measurement, inference, reference outputs),
:mod:`~helpers.deploy.measure` (:func:`measure_deployed`, the one harness every method's
model goes through), :mod:`~helpers.deploy.check` (agreement and bit-exactness checks on
sampled models) and :mod:`~helpers.deploy.models` (reference and recorded models).
Everything public is re-exported here. Taught in 00-overview and 06-deployment.
TensorFlow is imported lazily. May import: :mod:`helpers.run`, :mod:`helpers.targets`,
:mod:`helpers.spaces`, :mod:`helpers.tflite_io`, :mod:`helpers.resources`, :mod:`helpers.engine`.
"""
from __future__ import annotations

from helpers.deploy.check import (SAMPLE_PRESETS, AgreementReport, agreement, agreement_spaces,
                                  check_against_tflm, randomize_weights, sample_models)
from helpers.deploy.convert import quantize_input, strip_strings, to_tflite_int8
from helpers.deploy.measure import Deployed, measure_deployed
from helpers.deploy.models import (REFERENCE_MODELS, RecordedModelError, parse_model_spec,
                                   recorded_model, reference_arch, reference_model)
from helpers.deploy.tflm import (DEFAULT_ARENA_BYTES, TFLM_OPS, ArenaReport, TFLMError,
                                 measure_arena, reference_outputs, tflm_predict)

__all__ = ["to_tflite_int8", "measure_arena", "tflm_predict", "ArenaReport", "TFLMError",
           "DEFAULT_ARENA_BYTES", "TFLM_OPS", "strip_strings", "randomize_weights",
           "check_against_tflm", "agreement_spaces", "AgreementReport", "agreement",
           "RecordedModelError", "reference_arch", "reference_model", "parse_model_spec",
           "recorded_model", "quantize_input", "REFERENCE_MODELS", "reference_outputs",
           "sample_models", "SAMPLE_PRESETS", "Deployed", "measure_deployed"]
