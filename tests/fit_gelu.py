"""Fit the float32 GELU's coefficients (``numclip.nn.activations._TANH_R``); run once, by hand.

    python tests/fit_gelu.py

The normal distribution function is written as ``Phi(x) = (1 + tanh(h(x))) / 2`` with
``h(x) = atanh(erf(x / sqrt 2))``, an odd function, and ``h(x) / x`` is fitted by a
polynomial ``R`` of degree 6 in ``x**2`` on ``[0, 6]``: the error that matters is Phi's,
``(1 - tanh(h)**2) / 2`` times h's, so the fit is weighted by that factor and reweighted
(Lawson's iteration) towards the smallest largest error.  At 6, h is near 12 and tanh has
rounded to +-1 in float32; the fitted R increases on [0, inf), so beyond 6 it stays there
and no input needs clipping (``tests/test_nn.py`` checks both).  With two coefficients
the same form is GELU's well-known tanh approximation, ``sqrt(2/pi) (x + 0.044715 x**3)``.

Prints the coefficients (lowest power first) and the float32 errors that
``tests/test_nn.py`` bounds.  Needs only NumPy and SciPy.
"""

import numpy as np
import scipy.special

CLIP = 6.0
DEGREE = 6  # in x**2: seven coefficients


def fit():
    x = np.linspace(1e-4, CLIP, 200_001)
    tail = scipy.special.erfc(x / np.sqrt(2))  # 1 - erf, kept exact far out
    h = 0.5 * np.log((2 - tail) / tail)  # atanh(erf(x / sqrt 2))
    weight = 0.5 / np.cosh(h) ** 2  # dPhi/dh
    lawson = np.ones_like(x)
    for _ in range(40):
        rows = np.vander(x**2, DEGREE + 1, increasing=True) * (x * weight * lawson)[:, None]
        coef = np.linalg.lstsq(rows, h * weight * lawson, rcond=None)[0]
        err = np.abs(x * np.polyval(coef[::-1], x**2) - h) * weight
        lawson *= np.sqrt(err / err.max() + 1e-3)
    return coef


def phi_float32(x, coef):
    xc = x.astype(np.float32)
    x2 = xc * xc
    r = np.full_like(x2, np.float32(coef[-1]))
    for c in coef[-2::-1].astype(np.float32):
        r = r * x2 + c
    return np.float32(0.5) * (np.float32(1) + np.tanh(xc * r))


if __name__ == "__main__":
    coef = fit()
    print("_TANH_R = (" + ", ".join(f"{c:.15e}" for c in coef) + ")")
    x = np.linspace(-8, 8, 2_000_001, dtype=np.float32)
    exact = scipy.special.ndtr(x.astype(np.float64))
    phi = phi_float32(x, coef)
    print(f"float32 Phi: largest error {np.max(np.abs(phi - exact)):.3g} on [-8, 8]; "
          f"Phi(-8) = {phi[0]}, Phi(8) = {phi[-1]}; monotone: {bool(np.all(np.diff(phi) >= 0))}")
