"""Waveform features against direct formulas and known sine waves."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.model import ProfileRef, Waveform
from edge_agent.reduce import ReductionError, block_features, ragged_features, waveform_features

SETTINGS = settings(max_examples=60, deadline=None)
FS = 1_000.0


def sine(freq_hz: float, amplitude: float, n: int = 1_000, fs: float = FS, offset: float = 0.0,
         phase: float = 0.0) -> np.ndarray:
    t = np.arange(n) / fs
    return offset + amplitude * np.sin(2 * np.pi * freq_hz * t + phase)


def test_50_hz_sine_at_1_khz() -> None:
    a = 3.0
    f = block_features(sine(50, a)[None, :], FS, bands=[(0, 45), (45, 55), (55, 500.1)])
    assert f.dominant_hz[0] == 50.0
    assert f.rms[0] == pytest.approx(a / math.sqrt(2), rel=1e-9)
    assert f.crest_factor[0] == pytest.approx(math.sqrt(2), rel=1e-6)
    assert f.peak[0] == pytest.approx(a, rel=1e-6)
    assert f.peak_to_peak[0] == pytest.approx(2 * a, rel=1e-6)
    # The sine's power a**2 / 2 lies in the 45–55 Hz band.
    assert f.band_energy[0].tolist() == pytest.approx([0.0, a * a / 2, 0.0], abs=1e-9)


@pytest.mark.parametrize(("freq", "amp", "phase"), [(50, 1.0, 0.0), (120, 2.5, 1.0), (333, 0.1, 2.0)])
def test_many_sines_in_one_call(freq, amp, phase) -> None:
    blocks = np.stack([sine(freq, amp, phase=phase), sine(7, 1.0), np.zeros(1_000)])
    f = block_features(blocks, np.array([FS, FS, FS]), bands=[(freq - 5, freq + 5)])
    assert f.dominant_hz[:2].tolist() == [freq, 7.0]
    assert f.rms[0] == pytest.approx(amp / math.sqrt(2), rel=1e-9)
    assert f.crest_factor[0] == pytest.approx(math.sqrt(2), rel=1e-2)  # sampled peak may miss the crest
    assert f.band_energy[0, 0] == pytest.approx(amp * amp / 2, rel=1e-9)
    # An all-zero block has no dominant frequency and no crest factor.
    assert math.isnan(f.dominant_hz[2])
    assert math.isnan(f.crest_factor[2])
    assert f.rms[2] == 0.0


def test_dc_offset_counts_in_rms_but_not_in_the_spectrum() -> None:
    f = block_features(sine(50, 1.0, offset=2.0)[None, :], FS, bands=[(0, 500.1)])
    assert f.rms[0] == pytest.approx(math.sqrt(4 + 0.5))
    assert f.dominant_hz[0] == 50.0
    assert f.band_energy[0, 0] == pytest.approx(0.5)  # the variance: DC removed


def reference(samples: list[float], fs: float, bands):
    """Direct formulas in plain Python (DFT written out, periodic Hann window)."""
    n = len(samples)
    rms = math.sqrt(math.fsum(x * x for x in samples) / n)
    peak = max(abs(x) for x in samples)
    mean = math.fsum(samples) / n
    w = [0.5 - 0.5 * math.cos(2 * math.pi * k / n) for k in range(n)]
    y = [(x - mean) * wk for x, wk in zip(samples, w, strict=True)]
    sw2 = math.fsum(wk * wk for wk in w)
    power = []
    for k in range(n // 2 + 1):
        xk = sum(y[j] * cmath.exp(-2j * math.pi * k * j / n) for j in range(n))
        p = abs(xk) ** 2 * 2 / (n * sw2)
        if k == 0 or (n % 2 == 0 and k == n // 2):
            p /= 2
        power.append(p)
    energies = [math.fsum(p for k, p in enumerate(power) if lo <= k * fs / n < hi) for lo, hi in bands]
    return rms, peak, max(samples) - min(samples), power, energies


@SETTINGS
@given(blocks=st.integers(1, 4).flatmap(lambda n: st.lists(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=n * 8, max_size=n * 8), min_size=1, max_size=4)),
    fs=st.sampled_from([100.0, 1_000.0, 8_000.0]))
def test_matches_direct_formulas(blocks, fs) -> None:
    bands = [(0.0, fs / 8), (fs / 8, fs / 4), (fs / 4, fs)]
    f = block_features(np.array(blocks), fs, bands=bands)
    for i, samples in enumerate(blocks):
        rms, peak, p2p, power, energies = reference(samples, fs, bands)
        scale = max(1.0, peak)
        assert f.rms[i] == pytest.approx(rms, rel=1e-9, abs=1e-12)
        assert f.peak[i] == peak
        assert f.peak_to_peak[i] == p2p
        assert f.band_energy[i].tolist() == pytest.approx(energies, rel=1e-6, abs=1e-9 * scale * scale)
        ac = power[1:]
        if max(ac) > 1e-9 * scale * scale:
            k = round(f.dominant_hz[i] * len(samples) / fs)
            assert ac[k - 1] == pytest.approx(max(ac), rel=1e-6)  # a largest bin (ties within rounding)
        if rms > 0:
            assert f.crest_factor[i] == pytest.approx(peak / rms, rel=1e-9)


def test_ragged_blocks_equal_their_single_block_results() -> None:
    rng = np.random.default_rng(5)
    blocks = [rng.normal(size=n) for n in (256, 100, 256, 3, 100, 1)]
    rates = np.array([1_000.0, 500.0, 2_000.0, 10.0, 500.0, 1.0])
    bands = [(0.0, 100.0), (100.0, 1_000.0)]
    f = ragged_features(blocks, rates, bands)
    assert f.n_samples.tolist() == [256, 100, 256, 3, 100, 1]
    for i, b in enumerate(blocks):
        one = block_features(b[None, :], rates[i], bands)
        for name in ("rms", "peak", "peak_to_peak", "crest_factor", "dominant_hz", "band_energy"):
            np.testing.assert_array_equal(getattr(f, name)[i], getattr(one, name)[0])
    assert math.isnan(f.dominant_hz[5])


def test_waveform_records() -> None:
    ref = ProfileRef("vibration", 1)
    short = tuple(sine(200, 1.0, n=400, fs=2_000).tolist())
    wf = [Waveform("pump-1", "vib_acc", 0, 1_000.0, tuple(sine(50, 2.0).tolist()), "m/s2", ref),
          Waveform("pump-2", "vib_acc", 0, 2_000.0, short, "m/s2", ref)]
    f = waveform_features(wf, bands=[(40, 60)])
    assert f.dominant_hz.tolist() == [50.0, 200.0]
    assert f.sample_rate_hz.tolist() == [1_000.0, 2_000.0]
    assert f.band_energy[:, 0] == pytest.approx([2.0, 0.0], abs=1e-9)


def test_bad_input() -> None:
    with pytest.raises(ReductionError, match="2-D"):
        block_features(np.zeros(8), FS)
    with pytest.raises(ReductionError, match="sample_rate_hz"):
        block_features(np.zeros((1, 8)), 0.0)
    with pytest.raises(ReductionError, match=r"bands\[0\]"):
        block_features(np.zeros((1, 8)), FS, bands=[(10, 5)])
    with pytest.raises(ReductionError, match="finite"):
        block_features(np.full((1, 8), np.nan), FS)
    assert len(block_features(np.zeros((0, 8)), FS)) == 0
    assert len(ragged_features([], FS)) == 0
