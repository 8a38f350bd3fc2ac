"""Waveform blocks (vibration, sound) to a few features each, many blocks at once.

Per block of samples ``x`` (the metric's unit, e.g. m/s² or Pa) taken at ``fs`` Hz:

- ``rms = sqrt(mean(x**2))`` — of the raw samples, DC included (a constant offset raises it);
- ``peak = max(abs(x))``; ``peak_to_peak = max(x) - min(x)``;
- ``crest_factor = peak / rms`` (dimensionless; NaN for an all-zero block); sqrt(2) for a sine;
- the spectrum is taken of the block with its mean removed, times a periodic Hann window, by
  ``rfft``;
- ``dominant_hz``: frequency of the largest spectral magnitude, DC bin excluded, resolution
  ``fs / n`` (the bin centre, no interpolation; the lowest bin wins a tie; NaN for a constant
  block or one of fewer than 2 samples);
- ``band_energy[:, j]``: the part of the block's mean square (unit²) whose frequency lies in band
  ``j`` = ``[lo_hz, hi_hz)``. Bins are power-normalised for the Hann window
  (``2 |X_k|**2 / (n * sum(w**2))``, DC and Nyquist bins not doubled), so a sine of amplitude
  ``A`` well inside a band gives about ``A**2 / 2`` there, and bands covering ``[0, fs/2]`` add up
  to about the variance of the block.

Equal-length blocks are a 2-D array processed in one go; ragged blocks are grouped by length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from edge_agent.model import Waveform
from edge_agent.reduce.columns import FloatArray, IntArray, ReductionError

Band = tuple[float, float]


@dataclass(slots=True, frozen=True, eq=False)
class WaveformFeatures:
    """Features of each block, aligned with the input blocks (see the module docstring for units)."""

    n_samples: IntArray
    sample_rate_hz: FloatArray
    rms: FloatArray
    peak: FloatArray
    peak_to_peak: FloatArray
    crest_factor: FloatArray
    dominant_hz: FloatArray
    band_energy: FloatArray  # shape (n_blocks, len(bands))
    bands: tuple[Band, ...]

    def __len__(self) -> int:
        return len(self.rms)



def _check_bands(bands: Sequence[Band]) -> tuple[Band, ...]:
    out = []
    for j, band in enumerate(bands):
        lo, hi = float(band[0]), float(band[1])
        if not (0 <= lo < hi):
            raise ReductionError(f"bands[{j}]: need 0 <= lo_hz < hi_hz, got ({lo}, {hi})")
        out.append((lo, hi))
    return tuple(out)


def block_features(
    blocks: ArrayLike, sample_rate_hz: ArrayLike, bands: Sequence[Band] = ()
) -> WaveformFeatures:
    """Features of equal-length blocks: ``blocks`` has shape (n_blocks, n_samples).

    ``sample_rate_hz`` is one rate for all blocks or one per block.

    Raises:
        ReductionError: blocks not 2-D, empty or non-finite samples, a non-positive sample rate,
            or a malformed band.
    """
    x = np.asarray(blocks, dtype=np.float64)
    if x.ndim != 2:
        raise ReductionError(f"blocks: must be 2-D (n_blocks, n_samples), got shape {x.shape}")
    nb, n = x.shape
    if n == 0 and nb:
        raise ReductionError("blocks: a block has no samples")
    if not np.isfinite(x).all():
        raise ReductionError("blocks: samples must be finite")
    fs = np.broadcast_to(np.asarray(sample_rate_hz, dtype=np.float64), (nb,)).copy()
    if nb and not (fs > 0).all():
        raise ReductionError("sample_rate_hz: must be positive")
    bands_t = _check_bands(bands)
    if nb == 0:
        e = np.empty(0, np.float64)
        return WaveformFeatures(np.empty(0, np.int64), e, e, e, e, e, e,
                                np.empty((0, len(bands_t)), np.float64), bands_t)

    rms = np.sqrt(np.mean(x * x, axis=1))
    peak = np.max(np.abs(x), axis=1)
    p2p = np.max(x, axis=1) - np.min(x, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        crest = np.where(rms > 0, peak / np.where(rms > 0, rms, 1.0), np.nan)

    # Periodic ("DFT-even") Hann: 0.5 - 0.5 cos(2 pi k / n). Unlike the symmetric np.hanning it
    # puts a bin-centred sine's power exactly into three bins summing to A**2 / 2.
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n) if n > 1 else np.ones(n)
    spec = np.fft.rfft((x - x.mean(axis=1, keepdims=True)) * window, axis=1)
    power = spec.real**2 + spec.imag**2
    norm = n * float(np.sum(window * window))
    power *= 2.0 / norm
    power[:, 0] /= 2.0  # DC is not mirrored
    if n % 2 == 0:
        power[:, -1] /= 2.0  # neither is the Nyquist bin of an even-length block
    k = np.arange(power.shape[1], dtype=np.float64)
    bin_hz = k[None, :] * (fs / n)[:, None]
    if power.shape[1] > 1:
        ac = power[:, 1:]
        dominant = np.argmax(ac, axis=1) + 1
        dominant_hz = np.where(ac.max(axis=1) > 0, dominant * fs / n, np.nan)
    else:
        dominant_hz = np.full(nb, np.nan)
    energy = np.empty((nb, len(bands_t)), np.float64)
    for j, (lo, hi) in enumerate(bands_t):
        inside = (bin_hz >= lo) & (bin_hz < hi)
        energy[:, j] = np.sum(power * inside, axis=1)
    return WaveformFeatures(
        n_samples=np.full(nb, n, np.int64),
        sample_rate_hz=fs,
        rms=rms,
        peak=peak,
        peak_to_peak=p2p,
        crest_factor=crest,
        dominant_hz=dominant_hz,
        band_energy=energy,
        bands=bands_t,
    )


def ragged_features(
    blocks: Sequence[ArrayLike], sample_rate_hz: ArrayLike, bands: Sequence[Band] = ()
) -> WaveformFeatures:
    """Features of blocks of different lengths (grouped by length, one 2-D pass per length).

    Output rows are aligned with ``blocks``.

    Raises:
        ReductionError: as :func:`block_features`, or a block that is not 1-D.
    """
    arrays = [np.asarray(b, dtype=np.float64) for b in blocks]
    for i, a in enumerate(arrays):
        if a.ndim != 1:
            raise ReductionError(f"blocks[{i}]: must be 1-D, got shape {a.shape}")
    nb = len(arrays)
    fs = np.broadcast_to(np.asarray(sample_rate_hz, dtype=np.float64), (nb,))
    bands_t = _check_bands(bands)
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    cols = {name: np.empty(nb, np.float64) for name in
            ("sample_rate_hz", "rms", "peak", "peak_to_peak", "crest_factor", "dominant_hz")}
    energy = np.empty((nb, len(bands_t)), np.float64)
    for length in np.unique(lengths).tolist():
        idx = np.flatnonzero(lengths == length)
        part = block_features(np.stack([arrays[i] for i in idx]), fs[idx], bands_t)
        for name, col in cols.items():
            col[idx] = getattr(part, name)
        energy[idx] = part.band_energy
    return WaveformFeatures(n_samples=lengths, band_energy=energy, bands=bands_t, **cols)


def waveform_features(waveforms: Sequence[Waveform], bands: Sequence[Band] = ()) -> WaveformFeatures:
    """Features of decoded :class:`~edge_agent.model.Waveform` records, aligned with them."""
    return ragged_features(
        [np.asarray(w.samples, dtype=np.float64) for w in waveforms],
        np.array([w.sample_rate_hz for w in waveforms], dtype=np.float64),
        bands,
    )
