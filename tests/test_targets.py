"""helpers.targets: profiles, aliases, reserves and errors."""
import pytest

from helpers import targets

REQUIRED = ["stm32f412", "stm32f446re", "stm32f746zg", "stm32f767zi", "stm32h743", "nucleo-l4r5zi", "nrf52840"]


def test_required_targets_with_anchor_figures():
    assert set(REQUIRED) <= set(targets.names())
    f746 = targets.get("STM32F746")  # alias, case-insensitive
    assert (f746.core, f746.clock_hz, f746.sram_bytes, f746.flash_bytes) == ("cortex-m7", 216_000_000, 320 * 1024, 1024 * 1024)
    f446 = targets.get("stm32f446re")
    assert (f446.sram_bytes, f446.flash_bytes, f446.clock_hz) == (128 * 1024, 512 * 1024, 180_000_000)
    for name in REQUIRED:
        t = targets.get(name)
        assert t.source and t.core in ("cortex-m4", "cortex-m7")


def test_tflm_reserve_reduces_budgets():
    t = targets.get("stm32f446re", reserve="tflm")
    assert t.sram_budget == 128 * 1024 - 4 * 1024
    assert t.flash_budget == 512 * 1024 - 37 * 1024
    assert t.fits(t.sram_budget, t.flash_budget) and not t.fits(t.sram_budget + 1, 0)


def test_unknown_target_lists_known_ones():
    with pytest.raises(targets.UnknownTargetError) as err:
        targets.get("esp32")
    assert "esp32" in str(err.value) and "stm32f746zg" in str(err.value)
    with pytest.raises(ValueError, match="reserve"):
        targets.get("stm32f746", reserve="cmsis")


def test_table_has_every_target():
    df = targets.table()
    assert list(df.index) == targets.names()
    assert df.loc["stm32h743", "SRAM_KB"] == 512
