/* A PBX's first steps with libxpp, in C: an embedded emulated Astribank, its FXS line 1
 * taken off hook by the emulated phone, audio both ways, the event sequence checked.
 *
 *   cc -o call examples/c/call.c $(pkg-config --cflags --libs xpp)
 *   ./call            # exit status 0 when every check passed
 *
 * Events are read the way a PBX's own loop would: poll() on xpp_driver_event_fd(), then
 * xpp_driver_poll_event() until XPP_ERR_WOULD_BLOCK. */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpp.h"

#define DAHDI_EVENT_ONHOOK 1
#define DAHDI_EVENT_RINGOFFHOOK 2
#define FXS1 1

static int failures;

static void check(const char *what, int ok) {
  printf("check: %s: %s\n", what, ok ? "PASS" : "FAIL");
  if (!ok) failures++;
}

static int must(const char *what, xpp_result r) {
  if (r != XPP_OK) {
    printf("%s: %s (%u)\n", what, xpp_result_text(r), (unsigned)r);
    failures++;
    return 0;
  }
  return 1;
}

/* Waits up to timeout_ms for an event matching kind (and channel/event when not 0). */
static int wait_event(const xpp_driver *drv, uint32_t kind, uint32_t channo, int32_t event, int timeout_ms) {
  int fd;
  if (!must("event fd", xpp_driver_event_fd(drv, &fd))) return 0;
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    xpp_event e;
    while (xpp_driver_poll_event(drv, &e) == XPP_OK) {
      if (e.kind == XPP_EVENT_CHANNEL) printf("event: channel %u event %d\n", e.channo, e.event);
      if (e.kind == kind && (channo == 0 || e.channo == channo) && (event == 0 || e.event == event)) return 1;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 10);
  }
  return 0;
}

/* G.711 mu-law encoding of one linear sample. */
static uint8_t mulaw(int16_t pcm) {
  const int bias = 0x84, clip = 32635;
  int sign = (pcm >> 8) & 0x80, s = pcm;
  if (sign) s = -s;
  if (s > clip) s = clip;
  s += bias;
  int exponent = 7;
  for (int mask = 0x4000; (s & mask) == 0 && exponent > 0; mask >>= 1) exponent--;
  int mantissa = (s >> (exponent + 3)) & 0x0F;
  return (uint8_t)~(sign | (exponent << 4) | mantissa);
}

int main(void) {
  printf("%s (header %d.%d.%d)\n", xpp_version(), XPP_VERSION_MAJOR, XPP_VERSION_MINOR, XPP_VERSION_PATCH);
  check("a NULL out-parameter is refused", xpp_emulator_new(0, NULL) == XPP_ERR_NULL_ARGUMENT);

  xpp_emulator *emu = NULL;
  xpp_driver *drv = NULL;
  if (!must("emulator", xpp_emulator_new(0, &emu))) return 1;
  if (!must("open", xpp_driver_open_emulator(emu, NULL, &drv))) {
    xpp_emulator_free(emu);
    return 1;
  }
  check("device ready", wait_event(drv, XPP_EVENT_DEVICE_READY, 0, 0, 5000));

  size_t spans = 0, chans = 0;
  must("span count", xpp_driver_span_count(drv, &spans));
  must("channel count", xpp_driver_channel_count(drv, &chans));
  for (size_t i = 0; i < spans; i++) {
    xpp_span_info s;
    if (must("span", xpp_driver_span_info(drv, i, &s)))
      printf("span %u: %s, channels %u-%u, alarms 0x%x\n", s.spanno, s.name, s.basechan, s.basechan + s.channels - 1, s.alarms);
  }
  xpp_chan_info c1;
  check("channel 1 listed", must("channel", xpp_driver_channel_info(drv, 0, &c1)) && c1.channo == FXS1);
  printf("channel %u: %s, sig 0x%x\n", c1.channo, c1.name, c1.sig);
  check("spans and channels listed", spans >= 2 && chans >= 16);
  xpp_chan_info unchanged = c1;
  check("an index past the end is refused, out unchanged",
        xpp_driver_channel_info(drv, chans, &c1) == XPP_ERR_NO_SUCH_CHANNEL && memcmp(&c1, &unchanged, sizeof c1) == 0);
  char err[160] = "";
  check("a bad system.conf is refused with its place",
        xpp_driver_apply_system_conf(drv, "fxoks=1-8\nbogus=1\n", err, sizeof err) == XPP_ERR_CONFIG && strstr(err, "system.conf:2") != NULL);
  printf("system.conf error: %s\n", err);

  /* The phone goes off hook: RINGOFFHOOK on channel 1. */
  must("phone off hook", xpp_emulator_phone_hook(emu, 0, 0, 1));
  check("RINGOFFHOOK on channel 1", wait_event(drv, XPP_EVENT_CHANNEL, FXS1, DAHDI_EVENT_RINGOFFHOOK, 3000));

  /* Phone -> PBX: the phone plays 1 kHz; the PBX reads chunks that are not silence. */
  must("phone plays", xpp_emulator_phone_play(emu, 0, 0, 1000));
  int loud = 0;
  for (int tick = 0; tick < 300; tick++) {
    uint8_t chunk[8];
    if (xpp_driver_read_chunk_blocking(drv, FXS1, chunk, 1000) != XPP_OK) break;
    for (int i = 0; i < 8; i++)
      if (chunk[i] != 0xFF && chunk[i] != 0x7F && chunk[i] != 0xFE && chunk[i] != 0x7E) loud++;
  }
  check("the PBX hears the phone", loud > 1000);
  must("phone silent", xpp_emulator_phone_play(emu, 0, 0, 0));

  /* PBX -> phone: 500 ms of 2 kHz, one chunk per tick; the phone hears it. */
  int has = 0, level = 0;
  must("heard (reset)", xpp_emulator_phone_heard(emu, 0, 0, 2000, &has, &level));
  double phase = 0;
  for (int tick = 0; tick < 500; tick++) {
    uint8_t in[8], out[8];
    if (xpp_driver_read_chunk_blocking(drv, FXS1, in, 1000) != XPP_OK) break;
    for (int i = 0; i < 8; i++) {
      out[i] = mulaw((int16_t)(8000.0 * sin(phase)));
      phase += 2.0 * M_PI * 2000.0 / 8000.0;
    }
    xpp_driver_write_chunk(drv, FXS1, out);
  }
  must("heard", xpp_emulator_phone_heard(emu, 0, 0, 2000, &has, &level));
  printf("the phone heard 2 kHz: %d, level %.1f dB\n", has, level / 100.0);
  check("the phone hears the PBX", has == 1);

  /* Hang-up: ONHOOK after the 1250 ms hang-up window. */
  must("phone on hook", xpp_emulator_phone_hook(emu, 0, 0, 0));
  check("ONHOOK on channel 1", wait_event(drv, XPP_EVENT_CHANNEL, FXS1, DAHDI_EVENT_ONHOOK, 4000));

  xpp_driver_free(drv);
  xpp_emulator_free(emu);
  printf("%s: %d check(s) failed\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
