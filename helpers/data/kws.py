"""Keyword spotting data: Google Speech Commands v2 (MLPerf Tiny), or synthetic espeak-ng speech.

Taught in the keyword-spotting notebook (MicroNets' flagship task); registered as dataset
``"kws"`` in :mod:`helpers.data`. One entry point::

    d = helpers.data.kws.load_kws(seed=0)          # dict: x_train (N, 49, 10, 1) float32, y_train, ...
    print(d["source"])                        # says "SYNTHETIC" unless it is real Speech Commands

Classes are the 12 of MLPerf Tiny's KWS benchmark, in its label order (the order of
TensorFlow Datasets' ``speech_commands``, used by ``mlcommons/tiny`` ``get_dataset.py``)::

    down go left no off on right stop up yes silence unknown

Features are MLPerf Tiny's MFCCs, computed here in NumPy: 1 s at 16 kHz, peak-normalised,
30 ms Hann frames every 20 ms (49 frames), |FFT| over 512 points, 40 mel bands 20-4000 Hz
(TensorFlow's ``linear_to_mel_weight_matrix``), ``log(mel + 1e-6)``, DCT-II scaled as
``tf.signal.mfccs_from_log_mel_spectrograms``, first 10 coefficients -> (49, 10, 1).

Sources (``source=``):

``"speech_commands"``
    The real data set. Downloads the two official tarballs (2.3 GB + 0.1 GB) from
    ``download.tensorflow.org`` into ``cache_dir`` once, splits them as TFDS / MLPerf Tiny
    do (train = files in neither ``validation_list.txt`` nor ``testing_list.txt``;
    validation = ``validation_list.txt``; test = the separate official test set; silence
    for train/validation = 1 s windows, hop 0.5 s, of ``_background_noise_``, with
    ``running_tap.wav`` kept for validation) and caches the MFCCs as ``.npz``.
    Unavailable -> :class:`helpers.data.DatasetUnavailableError`.
``"synthetic"``
    Offline stand-in, clearly labelled: the 10 keywords, 30 other words ("unknown") and
    noise-only clips ("silence") spoken by espeak-ng (PyPI ``espeakng-loader``) voice
    variants - accents x timbres x pitch / pitch range / speed - with coloured noise at
    random SNR, random reverb, tilt/band-limiting, time shift and gain (with clipping).
    Timbre families are split disjointly (seeded) between train, validation and test, so
    test accuracy is measured on voices never heard in training. Seeded and cached.
``"auto"`` (default)
    Real Speech Commands if its features or files are in ``cache_dir``, else a download
    attempt (a 3 s probe first), else - only when the download site cannot be reached -
    the synthetic set, with a warning and a ``source`` string that says so.

Accuracy on the synthetic set is accuracy on synthetic speech: it is not comparable with
published Speech Commands numbers (MicroNets / MLPerf Tiny report ~95 % on the real set).

Taught in 04-micronets-dnas. May import: :mod:`helpers.data.errors`, :mod:`helpers.data.espeak`.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from helpers.data.errors import DatasetUnavailableError
from helpers.data.espeak import _ESPEAK_RATE, _espeak_paths, _synthesize

# --------------------------------------------------------------------------- constants

#: Bump when the synthetic generator's output changes (invalidates cached .npz files).
GENERATOR_VERSION = 1
#: Bump when the feature pipeline or the real-data split changes.
FEATURE_VERSION = 1

#: The 12 MLPerf Tiny KWS classes, in MLPerf Tiny's label order.
CLASS_NAMES = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
               "silence", "unknown")
KEYWORDS = CLASS_NAMES[:10]
SILENCE_INDEX = CLASS_NAMES.index("silence")
UNKNOWN_INDEX = CLASS_NAMES.index("unknown")

#: Words spoken for the "unknown" class: Speech Commands v2's 25 auxiliary words plus 5 more.
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree",
                 "wow", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "backward", "forward", "follow", "learn", "visual",
                 "hello", "water", "later", "open", "cancel")

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
WINDOW_SAMPLES = 480      # 30 ms
STRIDE_SAMPLES = 320      # 20 ms
FFT_LENGTH = 512
NUM_MEL_BINS = 40
MEL_LOW_HZ, MEL_HIGH_HZ = 20.0, 4000.0
NUM_MFCC = 10
NUM_FRAMES = 1 + (CLIP_SAMPLES - WINDOW_SAMPLES) // STRIDE_SAMPLES   # 49
FEATURE_SHAPE = (NUM_FRAMES, NUM_MFCC, 1)

SOURCES = ("auto", "speech_commands", "synthetic")

SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_TEST_URL = "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz"
_SC_DIR = "speech_commands_v0.02"
_SC_TEST_DIR = "speech_commands_test_set_v0.02"

#: espeak-ng base voices (accents) used by the synthetic generator.
BASE_VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
               "en-gb-x-gbcwmd", "en-us-nyc")
_DEFAULT_VARIANT = "default"        # the base voice with no "+variant"
_SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # of timbre families: train / val / test
_SPEAKERS_PER_VARIANT = 3           # (accent, pitch, range, speed) draws per variant


# --------------------------------------------------------------------------- public API

def load_kws(n_per_class: int | None = None, seed: int = 0, cache_dir: str | os.PathLike = "data/cache",
             source: str = "auto", progress: bool = True, *, n_val_per_class: int | None = None,
             n_test_per_class: int | None = None, download_timeout: float = 3.0) -> dict:
    """Load the 12-class keyword-spotting set as MFCC features (see the module docstring).

    Taught in the keyword-spotting notebook; ``helpers.data.load("kws")`` calls this.

    Args:
        n_per_class: training clips per class. Synthetic: default 150. Speech Commands:
            default ``None`` = every training clip (unknown dominates, as in MLPerf Tiny);
            an int keeps a seeded random subset of at most that many per class.
        seed: seeds voice split, clip parameters and subsets; same seed -> same arrays.
        cache_dir: folder for downloads and the ``.npz`` feature caches.
        source: ``"auto"``, ``"speech_commands"`` or ``"synthetic"``.
        progress: show ``tqdm`` progress bars.
        n_val_per_class, n_test_per_class: synthetic only; default ``max(4, n_per_class // 4)``.
        download_timeout: seconds for the reachability probe of the download site.

    Returns:
        dict with ``x_train, y_train, x_val, y_val, x_test, y_test`` (float32
        ``(N, 49, 10, 1)`` features, int64 labels), ``class_names`` (12 names),
        ``source`` (provenance; contains "SYNTHETIC" for generated data), ``synthetic``
        (bool) and, for synthetic data, ``voices_train/val/test`` (speaker descriptions)
        and ``variants_train/val/test`` (the disjoint espeak-ng timbre variants).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")
    for name, v in (("n_per_class", n_per_class), ("n_val_per_class", n_val_per_class),
                    ("n_test_per_class", n_test_per_class)):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    cache = Path(cache_dir)

    if source == "synthetic":
        return _load_synthetic(n_per_class, n_val_per_class, n_test_per_class, seed, cache, progress)
    if source == "speech_commands":
        return load_speech_commands(n_per_class, seed, cache, progress, allow_download=True)
    # auto: real data when cached or downloadable, synthetic only when the site is unreachable.
    if _speech_commands_available_locally(cache, n_per_class, seed):
        return load_speech_commands(n_per_class, seed, cache, progress, allow_download=False)
    reason = _probe_url(SPEECH_COMMANDS_URL, download_timeout)
    if reason is None:
        return load_speech_commands(n_per_class, seed, cache, progress, allow_download=True)
    warnings.warn(f"Speech Commands is not cached in {cache} and {SPEECH_COMMANDS_URL} is "
                  f"unreachable ({reason}); using the SYNTHETIC espeak-ng keyword set instead. "
                  "Accuracies on it are accuracies on synthetic speech.", stacklevel=2)
    d = _load_synthetic(n_per_class, n_val_per_class, n_test_per_class, seed, cache, progress)
    d["source"] += f" [source='auto': Speech Commands download unreachable: {reason}]"
    return d


def mfcc_features(audio: np.ndarray, normalize: bool = True, batch: int = 512) -> np.ndarray:
    """MLPerf Tiny KWS MFCCs of 1 s, 16 kHz clips: ``(N, 16000)`` -> float32 ``(N, 49, 10, 1)``.

    Taught in the keyword-spotting notebook. ``audio`` is float or int16 samples; with
    ``normalize`` each clip is divided by its peak |sample| first (MLPerf Tiny divides by
    the clip maximum). Matches TensorFlow's ``tf.signal`` pipeline used by MLPerf Tiny
    (Hann-windowed STFT 480/320/512, 40 mel bins 20-4000 Hz, log(x + 1e-6), scaled DCT-II).
    """
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != CLIP_SAMPLES:
        raise ValueError(f"audio must have shape (N, {CLIP_SAMPLES}) or ({CLIP_SAMPLES},), got {np.shape(audio)}")
    window = _hann(WINDOW_SAMPLES)
    mel = _mel_matrix()
    dct = _dct_matrix()
    out = np.empty((a.shape[0], NUM_FRAMES, NUM_MFCC), np.float32)
    for s in range(0, a.shape[0], batch):
        x = a[s:s + batch].astype(np.float32)
        if normalize:
            peak = np.abs(x).max(axis=1, keepdims=True)
            x = x / np.maximum(peak, 1e-9)
        frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW_SAMPLES, axis=1)[:, ::STRIDE_SAMPLES]
        spec = np.abs(np.fft.rfft(frames * window, n=FFT_LENGTH, axis=-1)).astype(np.float32)
        logmel = np.log(spec @ mel + 1e-6)
        out[s:s + batch] = logmel @ dct
    return out[..., None]


def voice_variants() -> list[str]:
    """The espeak-ng voice variants (timbres) shipped with ``espeakng-loader``, plus "default".
    Taught in 04-micronets-dnas.
    """
    data = Path(_espeak_paths()[1])
    names = sorted(p.name for p in (data / "voices" / "!v").iterdir()
                   if p.is_file() and re.fullmatch(r"[A-Za-z0-9_\-]+", p.name))
    return [_DEFAULT_VARIANT] + names


def variant_family(variant: str) -> str:
    """Timbre family of a variant ("klatt3" -> "klatt", "m3" stays "m3"): the unit of the split.
    Taught in 04-micronets-dnas.
    """
    if re.fullmatch(r"[mf]\d+", variant):
        return variant
    return re.sub(r"\d+$", "", variant.lower()) or variant.lower()


def split_variants(seed: int, variants: list[str] | None = None) -> dict[str, list[str]]:
    """Seeded disjoint split of voice variants into train / val / test by timbre family.
    Taught in 04-micronets-dnas.
    """
    variants = voice_variants() if variants is None else list(variants)
    fams = sorted({variant_family(v) for v in variants})
    rng = np.random.default_rng([seed, 7001])
    order = [fams[i] for i in rng.permutation(len(fams))]
    n_val = max(1, round(_SPLIT_FRACTIONS[1] * len(fams)))
    n_test = max(1, round(_SPLIT_FRACTIONS[2] * len(fams)))
    parts = {"test": set(order[:n_test]), "val": set(order[n_test:n_test + n_val]),
             "train": set(order[n_test + n_val:])}
    return {k: [v for v in variants if variant_family(v) in fams_k] for k, fams_k in parts.items()}


# --------------------------------------------------------------------------- features

def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (``tf.signal.hann_window`` default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _hz_to_mel(f):
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


def _mel_matrix() -> np.ndarray:
    """``tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20, 4000)`` in NumPy."""
    n_bins = FFT_LENGTH // 2 + 1
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, n_bins)[1:]
    spec_mel = _hz_to_mel(freqs)[:, None]
    edges = np.linspace(_hz_to_mel(MEL_LOW_HZ), _hz_to_mel(MEL_HIGH_HZ), NUM_MEL_BINS + 2)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    w = np.maximum(0.0, np.minimum((spec_mel - lower) / (center - lower),
                                   (upper - spec_mel) / (upper - center)))
    return np.vstack([np.zeros((1, NUM_MEL_BINS)), w]).astype(np.float32)


def _dct_matrix() -> np.ndarray:
    """DCT-II (unnormalised, ``2*sum``) scaled by ``1/sqrt(2*40)``, first 10 columns."""
    n = np.arange(NUM_MEL_BINS)[:, None]
    k = np.arange(NUM_MFCC)[None]
    return (2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * NUM_MEL_BINS))
            / np.sqrt(2.0 * NUM_MEL_BINS)).astype(np.float32)


# --------------------------------------------------------------------------- synthetic generator

def _speakers(variants: list[str], rng: np.random.Generator) -> list[dict]:
    out = []
    for v in variants:
        for _ in range(_SPEAKERS_PER_VARIANT):
            base = BASE_VOICES[rng.integers(len(BASE_VOICES))]
            sp = {"base": base, "variant": v,
                  "pitch": int(rng.integers(15, 86)), "range": int(rng.integers(10, 101)),
                  "rate": int(rng.integers(120, 231))}
            sp["voice"] = base if v == _DEFAULT_VARIANT else f"{base}+{v}"
            sp["name"] = f"{sp['voice']} pitch={sp['pitch']} range={sp['range']} rate={sp['rate']}"
            out.append(sp)
    return out


def _plan_split(split_id: int, n_per_class: int, speakers: list[dict], seed: int) -> tuple[np.ndarray, list]:
    """Labels and per-clip plans (speech job or None for silence) of one split, seeded per clip."""
    labels = np.repeat(np.arange(len(CLASS_NAMES)), n_per_class)
    labels = labels[np.random.default_rng([seed, split_id, 1]).permutation(len(labels))]
    plans = []
    for i, lab in enumerate(labels):
        rng = np.random.default_rng([seed, split_id, 2, i])
        if lab == SILENCE_INDEX:
            plans.append(None)
            continue
        word = CLASS_NAMES[lab] if lab < len(KEYWORDS) else UNKNOWN_WORDS[rng.integers(len(UNKNOWN_WORDS))]
        sp = speakers[rng.integers(len(speakers))]
        text = word + ("", ".", "!", "?")[rng.integers(4)]
        rate = int(np.clip(sp["rate"] * rng.uniform(0.88, 1.12), 80, 400))
        pitch = int(np.clip(sp["pitch"] + rng.normal(0, 5), 0, 100))
        prange = int(np.clip(sp["range"] + rng.normal(0, 8), 0, 100))
        plans.append((text, sp["voice"], rate, pitch, prange, int(rng.integers(1, 2**31 - 1))))
    return labels, plans


_RESAMPLE_FIR: np.ndarray | None = None


def _resample_filter() -> np.ndarray:
    """``resample_poly``'s default anti-aliasing FIR for 22050 -> 16000 Hz, designed once."""
    global _RESAMPLE_FIR
    if _RESAMPLE_FIR is None:
        from scipy import signal

        up, down = SAMPLE_RATE // 50, _ESPEAK_RATE // 50
        max_rate = max(up, down)
        _RESAMPLE_FIR = signal.firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    return _RESAMPLE_FIR


def _colored_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS noise with spectrum ~ 1/f^alpha (alpha ~ 0 white, 1 pink, 2 brown), slowly modulated."""
    alpha = (0.0, 1.0, 2.0)[rng.integers(3)] + rng.uniform(-0.3, 0.3)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (alpha / 2), n)
    if rng.random() < 0.5:  # amplitude modulation: non-stationary noise
        t = np.arange(n) / SAMPLE_RATE
        x *= 1.0 + rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * rng.uniform(0.3, 4.0) * t + rng.uniform(0, 6.3))
    if rng.random() < 0.15:  # mains hum
        t = np.arange(n) / SAMPLE_RATE
        f0 = (50.0, 60.0)[rng.integers(2)]
        x += rng.uniform(0.5, 3.0) * np.std(x) * sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h
                                                      for h in (1, 2, 3))
    return x / (np.std(x) + 1e-12)


def _render(utt: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """One 1 s, 16 kHz int16 clip: speech (or none) -> EQ -> reverb -> shift -> noise -> gain."""
    from scipy import signal

    n = CLIP_SAMPLES
    clip = np.zeros(n)
    speech_rms = 0.0
    if utt is not None and utt.size:
        x = signal.resample_poly(utt.astype(np.float64) / 32768.0, SAMPLE_RATE // 50, _ESPEAK_RATE // 50,
                                 window=_resample_filter())
        active = np.nonzero(np.abs(x) > 0.02 * np.abs(x).max())[0]
        x = x[max(0, active[0] - 160):active[-1] + 160]
        speech_rms = float(np.sqrt(np.mean(x ** 2)))
        if rng.random() < 0.5:  # spectral tilt (microphone / distance)
            a = rng.uniform(-0.9, 0.9)
            x = signal.lfilter([1.0, -a], [1.0], x)
        if rng.random() < 0.15:  # band-limited (telephone-like)
            sos = signal.butter(4, [rng.uniform(200, 500), rng.uniform(2800, 3800)], "bandpass",
                                fs=SAMPLE_RATE, output="sos")
            x = signal.sosfilt(sos, x)
        if rng.random() < 0.6:  # reverb: exponentially decaying random impulse response
            rt60 = rng.uniform(0.1, 0.8)
            m = int(min(rt60, 0.5) * SAMPLE_RATE)
            h = rng.standard_normal(m) * np.exp(-6.9 * np.arange(m) / (rt60 * SAMPLE_RATE))
            h *= rng.uniform(0.2, 1.0) / np.sqrt(np.sum(h ** 2))
            h[0] += 1.0
            x = signal.fftconvolve(x, h)
        x *= speech_rms / (np.sqrt(np.mean(x ** 2)) + 1e-12)
        if x.size > n:  # crop a random 1 s window of a long (slow / reverberant) utterance
            start = rng.integers(0, x.size - n + 1)
            x = x[start:start + n]
        off = rng.integers(0, n - x.size + 1)  # time shift within the 1 s window
        clip[off:off + x.size] = x
    noise = _colored_noise(rng, n)
    if utt is None:
        clip = noise
    else:
        snr_db = rng.uniform(0.0, 30.0)
        clip += noise * speech_rms / 10 ** (snr_db / 20)
    peak_db = rng.uniform(-40.0, 6.0)  # random gain; > 0 dBFS clips
    clip *= 10 ** (peak_db / 20) / (np.abs(clip).max() + 1e-12)
    return np.clip(np.round(clip * 32767), -32768, 32767).astype(np.int16)


def generate_synthetic_kws(n_per_class: int = 150, n_val_per_class: int | None = None,
                           n_test_per_class: int | None = None, seed: int = 0, progress: bool = True,
                           return_audio: bool = False) -> dict:
    """Generate the synthetic espeak-ng keyword set (no cache; :func:`load_kws` caches it).

    Taught in the keyword-spotting notebook. Same arguments give the same arrays. With
    ``return_audio`` the int16 16 kHz clips come back too (``audio_train`` ...), e.g. to
    listen to them with ``IPython.display.Audio(clip, rate=16000)``.
    """
    from tqdm.auto import tqdm

    n_val = max(4, n_per_class // 4) if n_val_per_class is None else n_val_per_class
    n_test = max(4, n_per_class // 4) if n_test_per_class is None else n_test_per_class
    parts = split_variants(seed)
    out: dict = {}
    plans_all, labels_all = [], {}
    for split_id, (split, n) in enumerate((("train", n_per_class), ("val", n_val), ("test", n_test))):
        speakers = _speakers(parts[split], np.random.default_rng([seed, split_id, 0]))
        labels, plans = _plan_split(split_id, n, speakers, seed)
        labels_all[split] = labels
        plans_all.append((split, split_id, plans))
        out[f"voices_{split}"] = [s["name"] for s in speakers]
        out[f"variants_{split}"] = list(parts[split])
    jobs = [p for _, _, plans in plans_all for p in plans if p is not None]
    utts = iter(_synthesize(jobs, progress, "espeak-ng"))
    for split, split_id, plans in plans_all:
        audio = np.empty((len(plans), CLIP_SAMPLES), np.int16)
        for i, p in enumerate(tqdm(plans, desc=f"render {split}", disable=not progress, unit="clip")):
            audio[i] = _render(None if p is None else next(utts), np.random.default_rng([seed, split_id, 3, i]))
        out[f"x_{split}"] = mfcc_features(audio)
        out[f"y_{split}"] = labels_all[split].astype(np.int64)
        if return_audio:
            out[f"audio_{split}"] = audio
    out["class_names"] = list(CLASS_NAMES)
    out["synthetic"] = True
    out["source"] = (f"SYNTHETIC speech - NOT Google Speech Commands: espeak-ng formant TTS "
                     f"(espeakng-loader), generator v{GENERATOR_VERSION}, seed {seed}; "
                     f"{n_per_class}/{n_val}/{n_test} clips per class train/val/test; "
                     f"{len(parts['train'])}/{len(parts['val'])}/{len(parts['test'])} disjoint voice "
                     f"variants; noise, reverb, time shift; accuracy here is on synthetic speech")
    return out


def _load_synthetic(n_per_class, n_val_per_class, n_test_per_class, seed, cache: Path, progress) -> dict:
    n = 150 if n_per_class is None else int(n_per_class)
    nv = max(4, n // 4) if n_val_per_class is None else int(n_val_per_class)
    nt = max(4, n // 4) if n_test_per_class is None else int(n_test_per_class)
    path = cache / f"kws_synthetic_g{GENERATOR_VERSION}f{FEATURE_VERSION}_n{n}-{nv}-{nt}_seed{seed}.npz"
    if path.exists():
        return _read_npz(path)
    d = generate_synthetic_kws(n, nv, nt, seed, progress)
    _write_npz(path, d)
    return d


# --------------------------------------------------------------------------- cache files

_LIST_KEYS = ("class_names", "voices_train", "voices_val", "voices_test",
              "variants_train", "variants_val", "variants_test")


def _write_npz(path: Path, d: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: v for k, v in d.items() if k.startswith(("x_", "y_"))}
    for k in _LIST_KEYS:
        if k in d:
            arrays[k] = np.array(d[k], dtype=str)
    arrays["source"] = np.array(d["source"])
    arrays["synthetic"] = np.array(bool(d["synthetic"]))
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _read_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    for k in _LIST_KEYS:
        if k in d:
            d[k] = [str(s) for s in d[k]]
    d["source"] = str(d["source"]) + f" [cached: {path.name}]"
    d["synthetic"] = bool(d["synthetic"])
    return d


# --------------------------------------------------------------------------- real Speech Commands

def _sc_cache_path(cache: Path, n_per_class, seed) -> Path:
    tag = "all" if n_per_class is None else f"n{int(n_per_class)}_seed{seed}"
    return cache / f"kws_speech_commands_v0.02_f{FEATURE_VERSION}_{tag}.npz"


def _speech_commands_available_locally(cache: Path, n_per_class, seed) -> bool:
    if _sc_cache_path(cache, n_per_class, seed).exists():
        return True
    have_train = (cache / _SC_DIR / "validation_list.txt").exists() or (cache / (_SC_DIR + ".tar.gz")).exists()
    have_test = (cache / _SC_TEST_DIR).is_dir() or (cache / (_SC_TEST_DIR + ".tar.gz")).exists()
    return have_train and have_test


def _probe_url(url: str, timeout: float) -> str | None:
    """None if ``url`` answers within ``timeout`` s, else the reason it did not."""
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            if r.status >= 400:
                return f"HTTP {r.status}"
        return None
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def _download(url: str, dest: Path, progress: bool, timeout: float = 60.0) -> None:
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f, \
            tqdm(total=int(r.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                 desc=f"download {dest.name}", disable=not progress) as bar:
        while True:
            block = r.read(1 << 20)
            if not block:
                break
            f.write(block)
            bar.update(len(block))
    os.replace(part, dest)


def _extract(tar_path: Path, dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    with tarfile.open(tar_path) as t:
        try:
            t.extractall(part, filter="data")
        except TypeError:  # pragma: no cover - Python without extraction filters
            t.extractall(part)
    os.replace(part, dest)


def _ensure_speech_commands(cache: Path, progress: bool, allow_download: bool) -> tuple[Path, Path]:
    dirs = []
    for name, url in ((_SC_DIR, SPEECH_COMMANDS_URL), (_SC_TEST_DIR, SPEECH_COMMANDS_TEST_URL)):
        d, tar = cache / name, cache / (name + ".tar.gz")
        if not d.is_dir():
            if not tar.exists():
                if not allow_download:
                    raise FileNotFoundError(tar)
                _download(url, tar, progress)
            _extract(tar, d)
            tar.unlink()  # the extracted folder is what is used; saves 2.3 GB
        dirs.append(d)
    return dirs[0], dirs[1]


def _read_wav(path: Path) -> np.ndarray:
    from scipy.io import wavfile

    rate, x = wavfile.read(path)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: expected {SAMPLE_RATE} Hz, got {rate}")
    return x if x.ndim == 1 else x[:, 0]


def _pad(x: np.ndarray) -> np.ndarray:
    out = np.zeros(CLIP_SAMPLES, np.int16)
    out[:min(x.size, CLIP_SAMPLES)] = x[:CLIP_SAMPLES]
    return out


def _label_of(word: str) -> int:
    if word in KEYWORDS:
        return CLASS_NAMES.index(word)
    if word in ("_silence_", "_background_noise_"):
        return SILENCE_INDEX
    return UNKNOWN_INDEX


def _data_root(d: Path) -> Path:
    """``d`` itself, or its only sub-folder when a tarball wrapped everything in one."""
    if any(d.glob("*/*.wav")):
        return d
    subs = [p for p in d.iterdir() if p.is_dir()] if d.is_dir() else []
    return subs[0] if len(subs) == 1 else d


def speech_commands_split(train_dir: str | os.PathLike, test_dir: str | os.PathLike) -> dict:
    """The TFDS / MLPerf Tiny split of extracted Speech Commands v0.02 folders.

    Returns ``{"train"|"val"|"test": [(path, label, start_sample_or_None), ...]}``; background
    noise files become 1 s silence windows (hop 0.5 s): ``running_tap.wav`` -> validation, the
    others -> train. Taught in the keyword-spotting notebook (how the real split is made).
    """
    train_dir, test_dir = _data_root(Path(train_dir)), _data_root(Path(test_dir))

    def read_list(name):
        return set((train_dir / name).read_text().split())

    val_list, test_list = read_list("validation_list.txt"), read_list("testing_list.txt")
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for p in sorted(train_dir.glob("*/*.wav")):
        rel, word = f"{p.parent.name}/{p.name}", p.parent.name
        if word == "_background_noise_":
            split = "val" if p.name == "running_tap.wav" else "train"
            n = _read_wav(p).size
            splits[split] += [(p, SILENCE_INDEX, s) for s in range(0, n - SAMPLE_RATE, SAMPLE_RATE // 2)]
        elif rel in val_list:
            splits["val"].append((p, _label_of(word), None))
        elif rel not in test_list:
            splits["train"].append((p, _label_of(word), None))
    splits["test"] = [(p, _label_of(p.parent.name), None) for p in sorted(test_dir.glob("*/*.wav"))]
    return splits


def load_speech_commands(n_per_class: int | None = None, seed: int = 0,
                         cache_dir: str | os.PathLike = "data/cache", progress: bool = True,
                         allow_download: bool = True) -> dict:
    """Real Google Speech Commands v0.02, MLPerf Tiny 12-class split, as MFCC features.

    Taught in the keyword-spotting notebook. ``n_per_class`` caps the *training* clips per
    class (seeded subset); validation and test are always complete. Raises
    :class:`helpers.data.DatasetUnavailableError` when the files can be neither found in
    ``cache_dir`` nor downloaded.
    """
    from tqdm.auto import tqdm

    cache = Path(cache_dir)
    path = _sc_cache_path(cache, n_per_class, seed)
    if path.exists():
        return _read_npz(path)
    try:
        train_dir, test_dir = _ensure_speech_commands(cache, progress, allow_download)
    except (OSError, urllib.error.URLError) as e:

        raise DatasetUnavailableError(
            f"Speech Commands v0.02 is not in {cache} and could not be downloaded from "
            f"{SPEECH_COMMANDS_URL} ({type(e).__name__}: {e}). Download it and its test set "
            f"({SPEECH_COMMANDS_TEST_URL}) into {cache}, or use source='synthetic'.") from e
    splits = speech_commands_split(train_dir, test_dir)
    if n_per_class is not None:
        rng = np.random.default_rng([seed, 4242])
        items = splits["train"]
        labels = np.array([lab for _, lab, _ in items])
        keep = np.concatenate([rng.permutation(np.nonzero(labels == c)[0])[:n_per_class]
                               for c in range(len(CLASS_NAMES))])
        splits["train"] = [items[i] for i in np.sort(keep)]
    d: dict = {}
    bg_cache: dict = {}
    for split, items in splits.items():
        audio = np.empty((len(items), CLIP_SAMPLES), np.int16)
        for i, (p, _, start) in enumerate(tqdm(items, desc=f"read {split}", disable=not progress, unit="wav")):
            if start is None:
                audio[i] = _pad(_read_wav(p))
            else:
                if p not in bg_cache:
                    bg_cache[p] = _read_wav(p)
                audio[i] = _pad(bg_cache[p][start:start + SAMPLE_RATE])
        d[f"x_{split}"] = mfcc_features(audio)
        d[f"y_{split}"] = np.array([lab for _, lab, _ in items], np.int64)
    d["class_names"] = list(CLASS_NAMES)
    d["synthetic"] = False
    counts = "/".join(str(len(splits[s])) for s in ("train", "val", "test"))
    d["source"] = (f"Google Speech Commands v0.02 (real recordings, CC BY 4.0), MLPerf Tiny 12-class "
                   f"split (TFDS speech_commands), {counts} clips train/val/test"
                   + ("" if n_per_class is None else f", train capped at {n_per_class}/class (seed {seed})")
                   + "; MFCC 49x10")
    _write_npz(path, d)
    return d


def fingerprint(d: dict) -> str:
    """sha256 over a loaded set's feature and label arrays (for reproducibility checks).
    Taught in 04-micronets-dnas.
    """
    h = hashlib.sha256()
    for k in sorted(k for k in d if k.startswith(("x_", "y_"))):
        h.update(k.encode())
        h.update(np.ascontiguousarray(d[k]).tobytes())
    return h.hexdigest()


__all__ = ["CLASS_NAMES", "KEYWORDS", "UNKNOWN_WORDS", "load_kws", "mfcc_features",
           "generate_synthetic_kws", "load_speech_commands", "speech_commands_split",
           "voice_variants", "variant_family", "split_variants", "fingerprint"]

