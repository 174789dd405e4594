"""helpers.engine.emulator: ziglang build for Cortex-M4/M7, unicorn run, exact instruction
counts (IT instructions included), stack painting, bit-exact C kernels (plain and DSP)
under every memory plan, link-time fit errors, C array export. No board, no GPU.
"""
import os
import struct
import sys

import numpy as np
import pytest

from helpers.engine import emulator as E
from helpers import deploy
from helpers.engine import kernels as K
from helpers.engine import thumb
from helpers import tflite_io

sys.path.insert(0, os.path.dirname(__file__))
from test_kernels import keras_models, sample_input, space_models  # noqa: E402

M4 = dict(name="m4-test", core="cortex-m4", clock_hz=100_000_000, sram_bytes=256 * 1024,
          flash_bytes=1024 * 1024)

TRIVIAL_C = r"""
#include <stdint.h>
void tn_ready(void); void tn_marker(uint32_t id);
volatile int32_t result;
int8_t A[64], B[64];

/* exactly 1 + 7*n + 2 instructions, two of them per iteration inside an IT block */
__attribute__((naked, noinline)) int32_t it_loop(int32_t n) {
  __asm volatile(
    "movs r1, #0\n"
    "1: cmp r0, #4\n"
    "ite lt\n"
    "movlt r2, #1\n"
    "movge r2, #2\n"
    "adds r1, r1, r2\n"
    "subs r0, r0, #1\n"
    "bne 1b\n"
    "mov r0, r1\n"
    "bx lr\n");
}
__attribute__((noinline)) int32_t dot(const int8_t *a, const int8_t *b, int n) {
  int32_t acc = 0;
  for (int i = 0; i < n; i++) acc += a[i] * b[i];
  return acc;
}
__attribute__((noinline)) int32_t deep(int n) {
  volatile uint8_t buf[200];
  for (int i = 0; i < 200; i++) buf[i] = (uint8_t)i;
  return n ? deep(n - 1) + buf[n] : 0;
}
int tn_main(void) {
  tn_ready();
  tn_marker(0); result = it_loop(100);
  tn_marker(1); result += dot(A, B, 64);
  tn_marker(2); result += deep(4);
  tn_marker(3);
  return 0;
}
"""


@pytest.fixture(scope="module")
def trivial_elf(tmp_path_factory):
    d = tmp_path_factory.mktemp("trivial")
    src = d / "trivial.c"
    src.write_text(TRIVIAL_C)
    return E.compile_c([src], M4, d)


def test_harness_counts_it_blocks_exactly_and_paints_the_stack(trivial_elf):
    a = np.arange(64, dtype=np.int8)
    b = (np.arange(64) % 7 - 3).astype(np.int8)
    r = E.run_elf(trivial_elf, M4, writes={"A": a.tobytes(), "B": b.tobytes()},
                  reads={"result": ("result", 4)})
    seg = {s["id"]: s for s in r.segments}
    # bl it_loop + mov/str around it live in tn_main; the naked loop itself is 703.
    it_count = seg[0]["instructions"]
    assert 703 <= it_count <= 703 + 8, it_count
    assert seg[0]["classes"]["it"] == 100
    want = (3 * 1 + 97 * 2) + int(a.astype(int) @ b.astype(int)) + (4 + 3 + 2 + 1)
    assert struct.unpack("<i", r.memory["result"])[0] == want
    # deep(4): five frames of > 200 bytes each on the stack
    assert 5 * 200 <= r.stack_bytes <= 5 * 200 + 400
    assert r.flash_bytes > 0 and r.static_sram_bytes >= 64 * 2 + 4


def test_counts_are_deterministic_run_to_run(trivial_elf):
    runs = [E.run_elf(trivial_elf, M4) for _ in range(2)]
    assert runs[0].instructions == runs[1].instructions
    assert runs[0].cycles_m4 == runs[1].cycles_m4
    assert [s["instructions"] for s in runs[0].segments] == [s["instructions"] for s in runs[1].segments]


def test_block_counts_equal_code_hook_counts_without_it(trivial_elf):
    """The block-decoded instruction stream equals unicorn's per-instruction hook except
    for IT instructions and condition-failed instructions of IT blocks, which the code
    hook does not report (validates the Thumb-2 length decoder)."""
    from unicorn import Uc, UC_ARCH_ARM, UC_MODE_THUMB, UC_MODE_MCLASS, UC_HOOK_CODE, UC_HOOK_BLOCK
    from unicorn import arm_const as A
    img = E.read_elf(trivial_elf)
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_M4)
    uc.mem_map(E.FLASH_BASE, M4["flash_bytes"])
    uc.mem_map(E.SRAM_BASE, M4["sram_bytes"])
    for paddr, _v, blob, _m in img.segments:
        if blob:
            uc.mem_write(paddr, bytes(blob))
    sp, reset = struct.unpack("<II", bytes(uc.mem_read(img.sym("tn_vectors"), 8)))
    uc.reg_write(A.UC_ARM_REG_SP, sp)
    uc.emu_start(reset | 1, img.sym("tn_ready") & ~1)
    seen = {}
    blocks = []
    lo = img.sym("dot") & ~1
    hi = lo + img.symbols["dot"][1] - 1
    uc.hook_add(UC_HOOK_CODE, lambda u, a, s, d: seen.__setitem__(a, seen.get(a, 0) + 1),
                begin=lo, end=hi)
    uc.hook_add(UC_HOOK_BLOCK, lambda u, a, s, d: blocks.append((a, s)), begin=lo, end=hi)
    uc.emu_start(img.sym("tn_ready") | 1, img.sym("tn_done") & ~1)
    decoded, it_blocks = {}, set()
    for a, s in blocks:
        code = bytes(uc.mem_read(a, s))
        i = 0
        while i < s:
            hw2 = code[i + 2] | code[i + 3] << 8 if i + 3 < s else 0
            n, cls, _ = thumb._decode_one(code[i] | code[i + 1] << 8, hw2)
            decoded[a + i] = decoded.get(a + i, 0) + 1
            if cls == "it":
                it_blocks.add(a)
            i += n
    assert sum(seen.values()) > 64
    assert set(seen) <= set(decoded)            # every reported address is an instruction start
    for addr, n in decoded.items():
        if seen.get(addr, 0) != n:              # only IT and condition-failed IT-block slots
            assert seen.get(addr, 0) < n
            assert any(b <= addr < b + s for b, s in blocks if b in it_blocks), hex(addr)


def test_classify_block_decodes_dsp_and_memory_classes():
    enc = {  # little-endian halfwords
        "smlad r0, r0, r1, r2": bytes.fromhex("20fb0120"),
        "sxtb16 r1, r1, ror #8": bytes.fromhex("2ffa91f1"),
        "ldr r5, [r0], #4": bytes.fromhex("50f8045b"),
        "ldrsb.w r4, [r6, #3]": bytes.fromhex("96f90340"),
        "str r6, [sp]": bytes.fromhex("0096"),
        "push {r4-r7, lr}": bytes.fromhex("f0b5"),
        "sdiv r0, r0, r1": bytes.fromhex("90fbf1f0"),
        "it gt": bytes.fromhex("c8bf"),
    }
    want = {"smlad r0, r0, r1, r2": "mul", "sxtb16 r1, r1, ror #8": "alu",
            "ldr r5, [r0], #4": "load", "ldrsb.w r4, [r6, #3]": "load", "str r6, [sp]": "store",
            "push {r4-r7, lr}": "multiple", "sdiv r0, r0, r1": "div", "it gt": "it"}
    for k, code in enc.items():
        info = E.classify_block(code)
        assert info["instructions"] == 1
        assert info["classes"][want[k]] == 1, k
    blk = E.classify_block(enc["push {r4-r7, lr}"] + bytes.fromhex("fee7"))  # + b .
    assert blk["instructions"] == 2 and blk["branch"][0] == "uncond"
    assert blk["cycles_fixed"] == 1 + 5   # PUSH of 5 registers; branch costed separately


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("kernels", ["plain", "dsp"])
def test_generated_c_bit_exact_for_every_plan(kernels):
    from helpers.deploy import reference_outputs
    for name, b in keras_models()[:5]:
        x = sample_input(b)
        ref = reference_outputs(b, x, "tflm")
        for plan in ("tflm", "inplace") if kernels == "dsp" else ("reordered",):
            r = E.run(b, x, target="stm32f412", plan=plan, kernels=kernels)
            assert np.array_equal(r.output.ravel(), ref.ravel()), (name, plan, kernels)


def test_space_models_and_cortex_m7_bit_exact():
    from helpers.deploy import reference_outputs
    for (name, b), (tgt, kern) in zip(space_models(2) + keras_models()[5:7],
                                      [("stm32f746zg", "dsp"), ("stm32f412", "plain"),
                                       ("stm32f746zg", "plain"), ("stm32f446re", "dsp")]):
        x = sample_input(b, seed=3)
        r = E.run(b, x, target=tgt, plan="inplace", kernels=kern)
        assert np.array_equal(r.output.ravel(), reference_outputs(b, x, "tflm").ravel()), name


def test_measured_sram_agrees_with_plan_and_dsp_uses_fewer_instructions():
    from helpers import resources
    name, b = keras_models()[0]
    x = sample_input(b)
    pl = resources.plan_tflite(b, "inplace")
    res = {k: E.run(b, x, target="stm32f412", plan="inplace", kernels=k) for k in ("plain", "dsp")}
    for r in res.values():
        assert r.arena_bytes == pl.arena_bytes                     # the arena is the plan
        assert r.stack_bytes < 1024                                 # straight-line code
        assert r.static_sram_bytes <= 16 + r.col_bytes              # tn_state + im2col
        assert r.sram_bytes == r.static_sram_bytes + r.arena_bytes + r.stack_bytes
        assert r.sram_bytes - pl.arena_bytes < 1024 + r.col_bytes
    p, d = res["plain"], res["dsp"]
    assert d.instructions_per_mac < 0.8 * p.instructions_per_mac, (p.instructions_per_mac,
                                                                   d.instructions_per_mac)
    conv = [o for o in d.table().itertuples() if o.kind == "CONV_2D" and o.macs > 2000]
    conv_p = [o for o in p.table().itertuples() if o.kind == "CONV_2D" and o.macs > 2000]
    assert sum(o.instructions for o in conv) < 0.6 * sum(o.instructions for o in conv_p)
    assert d.per_op and sum(o["instructions"] for o in d.per_op) == d.instructions
    assert 0 < d.cycles and 0.5 < d.cycles / d.instructions < 2.0
    assert "instr/MAC" in d.summary() and set(d.to_dict()) >= {"output", "sram_bytes"}


def test_emulated_run_is_deterministic():
    name, b = keras_models()[1]
    x = sample_input(b)
    bd = E.build(b, "stm32f412", plan="tflm", kernels="dsp")
    r1, r2 = E.run(bd, x), E.run(bd, x)
    assert r1.instructions == r2.instructions and r1.cycles == r2.cycles
    assert [o["instructions"] for o in r1.per_op] == [o["instructions"] for o in r2.per_op]


def test_model_that_does_not_fit_fails_the_link_clearly():
    name, b = keras_models()[4]
    tiny = dict(name="tiny-mcu", core="cortex-m4", clock_hz=48_000_000, sram_bytes=4096,
                flash_bytes=256 * 1024)
    with pytest.raises(E.ModelDoesNotFitError, match="SRAM") as e:
        E.build(b, tiny, plan="tflm", kernels="plain")
    assert "tiny-mcu" in str(e.value) and "overflows RAM" in str(e.value)
    no_flash = dict(tiny, sram_bytes=256 * 1024, flash_bytes=4096)
    with pytest.raises(E.ModelDoesNotFitError, match="flash"):
        E.build(b, no_flash, plan="tflm", kernels="plain")


def test_export_c_array_round_trips_through_the_compiler(tmp_path):
    name, b = keras_models()[6]
    src = E.export_c_array(b, "g_model")
    assert "g_model_len" in src and f"= {len(b)};" in src
    c = tmp_path / "arr.c"
    c.write_text(src + "\nconst unsigned char *volatile keep = g_model;\n"
                       "int tn_main(void) { return keep[0]; }\n")
    elf = E.compile_c([c], M4, tmp_path)
    img = E.read_elf(elf)
    addr, size = img.symbols["g_model"]
    assert size == len(b) and addr % 16 == 0
    blob = b"".join(bytes(s[2]) for s in img.segments)
    assert b in blob
    with pytest.raises(ValueError, match="identifier"):
        E.export_c_array(b, "9bad name")
    with pytest.raises(tflite_io.TFLiteFormatError):
        E.export_c_array(b"not a model at all", "m")


def test_bad_arguments_raise():
    name, b = keras_models()[6]
    with pytest.raises(ValueError, match="kernels"):
        E.generate_c(b, kernels="neon")
    with pytest.raises(ValueError, match="plan"):
        E.generate_c(b, plan="magic")
    with pytest.raises(ValueError, match="core"):
        E.build(b, dict(M4, core="cortex-a53"))
    bd = E.build(b, "stm32f412", plan="tflm", kernels="plain")
    with pytest.raises(ValueError, match="int8"):
        E.run(bd, np.zeros(bd.generated.input_bytes, np.float32))


@pytest.mark.slow
def test_mobilenetv2_inplace_vs_tflm_arena():
    """MobileNetV2-style model: the inplace plan's peak vs the TFLM arena measured by
    the tflite-micro interpreter, and the emulated build's SRAM vs the plan."""
    from helpers import deploy, resources
    from helpers import spaces as S
    arch = S.BlockArch(resolution=48, width=0.35, stages=[[(6, 3), (6, 3)]] * 4)
    shape = (48, 48, 3)
    model = S.build(arch, shape, 10, seed=0)
    b = deploy.to_tflite_int8(model, np.random.default_rng(0).normal(0, 1, (8,) + shape)
                              .astype(np.float32))
    arena = deploy.measure_arena(b, isolate=False)
    pl = resources.plan_tflite(b, "inplace")
    assert arena.total / pl.peak_sram_bytes >= 1.5
    assert pl.peak_sram_bytes < arena.head
    x = sample_input(b)
    r = E.run(b, x, target="stm32f746zg", plan="inplace", kernels="dsp")
    assert np.array_equal(r.output.ravel(), deploy.reference_outputs(b, x, "tflm").ravel())
    assert r.arena_bytes == pl.arena_bytes and r.stack_bytes < 1024
    assert arena.total / r.sram_bytes >= 1.5


@pytest.mark.slow
def test_24_space_models_emulated_bit_exact():
    """The >= 20-model set of test_kernels, built as C (DSP kernels, inplace plan on a
    Cortex-M4 target, plain kernels with the tflm plan on a Cortex-M7 target) and run
    under the emulator: every output equals TFLite-Micro's."""
    models = space_models(24, size="small", seed=1)
    assert len(models) >= 20
    ratios = []
    for name, b in models:
        x = sample_input(b)
        ref = deploy.reference_outputs(b, x, "tflm").ravel()
        d = E.run(b, x, target="stm32f412", plan="inplace", kernels="dsp")
        p = E.run(b, x, target="stm32f746zg", plan="tflm", kernels="plain")
        assert np.array_equal(d.output.ravel(), ref), name
        assert np.array_equal(p.output.ravel(), ref), name
        ratios.append(d.instructions_per_mac / p.instructions_per_mac)
    assert np.median(ratios) < 0.8
