/* tinyNAS emulator runtime: vector table, reset handler and the markers the
 * host-side harness (helpers/emulator.py) hooks.  No libc: startup copies
 * .data from flash, zeroes .bss, calls tn_main(), then parks in tn_done(). */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int tn_main(void);

volatile uint32_t tn_state;      /* last marker id (readable by a debugger) */

/* Called once after startup; the host writes the model input here. */
__attribute__((noinline)) void tn_ready(void) { tn_state = 0xFFFFFFFEu; }
/* Called between operators; the host starts a new per-op count at its entry. */
__attribute__((noinline)) void tn_marker(uint32_t id) { tn_state = id; }
/* End of the program: the host stops emulation at this address. */
__attribute__((noinline, noreturn)) void tn_done(void) {
  tn_state = 0xFFFFFFFFu;
  for (;;) { __asm volatile("" ::: "memory"); }
}

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  tn_main();
  tn_done();
}

/* Minimal vector table: initial SP and reset vector (enough for the emulator
 * and for a real part, where other vectors would be added). */
__attribute__((section(".isr_vector"), used))
const void *const tn_vectors[2] = {(const void *)&_estack, (const void *)Reset_Handler};

/* The compiler may emit calls to these for struct copies / zeroing. */
void *memcpy(void *d, const void *s, unsigned n) {
  uint8_t *dd = (uint8_t *)d; const uint8_t *ss = (const uint8_t *)s;
  while (n--) *dd++ = *ss++;
  return d;
}
void *memset(void *d, int c, unsigned n) {
  uint8_t *dd = (uint8_t *)d;
  while (n--) *dd++ = (uint8_t)c;
  return d;
}
