"""Our inference engine: int8 kernels, the arena interpreter, C code generation, Cortex-M emulation.

Modules (bottom to top): :mod:`~helpers.engine.kernels` (NumPy int8 kernels and
quantisation arithmetic), :mod:`~helpers.engine.kernels_ext` (the float I/O wrapper,
shape ops folded at prepare time, PAD, CONCATENATION, MUL, LOGISTIC, TANH, HARD_SWISH),
:mod:`~helpers.engine.interpreter` (``.tflite`` prepared into op
records and run inside one planned arena), :mod:`~helpers.engine.codegen` (one C program per
model, ``csrc/`` kernels; :mod:`~helpers.engine.codegen_ext` for the extra operators),
:mod:`~helpers.engine.toolchain` (``ziglang`` clang, linker
script), :mod:`~helpers.engine.elf`, :mod:`~helpers.engine.thumb` (Thumb-2 decoding, cycle
tables) and :mod:`~helpers.engine.emulator` (``unicorn`` runs, :func:`~helpers.engine.emulator.run`).
Import the module you need: ``from helpers.engine import emulator, interpreter, kernels``.
Taught in 06-deployment. May import: :mod:`helpers.targets`, :mod:`helpers.tflite_io`,
:mod:`helpers.resources`. No TensorFlow.
"""
