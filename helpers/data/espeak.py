"""espeak-ng through ctypes (from the ``espeakng-loader`` PyPI package), in a child process.

Taught in 04-micronets-dnas (where the synthetic keyword set comes from). The synthetic
keyword generator of :mod:`helpers.data.kws` says each utterance with
:func:`_synthesize`, which runs espeak-ng in a separate process (its C library keeps global
state). Imports no other module of the package.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: espeak-ng's output sample rate (Hz).
_ESPEAK_RATE = 22050

# --------------------------------------------------------------------------- espeak-ng via ctypes

def _espeak_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the synthetic KWS set needs the PyPI package espeakng-loader==0.2.4 "
                          "(`.venv/bin/pip install espeakng-loader==0.2.4`)") from e
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Espeak:
    """Minimal ctypes binding of libespeak-ng in synchronous (retrieval) mode.

    espeak-ng keeps waveform state (phase, flutter) between utterances, so its output
    depends on everything said before in the process. The generator therefore runs it in
    a fresh child process and says the utterances in a fixed order; ``espeak_ng_SetRandSeed``
    fixes its internal noise generator (otherwise seeded from the clock).
    """

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    POS_CHARACTER = 1
    CHARS_UTF8 = 1
    RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4

    def __init__(self):
        import ctypes

        lib_path, data_path = _espeak_paths()
        self._ct = ctypes
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate != _ESPEAK_RATE:
            raise RuntimeError(f"espeak-ng initialisation failed (returned {rate}, expected {_ESPEAK_RATE} Hz)")
        self._chunks: list[np.ndarray] = []
        cb_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

        def _callback(wav, n, _events):
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._cb = cb_type(_callback)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._cb)
        self.lib = lib

    def say(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, rand_seed: int) -> np.ndarray:
        lib = self.lib
        err = lib.espeak_SetVoiceByName(voice.encode())
        if err != 0:
            raise ValueError(f"espeak-ng voice {voice!r} not found (error {err})")
        lib.espeak_SetParameter(self.RATE, int(rate), 0)
        lib.espeak_SetParameter(self.PITCH, int(pitch), 0)
        lib.espeak_SetParameter(self.RANGE, int(pitch_range), 0)
        lib.espeak_ng_SetRandSeed(int(rand_seed))
        self._chunks = []
        buf = text.encode() + b"\0"
        err = lib.espeak_Synth(buf, len(buf), 0, self.POS_CHARACTER, 0, self.CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with error {err} for {text!r}")
        lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def _synth_worker(jobs_path: str, out_path: str) -> None:
    """Child-process entry point: say every job of ``jobs_path`` (JSON) in order, save to ``out_path``."""
    import json
    import sys

    jobs = json.loads(Path(jobs_path).read_text())
    engine = _Espeak()
    utts = []
    for i, job in enumerate(jobs):
        utts.append(engine.say(*job))
        if (i + 1) % 50 == 0 or i + 1 == len(jobs):
            print(i + 1, flush=True, file=sys.stdout)
    lengths = np.array([u.size for u in utts], np.int64)
    np.savez(out_path, audio=np.concatenate(utts) if utts else np.zeros(0, np.int16), lengths=lengths)


def _synthesize(jobs: list[tuple], progress: bool, desc: str) -> list[np.ndarray]:
    """Say ``jobs`` in order in ONE fresh Python process (deterministic, see :class:`_Espeak`)."""
    import json
    import subprocess
    import sys
    import tempfile

    from tqdm.auto import tqdm

    _espeak_paths()  # fail early, in this process, with the install hint
    root = str(Path(__file__).resolve().parent.parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="kws_espeak_") as tmp:
        jobs_path, out_path = os.path.join(tmp, "jobs.json"), os.path.join(tmp, "utts.npz")
        Path(jobs_path).write_text(json.dumps([list(j) for j in jobs]))
        code = f"from helpers.data.espeak import _synth_worker; _synth_worker({jobs_path!r}, {out_path!r})"
        with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) as proc, \
                tqdm(total=len(jobs), desc=desc, disable=not progress, unit="word") as bar:
            for line in proc.stdout:
                if line.strip().isdigit():
                    bar.update(int(line) - bar.n)
            err = proc.stderr.read()
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng worker failed (exit {proc.returncode}):\n{err[-2000:]}")
        with np.load(out_path) as z:
            audio, lengths = z["audio"], z["lengths"]
    return np.split(audio, np.cumsum(lengths)[:-1]) if len(lengths) else []
