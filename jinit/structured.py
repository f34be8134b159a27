r"""Structured initializers: orthogonal, delta-orthogonal, identity/Dirac, sparse, ZerO.

Unlike the i.i.d. schemes of :mod:`jinit.variance`, these constrain the whole
matrix: orthonormal rows or columns, a single non-zero spatial tap, a fixed
number of non-zeros per unit, or a deterministic Hadamard pattern.

Layouts follow JAX/Flax: a dense kernel is ``(in, out)`` and a conv kernel is
``(*spatial, in, out)`` (HWIO). Every initializer here has the standard
signature ``init(key, shape, dtype=float32, out_sharding=None)``; float16 and
bfloat16 results are computed in float32 and rounded once.

Spatial centre. The kernels that put a matrix at "the centre" of the spatial
axes (:func:`delta_orthogonal`, :func:`dirac`, :func:`identity`,
:func:`zero_hadamard`) use index :math:`(k-1)/\!/2` along an axis of size
:math:`k`, JAX's ``delta_orthogonal`` convention. For odd :math:`k` it is the
middle; for even :math:`k` it is the left of the two middle taps, which is the
tap that ``padding="SAME"`` in Flax/``lax.conv`` aligns with the output
position (SAME pads :math:`(k-1)/\!/2` before and :math:`k/\!/2` after), so a
Dirac kernel gives the exact identity map for even kernels too.
``torch.nn.init.dirac_`` uses :math:`k/\!/2` instead; the two agree for odd
:math:`k`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from jinit import rng as _rng
from jinit._core import (
    EXACT,
    Initializer,
    check_choice,
    check_int,
    check_real,
    check_representable,
    factory,
    random_initializer,
    renamed,
)
from jinit.activations import resolve_activation
from jinit.gain import gain_for

__all__ = [
    "orthogonal",
    "gain_orthogonal",
    "delta_orthogonal",
    "identity",
    "dirac",
    "sparse",
    "sparse_fraction",
    "sparse_capped",
    "zero_hadamard",
    "centre_index",
]


def centre_index(size: int) -> int:
    """The spatial tap jinit treats as the centre of an axis of ``size`` taps: ``(size - 1) // 2``.

    Example:
      >>> from jinit.structured import centre_index
      >>> [centre_index(k) for k in (1, 2, 3, 4, 5)]
      [0, 0, 1, 1, 2]
    """
    return (int(size) - 1) // 2


def _check_rank(initializer: str, shape, minimum: int, what: str) -> None:
    if len(shape) < minimum:
        raise ValueError(f"{initializer}: needs {what} (rank >= {minimum}), got shape {shape} of rank {len(shape)}.")


def _conv_rank(initializer: str, shape, hint: str) -> None:
    if len(shape) < 3:
        raise ValueError(
            f"{initializer}: needs a conv kernel (*spatial, in, out) of rank >= 3 "
            f"(Flax HWIO layout), got shape {shape}. {hint}"
        )


# ---------------------------------------------------------------------------
# Orthogonal


ORTHOGONAL_METHODS = ("householder", "qr")

# Reflectors per block when the Householder product is accumulated with matrix
# products. Larger blocks feed the matmuls better; smaller ones waste fewer
# flops on each block's triangle and compile faster (the loop over blocks is
# unrolled). 512 was fastest for 1024..4096 on a 2-core CPU.
_BLOCK = 512


def _stewart_reflectors(z: jax.Array):
    """Householder reflectors of a Haar-distributed Q, from a Gaussian ``z`` (m, k), m >= k.

    Householder QR of a Gaussian matrix reflects column j of a matrix whose
    trailing (m - j) x (k - j) block is again i.i.d. Gaussian and independent of
    the earlier reflectors (Gaussian matrices are invariant under orthogonal
    maps). So the reflectors that QR would compute can be drawn directly, one
    per column, from the entries on and below the diagonal of ``z`` (Stewart
    1980), and only the product Q needs computing: LAPACK's ``orgqr`` half of a
    QR, without the ``geqrf`` half.

    Returns ``(v, tau, signs)``: ``v`` unit lower trapezoidal (m, k), the
    reflector coefficients ``tau`` (k,), and ``signs`` (k,), sign(diag R), the
    column signs (Mezzadri 2007) that make ``H_1 ... H_k diag(signs)`` Haar.
    Conventions are LAPACK's ``larfg``: ``H x = beta e_1``, ``beta = -sign(x_0) ||x||``.
    """
    m, k = z.shape
    rows = lax.broadcasted_iota(jnp.int32, (m, k), 0)
    cols = lax.broadcasted_iota(jnp.int32, (m, k), 1)
    x0 = jnp.diagonal(z)
    tail = jnp.where(rows > cols, z, 0)
    norm_sq = jnp.sum(tail * tail, axis=0)
    # An exactly zero column (probability ~0 in float32) would make 0/0: treat its
    # pivot as 1, which picks the reflector that only flips the sign of e_1.
    x0 = jnp.where((x0 == 0) & (norm_sq == 0), jnp.ones_like(x0), x0)
    sign_x0 = jnp.where(x0 >= 0, 1.0, -1.0).astype(z.dtype)
    beta = -sign_x0 * jnp.sqrt(x0 * x0 + norm_sq)
    tau = (beta - x0) / beta  # in [1, 2]: never 0, so 1/tau below is safe
    v = tail / (x0 - beta) + (rows == cols).astype(z.dtype)
    return v, tau, -sign_x0


def _householder_product(v: jax.Array, tau: jax.Array, block: int = _BLOCK) -> jax.Array:
    """``H_1 H_2 ... H_k I[:, :k]`` for ``H_j = I - tau_j v_j v_j^T`` (LAPACK ``orgqr``).

    Blocks of reflectors are applied from the last to the first, each as one
    compact-WY update ``C <- (I - V T V^T) C`` of the trailing block of Q. The
    block's triangular factor comes from ``T^{-1} = diag(1/tau) + striu(V^T V)``
    (Joffrain et al. 2006), inverted for all blocks in one batched triangular
    solve (LAPACK's ``larft`` also forms T explicitly); one solve instead of one
    per block cuts the compile time (4096 x 4096: first call 4.1 -> 3.2 s). The
    work is two matrix products per block, so it runs at the speed of XLA's
    matrix products (on a 2-core CPU, 4096 x 4096: 1.6x faster than LAPACK's
    ``orgqr`` from OpenBLAS), with ops that every XLA backend has.
    ``precision=HIGHEST`` keeps the products at full float32 precision on TPUs
    (bfloat16 passes otherwise) and GPUs (TF32 otherwise).
    """
    m, k = v.shape
    dot = functools.partial(jnp.matmul, precision=lax.Precision.HIGHEST)
    vt = v.T
    spans = [(start, min(start + block, k)) for start in range(0, k, block)]
    size = spans[0][1]  # the widest block; only the last one can be narrower
    # Each block's T^{-1}, a short last block padded with an identity (which
    # inverts to itself), so that all blocks stack into one batched solve.
    t_inv = [
        jnp.eye(size, dtype=v.dtype).at[: stop - start, : stop - start].set(
            jnp.triu(dot(vt[start:stop, start:], v[start:, start:stop]), 1) + jnp.diag(1.0 / tau[start:stop])
        )
        for start, stop in spans
    ]
    eye = jnp.broadcast_to(jnp.eye(size, dtype=v.dtype), (len(spans), size, size))
    t = lax.linalg.triangular_solve(jnp.stack(t_inv), eye, left_side=True, lower=False)
    q = jnp.eye(m, k, dtype=v.dtype)
    for i, (start, stop) in reversed(list(enumerate(spans))):
        c = q[start:, start:]
        w = dot(t[i, : stop - start, : stop - start], dot(vt[start:stop, start:], c))
        q = q.at[start:, start:].set(c - dot(v[start:, start:stop], w))
    return q


def _orthogonal_matrix(gen, key, rows: int, cols: int, scale, dtype, method: str) -> jax.Array:
    """``scale`` times a Haar-distributed (rows, cols) matrix with orthonormal
    columns (rows >= cols) or rows (rows < cols).

    Both methods work on the tall orientation (m >= n), so the cost is O(m n^2)
    and Q is m x n; the column signs and the scale are one fused multiply.
    """
    transpose = rows < cols
    m, n = (cols, rows) if transpose else (rows, cols)
    z = gen.normal(key, (m, n), dtype)
    if method == "qr":
        q, r = jnp.linalg.qr(z, mode="reduced")
        # Mezzadri (2007): Q diag(sign(diag R)) is Haar; plain Q is not (LAPACK's
        # Householder QR makes diag R have the sign opposite to the pivot). Zero
        # diagonals have probability 0; mapping them to +1 keeps Q orthogonal anyway.
        signs = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(dtype)
    else:
        v, tau, signs = _stewart_reflectors(z)
        q = _householder_product(v, tau)
    q = q * (signs * jnp.asarray(scale, dtype))
    return q.T if transpose else q


@renamed(rng="generator")
@factory
def orthogonal(
    scale: float = 1.0, column_axis: int = -1, *, method: str = "householder", generator: str | None = None, dtype=None
) -> Initializer:
    r"""Random orthogonal weights (Saxe, McClelland & Ganguli, 2014), Haar-distributed.

    The kernel is viewed as a matrix :math:`A` of shape
    :math:`(\prod_{i \ne c} d_i,\ d_c)`, ``c = column_axis`` (for a dense
    ``(in, out)`` kernel: ``A = W``; for a conv kernel ``(*spatial, in, out)``:
    rows are (spatial, in) positions, columns the output channels). Then

    .. math:: A = s\, Q\, \mathrm{diag}(\mathrm{sign}(\mathrm{diag}\, R)),\qquad
              Z = QR,\quad Z_{ij} \sim \mathcal N(0, 1)

    with the QR taken on the tall orientation (:math:`Z` or :math:`Z^\top`,
    whichever has at least as many rows as columns). The sign correction
    (Mezzadri 2007) makes :math:`A/s` exactly Haar-distributed on the
    orthogonal group / Stiefel manifold. :math:`A` has orthonormal columns
    (:math:`A^\top A = s^2 I`) when it is tall and orthonormal rows when it is wide.

    ``method`` chooses how that distribution is sampled; both give exactly Haar
    matrices, but different matrices for the same key:

    * ``"householder"`` (default): Stewart (1980). The Householder reflectors
      that a QR of :math:`Z` would compute are independent and simply
      distributed (reflector :math:`j` maps a fresh Gaussian vector of length
      :math:`m - j` to a multiple of :math:`e_1`), so they are drawn directly
      from the entries on and below the diagonal of :math:`Z` and only their
      product :math:`Q = H_1 \cdots H_n` is formed, in blocks of matrix
      products. That skips the factorization half of the QR: on a 2-core CPU a
      4096 x 4096 matrix takes 0.4x ``jnp.linalg.qr``'s time and less than
      ``torch.nn.init.orthogonal_`` (numbers in the README).
    * ``"qr"``: a LAPACK QR of :math:`Z`, the algorithm of
      ``jax.nn.initializers.orthogonal`` and ``torch.nn.init.orthogonal_``. With
      ``generator="jax"`` the values equal ``jax.nn.initializers.orthogonal(scale,
      column_axis)`` for the same key (same draw, same QR, same signs).

    For a layer followed by an activation :math:`\phi`, ``scale =
    jinit.gain_for(phi)`` preserves the second moment (:math:`\sqrt 2` for ReLU);
    that is :func:`gain_orthogonal` ``(phi)``, the registry scheme ``"orthogonal"``'s
    kernel. ``orthogonal()`` itself has ``scale = 1``.

    Unlike JAX's (which raises ``NotImplementedError``), this initializer
    accepts ``out_sharding``: the matrix is computed as usual and laid out with
    the sharding, so values do not depend on it. float16/bfloat16 are computed in
    float32 (JAX's QR has no bfloat16 kernel) and rounded once.

    Args:
      scale: :math:`s \ge 0`, the singular value of the result.
      column_axis: the axis holding the columns (default ``-1``, the output axis).
      method: ``"householder"`` (default) or ``"qr"``, see above.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jinit.structured import orthogonal
      >>> w = orthogonal()(jax.random.key(0), (64, 32))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(32), atol=1e-5))
      True
    """
    check_real("orthogonal", "scale", scale, nonnegative=True)
    column_axis = check_int("orthogonal", "column_axis", column_axis)
    check_choice("orthogonal", "method", method, ORTHOGONAL_METHODS)
    gen = _rng.resolve("orthogonal", generator)

    def validate(shape):
        _check_rank("orthogonal", shape, 2, "a matrix or higher-rank kernel")
        if not -len(shape) <= column_axis < len(shape):
            raise ValueError(
                f"orthogonal: column_axis={column_axis} is out of range for shape {shape}; "
                f"valid values are {-len(shape)} .. {len(shape) - 1}."
            )

    def body(key, shape, dtype):
        axis = column_axis % len(shape)
        cols = shape[axis]
        rest = shape[:axis] + shape[axis + 1 :]
        q = _orthogonal_matrix(gen, key, math.prod(rest), cols, scale, dtype, method)
        q = q.reshape(rest + (cols,))
        return q if axis == len(shape) - 1 else jnp.moveaxis(q, -1, axis)

    return random_initializer("orthogonal", body, validate_shape=validate, whole=True, dtype=dtype)


@renamed(rng="generator")
@factory
def gain_orthogonal(
    phi, column_axis: int = -1, *, method: str = "householder", generator: str | None = None, dtype=None
) -> Initializer:
    r"""Orthogonal weights scaled by the gain of the activation that follows (Saxe,
    McClelland & Ganguli, 2014): :func:`orthogonal` ``(scale=g)`` with
    :math:`g` = :func:`jinit.gain_for` ``(phi)`` :math:`= 1/\sqrt{\mathbb E_{z\sim\mathcal N(0,1)}[\phi(z)^2]}`:

    .. math:: W = g\,Q, \qquad Q \text{ Haar-distributed with orthonormal columns (or rows)}.

    This is the registry scheme ``"orthogonal"``'s kernel; it differs from
    ``jinit.orthogonal()`` only by the scale, :math:`g` instead of 1 (:math:`\sqrt 2`
    for ReLU, 1.593 for tanh, 1 for linear and SELU). Every singular value equals
    :math:`g`: the linear map preserves norms exactly and :math:`g` restores the
    second moment through :math:`\phi`.

    Args:
      phi: the activation after the layer: a name from
        :data:`jinit.activations.ACTIVATIONS` or a callable ``R -> R``.
      column_axis, method: as in :func:`orthogonal`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.gain_orthogonal("relu")(jax.random.key(0), (64, 32))
      >>> bool(jnp.allclose(w.T @ w, 2.0 * jnp.eye(32), atol=1e-5))  # g^2 = 2 for ReLU
      True
    """
    scale = gain_for(resolve_activation("gain_orthogonal", phi))
    return orthogonal(scale=scale, column_axis=column_axis, method=method, generator=generator, dtype=dtype)


@renamed(rng="generator")
@factory
def delta_orthogonal(
    scale: float = 1.0, *, method: str = "householder", generator: str | None = None, dtype=None
) -> Initializer:
    r"""Delta-orthogonal conv kernels (Xiao et al., 2018, "Dynamical Isometry and a
    Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional
    Neural Networks", Algorithm 1).

    For a kernel of shape ``(*spatial, in, out)`` (Flax HWIO, 1-D, 2-D or 3-D
    convs and beyond):

    .. math:: W[c, :, :] = s\,H,\qquad W[t, :, :] = 0 \ \ (t \ne c)

    where :math:`c` is the spatial centre (index :math:`(k-1)/\!/2` on every
    axis, see :func:`centre_index`; this is JAX's convention, torch has no
    delta-orthogonal) and :math:`H` is an ``(in, out)`` matrix with orthonormal
    rows drawn as in :func:`orthogonal`. A conv with this kernel maps each
    position's channel vector :math:`x \mapsto xH`, an isometry (up to
    :math:`s`) of the whole feature map when padding keeps the size (SAME),
    which is what lets very deep tanh CNNs sit at dynamical isometry.

    Requires ``in <= out``, like ``jax.nn.initializers.delta_orthogonal``: with
    ``in > out`` an ``(in, out)`` matrix can have orthonormal *columns* only, so
    the conv would project away ``in - out`` dimensions of every position and
    would not be norm-preserving; use ``orthogonal()`` (orthonormal columns of
    the flattened kernel) for such down-projecting layers. For a dense
    ``(in, out)`` kernel delta-orthogonal is just :func:`orthogonal`; pass that.

    With ``method="qr"`` and ``generator="jax"`` the values equal
    ``jax.nn.initializers.delta_orthogonal(scale)`` for the same key; the default
    ``"householder"`` samples the same distribution faster (see
    :func:`orthogonal`). ``out_sharding`` is supported.

    Args:
      scale: :math:`s \ge 0`.
      method: how :math:`H` is sampled, ``"householder"`` (default) or ``"qr"``, as in :func:`orthogonal`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jinit.structured import delta_orthogonal
      >>> w = delta_orthogonal()(jax.random.key(0), (3, 3, 16, 32))
      >>> bool(jnp.allclose(w[1, 1] @ w[1, 1].T, jnp.eye(16), atol=1e-5))
      True
      >>> float(jnp.abs(w).sum() - jnp.abs(w[1, 1]).sum())
      0.0
    """
    check_real("delta_orthogonal", "scale", scale, nonnegative=True)
    check_choice("delta_orthogonal", "method", method, ORTHOGONAL_METHODS)
    gen = _rng.resolve("delta_orthogonal", generator)

    def validate(shape):
        _conv_rank("delta_orthogonal", shape, "For a dense (in, out) kernel use orthogonal().")
        if shape[-2] > shape[-1]:
            raise ValueError(
                f"delta_orthogonal: needs in <= out (shape[-2] <= shape[-1]), got in={shape[-2]}, "
                f"out={shape[-1]} in shape {shape}: an (in, out) matrix with in > out cannot have "
                "orthonormal rows, so the conv could not preserve norms. Use orthogonal() for "
                "down-projecting convs."
            )

    def body(key, shape, dtype):
        centre = tuple(centre_index(k) for k in shape[:-2])
        h = _orthogonal_matrix(gen, key, shape[-2], shape[-1], scale, dtype, method)
        return jnp.zeros(shape, dtype).at[centre].set(h)

    return random_initializer("delta_orthogonal", body, validate_shape=validate, whole=True, dtype=dtype)


# ---------------------------------------------------------------------------
# Deterministic: identity, Dirac, ZerO


def _dirac_matrix(cin: int, cout: int, groups: int, dtype) -> jax.Array:
    # W[i, o] = 1 iff i == o % (cout // groups): output channel g*opg + d reads
    # input channel d of its group (torch.nn.init.dirac_ with groups).
    per_group = cout // groups
    i = lax.broadcasted_iota(jnp.int32, (cin, cout), 0)
    o = lax.broadcasted_iota(jnp.int32, (cin, cout), 1)
    return (i == o % per_group).astype(dtype)


def _at_centre(matrix: jax.Array, shape, dtype) -> jax.Array:
    centre = tuple(centre_index(k) for k in shape[:-2])
    return jnp.zeros(shape, dtype).at[centre].set(matrix)


def _scale_fits(initializer: str, scale):
    """A ``validate_dtype`` hook: ``scale`` must be exact in integer and bool dtypes."""

    def check(dtype, shape):
        check_representable(initializer, "scale", scale, dtype)

    return check


@factory
def dirac(groups: int = 1, scale: float = 1.0, *, dtype=None) -> Initializer:
    r"""Dirac-delta conv kernels: a conv layer initialized with it is the identity map.

    For a kernel ``(*spatial, in, out)`` (Flax HWIO; ``in`` is the number of
    input channels per group, as Flax stores it with ``feature_group_count``):

    .. math:: W[c, i, o] = s\ \text{ if } i = o \bmod (\text{out}/G), \qquad 0 \text{ otherwise}

    with :math:`c` the spatial centre (index :math:`(k-1)/\!/2`, see
    :func:`centre_index`) and :math:`G` = ``groups``. Output channel
    :math:`g\cdot\text{out}/G + d` copies channel :math:`d` of group
    :math:`g`'s inputs, for :math:`d < \min(\text{in}, \text{out}/G)`; the rest
    are zero. With ``in == out/G`` and ``padding="SAME"`` (stride 1) the conv's
    output equals its input exactly (bias zero), for odd and even kernels.

    Same values as ``torch.nn.init.dirac_(w, groups)`` transposed to HWIO for odd
    kernel sizes; for even sizes torch puts the 1 at :math:`k/\!/2`, which under
    SAME padding in Flax shifts the map by one pixel.

    Deterministic: the key is checked but not used. Exact in every floating,
    integer and bool dtype that holds ``scale`` (``ValueError`` otherwise).

    Args:
      groups: :math:`G \ge 1`, the conv's ``feature_group_count``; must divide ``out``.
      scale: :math:`s` (default 1).
      dtype: default dtype of the returned initializer (None: float32); floating, integer or bool.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import flax.linen as nn
      >>> from jinit.structured import dirac
      >>> conv = nn.Conv(4, (3, 3), padding="SAME", kernel_init=dirac())
      >>> x = jnp.linspace(-1.0, 1.0, 2 * 8 * 8 * 4).reshape(2, 8, 8, 4)
      >>> y, _ = conv.init_with_output(jax.random.key(0), x)
      >>> bool((y == x).all())
      True
    """
    groups = check_int("dirac", "groups", groups, 1)
    check_real("dirac", "scale", scale)

    def validate(shape):
        _conv_rank("dirac", shape, "For a dense (in, out) kernel use identity().")
        if shape[-1] % groups:
            raise ValueError(
                f"dirac: out={shape[-1]} (shape[-1] of {shape}) must be divisible by groups={groups}."
            )

    def body(key, shape, dtype):
        m = _dirac_matrix(shape[-2], shape[-1], groups, dtype) * jnp.asarray(scale, dtype)
        return _at_centre(m, shape, dtype)

    return random_initializer(
        "dirac", body, validate_shape=validate, dtype=dtype, kinds=EXACT, validate_dtype=_scale_fits("dirac", scale)
    )


@factory
def identity(scale: float = 1.0, *, dtype=None) -> Initializer:
    r"""Identity kernels: ``scale`` times the (partial) identity.

    * Dense ``(in, out)``: :math:`W_{ij} = s\,[i = j]`, the partial identity when
      ``in != out`` (the first :math:`\min(\text{in}, \text{out})` inputs pass
      through; extra outputs are zero, extra inputs are dropped). This is
      ``torch.nn.init.eye_`` (transposed) and Le et al.'s (2015) IRNN recurrent init.
    * Conv ``(*spatial, in, out)``: the Dirac kernel, :func:`dirac` with one group,
      so the conv is the identity map.

    (Haiku's ``Identity`` instead treats leading axes as a batch of identity
    matrices; for a conv kernel that would sum the window, not copy the centre.)

    A poor default for MLPs: every square hidden layer starts as the identity,
    so units are not diverse (Zhao et al. 2022 show such nets stay low-rank
    during training; :func:`zero_hadamard` is their fix). Deterministic: the key
    is checked but not used. Exact in every floating, integer and bool dtype
    that holds ``scale`` (``ValueError`` otherwise, e.g. 0.5 in int32).

    Args:
      scale: :math:`s`.
      dtype: default dtype of the returned initializer (None: float32); floating, integer or bool.

    Example:
      >>> import jax
      >>> from jinit.structured import identity
      >>> identity(2.0)(jax.random.key(0), (2, 3))
      Array([[2., 0., 0.],
             [0., 2., 0.]], dtype=float32)
      >>> identity(dtype="int8")(jax.random.key(0), (2, 2))
      Array([[1, 0],
             [0, 1]], dtype=int8)
    """
    check_real("identity", "scale", scale)

    def validate(shape):
        _check_rank("identity", shape, 2, "a dense (in, out) or conv (*spatial, in, out) kernel")

    def body(key, shape, dtype):
        # With one group the Dirac matrix is the partial identity eye(in, out).
        m = _dirac_matrix(shape[-2], shape[-1], 1, dtype) * jnp.asarray(scale, dtype)
        return m if len(shape) == 2 else _at_centre(m, shape, dtype)

    return random_initializer(
        "identity", body, validate_shape=validate, dtype=dtype, kinds=EXACT,
        validate_dtype=_scale_fits("identity", scale),
    )


def _zero_hadamard_matrix(n_in: int, n_out: int, dtype) -> jax.Array:
    if n_out <= n_in:
        return jnp.eye(n_in, n_out, dtype=dtype)
    k = (n_out - 1).bit_length()  # ceil(log2 m) for m >= 2
    i = lax.broadcasted_iota(jnp.uint32, (n_in, n_out), 0)
    o = lax.broadcasted_iota(jnp.uint32, (n_in, n_out), 1)
    # Sylvester Hadamard: H[i, j] = (-1)^popcount(i & j).
    parity = lax.population_count(i & o) & 1
    return (1 - 2 * parity.astype(dtype)) * jnp.asarray(2.0 ** (-k / 2), dtype)


@factory
def zero_hadamard(*, dtype=None) -> Initializer:
    r"""ZerO initialization (Zhao, Schäfer & Anandkumar, 2022, "ZerO Initialization:
    Initializing Neural Networks with only Zeros and Ones", TMLR; Algorithm 1).

    The paper writes a layer as :math:`W \in \mathbb R^{m \times n}`,
    :math:`m` outputs, :math:`n` inputs, and sets

    .. math::
        W = \begin{cases}
            I^*_{m\times n} & m \le n,\\
            I^*_{m\times p}\,\big(H_p / 2^{k/2}\big)\,I^*_{p\times n} & m > n,
            \quad k = \lceil \log_2 m\rceil,\ p = 2^k,
            \end{cases}

    with :math:`I^*` the partial identity and :math:`H_p` the Sylvester
    Hadamard matrix, :math:`(H_p)_{ij} = (-1)^{\mathrm{popcount}(i \,\&\, j)}`
    (``scipy.linalg.hadamard``). So :math:`W` is the top-left :math:`m \times n`
    block of :math:`H_p/\sqrt p`. This follows the authors' reference code
    (``ZerO_Init_on_matrix`` in github.com/jiaweizzhao/ZerO-initialization,
    ``example_mnist.ipynb``, "Algorithm 1 in the paper").

    Flax stores the kernel as ``(in, out) = (n, m)``, i.e. :math:`W^\top`; since
    :math:`H_p` is symmetric the kernel is again the top-left ``(in, out)`` block
    of :math:`H_p/\sqrt p`:

    * ``out <= in`` (shrinking or square): partial identity, ``K[i, j] = [i = j]``;
    * ``out > in`` (expanding): ``K[i, j] = (-1)^{popcount(i & j)} / 2^{k/2}``,
      :math:`k = \lceil \log_2 \text{out} \rceil`.

    Every entry is 0, 1 or :math:`\pm 2^{-k/2}`. An expanding layer is injective
    (its ``in`` rows are linearly independent; orthonormal when ``out`` is a power
    of two): the Hadamard mixing spreads the signal over all outputs, which is
    what breaks the training degeneracy of plain partial-identity init.

    Conv kernels ``(*spatial, in, out)`` get that matrix at the spatial centre and
    zeros elsewhere (the paper's Algorithm 2; centre index :math:`(k-1)/\!/2`, the
    authors' :math:`k/\!/2` for the odd kernels they use).

    Deterministic (no randomness at all): the key is checked but not used.
    Integer and bool dtypes hold the partial identity (``out <= in``) exactly;
    for an expanding kernel they cannot hold :math:`\pm 2^{-k/2}` and raise
    ``ValueError``.

    Args:
      dtype: default dtype of the returned initializer (None: float32); floating, integer or bool.

    Example:
      >>> import jax
      >>> from jinit.structured import zero_hadamard
      >>> zero_hadamard()(jax.random.key(0), (2, 4)) * 2
      Array([[ 1.,  1.,  1.,  1.],
             [ 1., -1.,  1., -1.]], dtype=float32)
      >>> zero_hadamard(dtype=bool)(jax.random.key(0), (3, 2))
      Array([[ True, False],
             [False,  True],
             [False, False]], dtype=bool)
    """

    def validate(shape):
        _check_rank("zero_hadamard", shape, 2, "a dense (in, out) or conv (*spatial, in, out) kernel")

    def fits(dtype, shape):
        if shape is None or jnp.issubdtype(dtype, jnp.floating) or math.prod(shape) == 0:
            return
        n_in, n_out = shape[-2], shape[-1]
        if n_out > n_in:
            raise ValueError(
                f"zero_hadamard: dtype {dtype.name} cannot represent the entries +-2^(-k/2), "
                f"k = {(n_out - 1).bit_length()}, of an expanding kernel (out={n_out} > in={n_in} in shape "
                f"{shape}); integer and bool dtypes hold only the partial identity (out <= in). "
                "Use a floating dtype."
            )

    def body(key, shape, dtype):
        m = _zero_hadamard_matrix(shape[-2], shape[-1], dtype)
        return m if len(shape) == 2 else _at_centre(m, shape, dtype)

    return random_initializer(
        "zero_hadamard", body, validate_shape=validate, dtype=dtype, kinds=EXACT, validate_dtype=fits
    )


# ---------------------------------------------------------------------------
# Sparse


def _choose(key, gen, rows: int, cols: int, k: int) -> jax.Array:
    """A (rows, cols) boolean mask with exactly ``k`` True entries in every row,
    at a uniformly random subset of columns (top-k of i.i.d. uniforms)."""
    u = gen.uniform(key, (rows, cols), jnp.float32)
    _, idx = lax.top_k(u, k)
    return jnp.zeros((rows, cols), jnp.bool_).at[jnp.arange(rows)[:, None], idx].set(True)


@renamed(rng="generator")
@factory
def sparse(num_nonzero: int = 15, stddev: float = 1.0, *, generator: str | None = None, dtype=None) -> Initializer:
    r"""Martens' sparse initialization (Martens, 2010, "Deep learning via
    Hessian-free optimization", Sec. 5): every output unit gets exactly
    ``num_nonzero`` non-zero incoming weights.

    For a kernel ``(in, out)``, or ``(*spatial, in, out)`` with
    :math:`\text{fan\_in} = \text{in}\cdot\prod\text{spatial}` incoming weights per
    output channel: for each output :math:`j` a subset :math:`S_j` of
    :math:`k` incoming positions is drawn uniformly without replacement, and

    .. math:: W_{ij} \sim \mathcal N(0, \sigma^2)\ \ (i \in S_j), \qquad W_{ij} = 0\ \ (i \notin S_j).

    Martens used :math:`k = 15`, :math:`\sigma = 1` (and zero biases) for deep
    logistic/tanh autoencoders: the units see large inputs without saturating as a
    dense :math:`\mathcal N(0,1)` init of width 1000 would, and the scale does not
    depend on the width. With ReLU or linear units the forward variance grows by
    about :math:`k\sigma^2` (ReLU: :math:`k\sigma^2/2`) per layer, so deep stacks
    explode unless :math:`\sigma^2 \approx 1/k` (ReLU: :math:`2/k`).

    Not ``torch.nn.init.sparse_``, which zeroes a *fraction* of each input's
    outgoing weights; that is :func:`sparse_fraction`.

    Args:
      num_nonzero: :math:`k \ge 1`; must be at most fan_in.
      stddev: :math:`\sigma \ge 0`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax
      >>> from jinit.structured import sparse
      >>> w = sparse(num_nonzero=3)(jax.random.key(0), (10, 4))
      >>> (w != 0).sum(axis=0)
      Array([3, 3, 3, 3], dtype=int32)
    """
    k = check_int("sparse", "num_nonzero", num_nonzero, 1)
    check_real("sparse", "stddev", stddev, nonnegative=True)
    gen = _rng.resolve("sparse", generator)

    def validate(shape):
        _check_rank("sparse", shape, 2, "a dense (in, out) or conv (*spatial, in, out) kernel")
        fan_in = math.prod(shape[:-1])
        if math.prod(shape) and k > fan_in:
            raise ValueError(
                f"sparse: num_nonzero={k} is larger than fan_in={fan_in} of shape {shape}; "
                f"each output unit has only {fan_in} incoming weights (valid: 1 .. {fan_in})."
            )

    def body(key, shape, dtype):
        fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
        k_mask, k_val = jax.random.split(key)
        keep = _choose(k_mask, gen, fan_out, fan_in, k).T
        w = gen.normal(k_val, (fan_in, fan_out), dtype) * jnp.asarray(stddev, dtype)
        return jnp.where(keep, w, jnp.zeros((), dtype)).reshape(shape)

    return random_initializer("sparse", body, validate_shape=validate, dtype=dtype)


@renamed(rng="generator")
@factory
def sparse_capped(
    num_nonzero: int = 15, stddev: float = 1.0, *, generator: str | None = None, dtype=None
) -> Initializer:
    r"""Martens' sparse initialization for layers of any width (Martens, 2010, Sec. 5):
    :func:`sparse` with :math:`k = \min(\text{num\_nonzero}, \text{fan\_in})` non-zero
    incoming weights per unit, so a layer with fewer inputs than ``num_nonzero`` is dense:

    .. math:: W_{ij} \sim \mathcal N(0, \sigma^2)\ \ (i \in S_j,\ |S_j| = \min(k, \text{fan\_in})),
              \qquad W_{ij} = 0 \text{ otherwise}.

    This is the registry scheme ``"sparse"``'s kernel; ``jinit.sparse(15)`` instead
    raises for a kernel with ``fan_in < 15``. The value of ``k`` is fixed per call,
    from the shape, and the values are those of ``sparse(k, stddev)``.

    Args:
      num_nonzero: the largest :math:`k \ge 1`.
      stddev: :math:`\sigma \ge 0`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jinit
      >>> init = jinit.sparse_capped(4)
      >>> (init(jax.random.key(0), (10, 3)) != 0).sum(axis=0), (init(jax.random.key(0), (2, 3)) != 0).sum(axis=0)
      (Array([4, 4, 4], dtype=int32), Array([2, 2, 2], dtype=int32))
    """
    largest = check_int("sparse_capped", "num_nonzero", num_nonzero, 1)
    default = dtype
    by_k = {largest: sparse(largest, stddev, generator=generator, dtype=default)}  # checks the arguments now
    generator = _rng.resolve("sparse", generator).name  # resolved now, as by every factory

    def init(key, shape, dtype=None, out_sharding=None):
        fan_in = math.prod(shape[:-1]) if len(shape) >= 2 else 1
        k = max(1, min(largest, fan_in))
        if k not in by_k:
            by_k[k] = sparse(k, stddev, generator=generator, dtype=default)
        return by_k[k](key, shape, dtype, out_sharding)

    init.__name__ = init.__qualname__ = "sparse"
    return init


@renamed(rng="generator")
@factory
def sparse_fraction(sparsity: float, stddev: float = 0.01, *, generator: str | None = None, dtype=None) -> Initializer:
    r"""``torch.nn.init.sparse_(w, sparsity, std)`` in Flax layout.

    torch fills its ``(out, in)`` weight with :math:`\mathcal N(0, \sigma^2)` and
    then, in every *column* (one input unit's outgoing weights), sets
    :math:`z = \lceil \text{sparsity}\cdot\text{out}\rceil` entries chosen
    uniformly at random to zero. The Flax kernel is the transpose, ``(in, out)``,
    so here every **row** gets exactly :math:`z` zeros:

    .. math:: W_{ij} = 0\ \ (j \in Z_i,\ |Z_i| = z), \qquad
              W_{ij} \sim \mathcal N(0, \sigma^2)\ \text{otherwise}.

    :math:`z` is computed as torch does, ``math.ceil(sparsity * out)`` in float64
    (so e.g. ``0.14 * 50 = 7.000000000000001`` gives 8). The number of non-zero *incoming* weights of
    an output unit is then random (binomial-like), unlike Martens' rule
    (:func:`sparse`), despite torch's docstring citing Martens. Values differ from
    torch's (different generator); the sparsity pattern's law is the same.

    Only 2-D kernels, as in torch.

    Args:
      sparsity: fraction in :math:`[0, 1]` of each input's outgoing weights set to zero.
      stddev: :math:`\sigma \ge 0` of the non-zero weights.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax
      >>> from jinit.structured import sparse_fraction
      >>> w = sparse_fraction(0.5)(jax.random.key(0), (3, 8))
      >>> (w == 0).sum(axis=1)
      Array([4, 4, 4], dtype=int32)
    """
    if isinstance(sparsity, jax.core.Tracer):
        raise TypeError(
            "sparse_fraction: sparsity must be a concrete number, not a traced value: it sets the number of zeros."
        )
    check_real("sparse_fraction", "sparsity", sparsity, nonnegative=True)
    if not float(sparsity) <= 1.0:
        raise ValueError(f"sparse_fraction: sparsity must be in [0, 1], got {sparsity}.")
    check_real("sparse_fraction", "stddev", stddev, nonnegative=True)
    gen = _rng.resolve("sparse_fraction", generator)

    def validate(shape):
        if len(shape) != 2:
            raise ValueError(
                f"sparse_fraction: needs a 2-D (in, out) kernel, like torch.nn.init.sparse_, got shape {shape}."
            )

    def body(key, shape, dtype):
        n_in, n_out = shape
        zeros = math.ceil(float(sparsity) * n_out)
        k_mask, k_val = jax.random.split(key)
        w = gen.normal(k_val, shape, dtype) * jnp.asarray(stddev, dtype)
        if zeros == 0:
            return w
        drop = _choose(k_mask, gen, n_in, n_out, zeros)
        return jnp.where(drop, jnp.zeros((), dtype), w)

    return random_initializer("sparse_fraction", body, validate_shape=validate, dtype=dtype)
