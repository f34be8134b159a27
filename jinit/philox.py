r"""Philox4x32-10, a counter-based generator, written as fused XLA element-wise ops.

Philox (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC 2011; the Random123 library) is a keyed bijection on 128-bit
counters: ten rounds of two 32x32->64-bit multiplies, xors with the key and a
Weyl key schedule. It passes TestU01's BigCrush, and its output for a counter
depends on nothing but (key, counter). jinit uses it as follows.

**Values.** The element at row-major flat index :math:`i` of an array of shape
``shape`` is word 0 of

.. math:: \mathrm{Philox4x32\text{-}10}(\text{counter} = (i \bmod 2^{32},\
          \lfloor i / 2^{32} \rfloor, 0, 0),\ \text{key} = (k_0, k_1))

(also word 1 for float64, which needs 53 bits), turned into a float as below.
The key words come from the JAX key: for a threefry key (``jax.random.key`` or
``jax.random.PRNGKey``), :math:`(k_0, k_1)` = ``jax.random.key_data(key)``; keys
of other implementations (rbg, unsafe_rbg) have their data words compressed to
two words by Philox itself, deterministically. So a sample is a pure function of
(key, shape, dtype, index): identical eagerly and under ``jit``, across runs, and
for any ``out_sharding`` or number of devices, because a sharded computation
evaluates the same element-wise expression on the global indices of its shard
(XLA's partitioner gives each device its slice of the ``iota``; nothing is
communicated).

Why one Philox call per element when each call yields four words: XLA's CPU and
GPU loop emitters compute one output element per loop iteration, and every
construction that spreads the four words over four elements (stack/concatenate,
select on an iota, a bitcast from a 64-bit type) is either re-evaluated once per
element by the fused loop or forces an extra pass through memory. One call per
element keeps the whole sampler a single fused loop that writes each output
once and reads nothing (JAX's partitionable threefry makes the same choice). The
32x32->64-bit multiplies use a widening multiply (see :func:`mulhilo_wide`), so
on an x86 CPU one Philox4x32-10 block costs about as much as writing its
float: bits for 4096x4096 take ~45 ms on 2 cores, against ~230 ms for
``jax.random.bits`` (whose slowness on CPU is its rolled-loop lowering; see
:mod:`jinit.rng`).

The samplers are plain traceable functions: call them under ``jax.jit`` (the
initializers do). Called eagerly, each of their few hundred element-wise ops is
dispatched on its own.

**Floats** (``u`` is word 0 as an unsigned integer):

* uniform: ``(u >> 8) * 2**-24``, the 24 high bits: a grid on **[0, 1)**; 0 can
  occur, 1 cannot. float64 uses 53 bits from words 0 and 1.
* normal: inverse CDF in the tail-symmetric form. The top bit of ``u`` is the
  sign, the other 31 bits :math:`m` give the tail probability
  :math:`q = (m + \tfrac12) 2^{-32} \in (0, \tfrac12)`, an open interval, and
  :math:`|z| = -\Phi^{-1}(q)`, evaluated as :math:`\sqrt2\, x\, P(w)` with
  :math:`x = 1 - 2q` (computed exactly from the complemented bits, so values near
  0 keep full relative precision), :math:`w = -\log(4q(1-q))` and :math:`P` a
  piecewise polynomial (below). Both tails are resolved down to
  :math:`q = 2^{-33}`: :math:`\max|z| = -\Phi^{-1}(2^{-33}) \approx 6.338`
  (``MAX_ABS_NORMAL``), symmetric. For comparison ``jax.random.normal`` in
  float32 ranges over [-5.42, 5.22]. P(|Z| > 6.338) = 2.3e-10, so a
  4096x4096 draw would hold a value beyond that with probability 0.4 %; the
  samples are exactly symmetric (flipping the top bit negates the value).
* truncated normal on :math:`(a, b)`: :math:`z = \Phi^{-1}(\Phi(a) + U(\Phi(b) - \Phi(a)))`
  with :math:`U = (v + \tfrac12) 2^{-31}`, ``v`` the 31 high bits of ``u``, computed on
  the side of the median where it is accurate: with :math:`p_- = \Phi(a) + U Z` and
  :math:`p_+ = Q(b) + (1-U) Z` (:math:`Q = 1 - \Phi`, :math:`Z = \Phi(b) - \Phi(a)`,
  constants in float64 at trace time; :math:`1 - U` from the complemented bits,
  exact), take :math:`-|\Phi^{-1}(p_-)|` if :math:`p_- \le p_+` and
  :math:`+|\Phi^{-1}(p_+)|` otherwise, then clamp strictly inside :math:`(a, b)`.
  Intervals far in one tail (say (5, 6)) keep full relative precision, unlike
  forms that compute :math:`\Phi(a)` near 1. In float32 the tail probabilities
  must stay above the smallest normal float (about :math:`|z| < 13` where the
  mass sits); more extreme intervals raise ``ValueError`` (use float64).

**The inverse CDF.** :math:`\Phi^{-1}(q) = -\sqrt2\,x\,P(w)` with
:math:`P(w) = \mathrm{erfinv}(x)/x`, :math:`x^2 = 1 - e^{-w}`. P is a polynomial in
:math:`w - 2.5` for :math:`w < 5` (degree 9; the split and the variables are those
of Giles, "Approximating the erfinv function", GPU Computing Gems 2010, whose
degree-8 single-precision coefficients our fit reproduces), in :math:`\sqrt w - 3` for :math:`5 \le w < 21.6` (degree 10) and, only
for truncated normals whose bounds reach :math:`|z| > 6.3`, in :math:`\sqrt w - 7` up to
:math:`w = 88.8` (degree 7, the float32 normal range). The coefficients are a
minimax-relative-error fit (Lawson-weighted least squares on 6000 Chebyshev
nodes per piece) against ``scipy.special.erfcinv`` in float64. Evaluated in
float32 the result has a relative error below 4e-7 (a few ulp) from the exact
quantile over :math:`q \in [2^{-126}, 1/2]`; tests check this against
``scipy.special.ndtri``. There is no data-dependent control flow: each lane picks
its piece's coefficients, and one polynomial evaluation (Estrin's scheme, for
instruction-level parallelism) serves both pieces, which keeps the loop vectorized.

float64 samples (with ``jax_enable_x64``) use 64 bits per element and
``jax.scipy.special.ndtri`` for the quantile.

Known-answer tests against Random123's published vectors, whole-stream checks
against an independent pure-Python implementation, statistical tests and
sharding tests are in ``tests/test_philox.py`` and ``tests/test_sharded_init.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "philox4x32",
    "key_words",
    "counters",
    "bits",
    "uniform",
    "normal",
    "truncated_normal",
    "ndtri_lower",
    "MAX_ABS_NORMAL",
]

# Philox4x32 constants (Salmon et al. 2011, Random123's philox.h).
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9  # golden ratio
PHILOX_W1 = 0xBB67AE85  # sqrt(3) - 1
ROUNDS = 10

_U32 = jnp.uint32
_MASK16 = 0xFFFF


def _u32(x):
    return jnp.asarray(x, _U32)


def mulhilo_limbs(a: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """``(hi, lo)`` 32-bit halves of the 64-bit product ``a * m`` (``a`` uint32, ``m`` a
    Python int < 2**32) in portable uint32 arithmetic (JAX has no uint64 without
    x64). Used where ``jax.enable_x64`` is missing (older JAX).

    The high half is assembled from 16-bit limbs; every partial sum fits in 32
    bits: ``t = al*ml``; ``u = ah*ml + (t >> 16)``; ``v = al*mh + (u & 0xffff)``;
    ``hi = ah*mh + (u >> 16) + (v >> 16)``.
    """
    m = int(m)
    ml, mh = _u32(m & _MASK16), _u32(m >> 16)
    al, ah = a & _u32(_MASK16), a >> _u32(16)
    lo = a * _u32(m)
    t = al * ml
    u = ah * ml + (t >> _u32(16))
    v = al * mh + (u & _u32(_MASK16))
    hi = ah * mh + (u >> _u32(16)) + (v >> _u32(16))
    return hi, lo


def mulhilo_wide(a: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """``(hi, lo)`` of ``a * m`` through one widening multiply: the high half from a
    uint64 product (traced with 64-bit types enabled locally; the arrays in and out
    stay uint32), the low half from a uint32 multiply. LLVM turns this into
    ``vpmuludq`` on x86: about 1.5x faster than the limb form.

    (``jax.lax.mulhi`` compiles to the same code, but XLA 0.10's sharding
    partitioner cannot handle its HLO op, so it is not used.)
    """
    m = int(m)
    with jax.enable_x64(True):
        hi = ((a.astype(jnp.uint64) * jnp.uint64(m)) >> jnp.uint64(32)).astype(_U32)
    return hi, a * _u32(m)


mulhilo = mulhilo_wide if hasattr(jax, "enable_x64") else mulhilo_limbs


def philox4x32(counter: Sequence, key: Sequence, rounds: int = ROUNDS) -> tuple[jax.Array, ...]:
    """The Philox4x32 bijection: four uint32 counter words (arrays, broadcastable)
    and two key words -> four uint32 output words. ``rounds=10`` is Philox4x32-10.

    Python ints are accepted for any word (constants fold into the XLA program).

    Example (a Random123 known-answer vector):
      >>> import numpy as np
      >>> out = philox4x32((0, 0, 0, 0), (0, 0))
      >>> [f"{int(w):08x}" for w in out]
      ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    c0, c1, c2, c3 = (_u32(c) for c in counter)
    k0, k1 = (_u32(k) for k in key)
    mul = mulhilo
    for r in range(rounds):
        if r:
            k0 = k0 + _u32(PHILOX_W0)
            k1 = k1 + _u32(PHILOX_W1)
        hi0, lo0 = mul(c0, PHILOX_M0)
        hi1, lo1 = mul(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def key_words(key) -> tuple[jax.Array, jax.Array]:
    """The two 32-bit Philox key words of a JAX key (typed or raw uint32).

    Two-word key data (threefry, the default) is used as is. Longer key data
    (rbg / unsafe_rbg: four words) is compressed with Philox4x32-10 itself:
    ``(k0, k1) = philox4x32(counter=words[0:4], key=(len, 0))[:2]``, chained
    over further groups of four words.
    """
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(key)
    else:
        data = key
    data = jnp.asarray(data, _U32).reshape(-1)
    n = data.shape[0]
    if n == 2:
        return data[0], data[1]
    k = (_u32(n), _u32(0))
    for start in range(0, n, 4):
        words = [data[j] if j < n else _u32(0) for j in range(start, start + 4)]
        k = philox4x32(words, k)[:2]
    return k


def counters(shape: Sequence[int]) -> tuple[jax.Array, jax.Array | int]:
    """``(lo, hi)`` words of each element's row-major flat index, as uint32 arrays of
    ``shape`` built from per-axis ``iota`` (so a sharded program computes only its
    shard's indices). ``hi`` is the Python int 0 when the array has fewer than
    2**32 elements.
    """
    shape = tuple(int(d) for d in shape)
    if any(d >= 2**32 for d in shape):
        raise ValueError(
            f"philox: an axis of length >= 2**32 is not supported (shape {shape}); "
            "reshape, or use generator='jax'."
        )
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    total = math.prod(shape)
    if total <= 2**32:
        lo = jnp.zeros(shape, _U32)
        first = True
        for d, stride in enumerate(strides):
            if shape[d] == 1:
                continue
            term = lax.broadcasted_iota(_U32, shape, d)
            if stride != 1:
                term = term * _u32(stride)
            lo = term if first else lo + term
            first = False
        return lo, 0
    lo = jnp.zeros(shape, _U32)
    hi = jnp.zeros(shape, _U32)
    for d, stride in enumerate(strides):
        if shape[d] == 1:
            continue
        idx = lax.broadcasted_iota(_U32, shape, d)
        s_lo, s_hi = stride & 0xFFFFFFFF, stride >> 32
        t_hi, t_lo = mulhilo(idx, s_lo)
        if s_hi:
            t_hi = t_hi + idx * _u32(s_hi)
        new_lo = lo + t_lo
        carry = (new_lo < t_lo).astype(_U32)
        hi = hi + t_hi + carry
        lo = new_lo
    return lo, hi


def bits(key, shape: Sequence[int], words: int = 1) -> tuple[jax.Array, ...]:
    """The first ``words`` (1 to 4) Philox output words of every element: uint32
    arrays of ``shape``. Word ``j`` of element ``i`` is word ``j`` of
    Philox4x32-10(counter = (i mod 2**32, i div 2**32, 0, 0), key_words(key)).

    Example:
      >>> import jax
      >>> (w,) = jax.jit(bits, static_argnums=(1, 2))(jax.random.key(0), (4,))
      >>> w.dtype, w.shape
      (dtype('uint32'), (4,))
    """
    if not 1 <= words <= 4:
        raise ValueError(f"philox.bits: words must be 1..4, got {words}.")
    k0, k1 = key_words(key)
    lo, hi = counters(shape)
    out = philox4x32((lo, hi, 0, 0), (k0, k1))
    return out[:words]


# ---------------------------------------------------------------------------
# floats

_TWO_M24 = 2.0**-24
_TWO_M31 = 2.0**-31
_TWO_M32 = 2.0**-32
_SQRT2 = math.sqrt(2.0)

# P(w) = erfinv(x) / x with x^2 = 1 - exp(-w); see the module docstring.
_W_SPLIT_1 = 5.0
_W_SPLIT_2 = 21.6
_P_CENTRAL = (  # in w - 2.5, for w < 5
    1.5014094114303589, 0.24664027988910675, -0.004177386872470379,
    -0.0012527419021353126, 0.00021834444487467408, -4.963346782460576e-06,
    -3.4627046261448413e-06, 4.661704053887661e-07, 2.323263537107323e-08,
    -8.791038119682071e-09,
)
_P_TAIL = (  # in sqrt(w) - 3, for 5 <= w < 21.6
    2.832976818084717, 1.0016751289367676, 0.009443918243050575,
    -0.007640549447387457, 0.005698001012206078, -0.0035795613657683134,
    0.001452071825042367, -9.054815745912492e-05, -0.000265490758465603,
    0.0001364911295240745, -2.2497908503282815e-05,
)
_P_FAR = (  # in sqrt(w) - 7, for 21.6 <= w <= 88.8
    6.869019508361816, 1.0085958242416382, -0.0005121437716297805,
    5.971352038613986e-06, 5.610801963484846e-06, -1.4741052609679173e-06,
    4.3291109363963187e-07, -7.927090450721153e-08,
)

#: Largest |z| ``normal`` can return in float32: -Phi^{-1}(2**-33).
MAX_ABS_NORMAL = 6.3379577545537895

def _estrin(coeffs, t):
    """Polynomial ``sum(c_i t^i)`` by Estrin's scheme: pairs ``c_i + c_{i+1} t``
    combined with ``t^2, t^4, ...``. Same operation count as Horner's rule, but a
    dependency chain of depth log2(n) instead of n, so the CPU overlaps the
    multiply-adds (measured: the normal sampler's transform 25 % faster)."""
    terms = [coeffs[i] + coeffs[i + 1] * t if i + 1 < len(coeffs) else coeffs[i] for i in range(0, len(coeffs), 2)]
    power = t * t
    while len(terms) > 1:
        terms = [
            terms[i] + terms[i + 1] * power if i + 1 < len(terms) else terms[i]
            for i in range(0, len(terms), 2)
        ]
        power = power * power
    return terms[0]


def _select_coefficients(mask, coeffs_true, coeffs_false, dt):
    """Per-lane coefficients: ``coeffs_true`` where ``mask``, else ``coeffs_false``
    (zero-padded to a common degree), so that one polynomial evaluation serves
    both pieces."""
    n = max(len(coeffs_true), len(coeffs_false))
    a = tuple(coeffs_true) + (0.0,) * (n - len(coeffs_true))
    b = tuple(coeffs_false) + (0.0,) * (n - len(coeffs_false))
    return [jnp.where(mask, jnp.asarray(ca, dt), jnp.asarray(cb, dt)) for ca, cb in zip(a, b)]


def ndtri_lower(q: jax.Array, x: jax.Array | None = None, *, far_tail: bool = False) -> jax.Array:
    r""":math:`-\Phi^{-1}(q) \ge 0` for float32 ``q`` in [2**-126, 1/2]: the magnitude
    of the standard normal quantile of a lower-tail probability (accurate to a
    few ulp; subnormal ``q`` is flushed to 0 by XLA on CPU and gives inf).

    ``x`` may pass :math:`1 - 2q` when the caller has it more accurately than
    float32 ``1 - 2*q`` (near the median). ``far_tail`` adds the third polynomial
    piece, needed only for :math:`q < 1.2 \cdot 10^{-10}` (:math:`|z| > 6.3`).

    Example:
      >>> import jax.numpy as jnp
      >>> [round(float(v), 5) for v in ndtri_lower(jnp.array([0.5, 0.025, 1e-6], jnp.float32))]
      [0.0, 1.95996, 4.75342]
    """
    dt = q.dtype
    if x is None:
        x = 1 - 2 * q
    w = -jnp.log(4 * q * (1 - q))
    central = w < _W_SPLIT_1
    s = jnp.sqrt(w)
    if far_tail:
        far = w >= _W_SPLIT_2
        t = jnp.where(central, w - 2.5, s - jnp.where(far, 7.0, 3.0).astype(dt))
        p = _estrin(_select_coefficients(central, _P_CENTRAL, _P_TAIL, dt), t)
        far_coeffs = [jnp.asarray(c, dt) for c in _P_FAR]
        p = jnp.where(far, _estrin(far_coeffs, t), p)
    else:
        t = jnp.where(central, w - jnp.asarray(2.5, dt), s - jnp.asarray(3.0, dt))
        p = _estrin(_select_coefficients(central, _P_CENTRAL, _P_TAIL, dt), t)
    return jnp.asarray(_SQRT2, dt) * x * p


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"philox samples in float32 or float64, got {dtype}.")
    return dtype


def _small_to_f32(x: jax.Array) -> jax.Array:
    """uint32 values below 2**31 to float32 through int32 (a single instruction on
    x86; unsigned conversion is emulated without AVX-512)."""
    return lax.bitcast_convert_type(x, jnp.int32).astype(jnp.float32)


def _u64(w_hi: jax.Array, w_lo: jax.Array) -> jax.Array:
    return (w_hi.astype(jnp.uint64) << jnp.uint64(32)) | w_lo.astype(jnp.uint64)


def uniform(key, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """U[0, 1) samples: 24 (float32) or 53 (float64) high bits on a uniform grid.

    Example:
      >>> import jax
      >>> u = jax.jit(uniform, static_argnums=1)(jax.random.key(0), (100_000,))
      >>> bool(u.min() >= 0) and bool(u.max() < 1), round(float(u.mean()), 2)
      (True, 0.5)
    """
    dtype = _check_dtype(dtype)
    if dtype == np.float64:
        w0, w1 = bits(key, shape, 2)
        m = _u64(w0, w1) >> jnp.uint64(11)
        return m.astype(jnp.float64) * jnp.float64(2.0**-53)
    (w,) = bits(key, shape)
    return _small_to_f32(w >> _u32(8)) * jnp.float32(_TWO_M24)


def normal(key, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """N(0, 1) samples by the inverse CDF (see the module docstring);
    :math:`|z| \\le` ``MAX_ABS_NORMAL`` in float32.

    Example:
      >>> import jax
      >>> z = jax.jit(normal, static_argnums=1)(jax.random.key(0), (100_000,))
      >>> round(float(z.mean()), 2), round(float(z.std()), 2)
      (0.0, 1.0)
    """
    dtype = _check_dtype(dtype)
    if dtype == np.float64:
        w0, w1 = bits(key, shape, 2)
        sign = w0 >> _u32(31)
        m = _u64(w0 & _u32(0x7FFFFFFF), w1)
        q = (m.astype(jnp.float64) + 0.5) * jnp.float64(2.0**-64)
        mag = -jax.scipy.special.ndtri(q)
        return jnp.where(sign == 1, -mag, mag)
    (w,) = bits(key, shape)
    m = w & _u32(0x7FFFFFFF)
    q = (_small_to_f32(m) + jnp.float32(0.5)) * jnp.float32(_TWO_M32)
    x = (_small_to_f32(m ^ _u32(0x7FFFFFFF)) + jnp.float32(0.5)) * jnp.float32(_TWO_M31)
    mag = ndtri_lower(q, x)
    # Sign from the top bit, by flipping the float's sign bit.
    return lax.bitcast_convert_type(
        lax.bitcast_convert_type(mag, _U32) ^ (w & _u32(0x80000000)), jnp.float32
    )


def _std_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _truncation_constants(lower: float, upper: float) -> tuple[float, float, float]:
    """Phi(a), Q(b) = 1 - Phi(b), and Z = Phi(b) - Phi(a), each without cancellation."""
    a, b = float(lower), float(upper)
    phi_a, q_b = _std_cdf(a), _std_cdf(-b)
    if a >= 0:
        z = _std_cdf(-a) - q_b
    elif b <= 0:
        z = _std_cdf(b) - phi_a
    else:
        z = 1.0 - phi_a - q_b
    return phi_a, q_b, z


def _inside(lower: float, upper: float, dtype) -> tuple[np.floating, np.floating]:
    """The smallest and largest values of ``dtype`` strictly inside (lower, upper)."""
    ft = np.dtype(dtype).type
    lo, hi = ft(lower), ft(upper)
    if float(lo) <= lower:
        lo = np.nextafter(lo, ft(np.inf))
    if float(hi) >= upper:
        hi = np.nextafter(hi, ft(-np.inf))
    return lo, hi


def truncated_normal(key, lower: float, upper: float, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """N(0, 1) conditioned on ``lower < z < upper`` (finite Python floats), by the
    inverse CDF on the accurate side of the median (see the module docstring).

    Example:
      >>> import jax
      >>> sample = jax.jit(truncated_normal, static_argnums=(1, 2, 3))
      >>> z = sample(jax.random.key(0), -2.0, 2.0, (100_000,))
      >>> bool(abs(z).max() < 2), round(float(z.std()), 2)
      (True, 0.88)
    """
    dtype = _check_dtype(dtype)
    a, b = float(lower), float(upper)
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"philox.truncated_normal: need finite lower < upper, got ({a}, {b}).")
    phi_a, q_b, mass = _truncation_constants(a, b)
    if mass <= 0 or not math.isfinite(mass):
        raise ValueError(
            f"philox.truncated_normal: ({a}, {b}) has no probability mass in float64."
        )
    lo_in, hi_in = _inside(a, b, dtype)
    if dtype == np.float64:
        w0, w1 = bits(key, shape, 2)
        k = _u64(w0, w1)
        scale = jnp.float64(2.0**-64)
        u_lo = (k.astype(jnp.float64) + 0.5) * scale
        u_hi = ((~k).astype(jnp.float64) + 0.5) * scale
        p_lo = jnp.float64(phi_a) + u_lo * jnp.float64(mass)
        p_hi = jnp.float64(q_b) + u_hi * jnp.float64(mass)
        z = jnp.where(
            p_lo <= p_hi, jax.scipy.special.ndtri(p_lo), -jax.scipy.special.ndtri(p_hi)
        )
        return jnp.clip(z, lo_in, hi_in)
    (w,) = bits(key, shape)
    f32 = jnp.float32
    # U = (v + 1/2) 2**-31 from the 31 high bits v; 1 - U from their complement.
    v = w >> _u32(1)
    u_lo = (_small_to_f32(v) + f32(0.5)) * f32(_TWO_M31)
    u_hi = (_small_to_f32(v ^ _u32(0x7FFFFFFF)) + f32(0.5)) * f32(_TWO_M31)
    p_lo = f32(phi_a) + u_lo * f32(mass)
    p_hi = f32(q_b) + u_hi * f32(mass)
    lower_side = p_lo <= p_hi
    q = jnp.minimum(p_lo, p_hi)
    # q can reach below 1.2e-10 (|z| > 6.3) only if a bound lies beyond that.
    smallest_q = min(phi_a, q_b) + 0.5 * _TWO_M31 * mass
    if smallest_q < 2.0**-125:
        raise ValueError(
            f"philox.truncated_normal: ({a}, {b}) lies too far in a tail for float32 "
            "inverse-CDF sampling (tail probabilities below the float32 range); "
            "sample in float64."
        )
    mag = ndtri_lower(q, far_tail=smallest_q < 1.2e-10)
    z = jnp.where(lower_side, -mag, mag)
    return jnp.clip(z, lo_in, hi_in)
