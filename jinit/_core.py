"""Shared machinery of every initializer: argument checks and the sampling wrapper.

An initializer built here is a plain function ``init(key, shape, dtype=float32,
out_sharding=None)``, the :class:`jax.nn.initializers.Initializer` protocol. The
arguments are checked in Python, before anything is traced, so that bad input
fails with a message naming the initializer, the argument and the valid choices.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import types
import warnings
from collections.abc import Callable, Collection, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.nn.initializers import Initializer
from jax.sharding import NamedSharding, PartitionSpec

__all__ = ["Initializer"]

Shape = tuple[int, ...]
DType = Any
OutSharding = NamedSharding | PartitionSpec | None

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
COMPLEX_DTYPES = ("complex64", "complex128")

# Kinds of dtypes an initializer may accept: random weights need "float" (some
# also "complex"); deterministic fills are exact in integer and bool dtypes too.
FLOAT = ("float",)
FLOAT_COMPLEX = ("float", "complex")
EXACT = ("float", "integer", "bool")
ANY_KIND = ("float", "complex", "integer", "bool")
_KIND_TEXT = {
    "float": f"a floating type ({', '.join(FLOAT_DTYPES)})",
    "complex": f"a complex type ({', '.join(COMPLEX_DTYPES)})",
    "integer": "an integer type",
    "bool": "bool",
}


def check_choice(initializer: str | None, argument: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` that lists them.

    The one "valid choices" lookup of jinit. For an argument of ``initializer``
    the message reads ``"he_normal: invalid mode='fan'; valid choices are
    'fan_in', 'fan_out'."``; with ``initializer=None``, for a name looked up in a
    table (a scheme, an activation), ``"unknown scheme 'kaiming'; valid choices
    are 'zeros', ..."``.
    """
    if isinstance(value, str) and value in choices:
        return value
    valid = ", ".join(repr(c) for c in choices)
    if initializer is None:
        raise ValueError(f"unknown {argument} {value!r}; valid choices are {valid}.")
    raise ValueError(f"{initializer}: invalid {argument}={value!r}; valid choices are {valid}.")


def check_int(initializer: str, argument: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an ``int``: a ``TypeError`` unless it is an integer (``bool`` is not),
    a ``ValueError`` if it is below ``minimum``; both name the initializer and the argument.

    The one integer check of jinit: counts (``sparse``'s ``num_nonzero``, ``dirac``'s
    ``groups``, a recipe's number of layers) and axes (``minimum=None``).
    """
    bound = "" if minimum is None else f" >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{initializer}: {argument} must be an int{bound}, got {value!r}.")
    if minimum is not None and int(value) < minimum:
        raise ValueError(f"{initializer}: {argument} must be an int{bound}, got {value!r}.")
    return int(value)


def renamed(**aliases: str) -> Callable[[Callable], Callable]:
    """Keeps renamed keyword arguments working for one release.

    ``@renamed(rng="generator")`` on a function whose argument is now
    ``generator=``: a call passing ``rng=`` still works, with a
    ``DeprecationWarning`` naming the new argument; passing both is a
    ``TypeError``. The signature shown (``inspect.signature``, the docs) is the
    new one.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in aliases.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(
                        f"{fn.__name__}: got both {new}= and its deprecated alias {old}=; pass {new}= only."
                    )
                warnings.warn(
                    f"{fn.__name__}: {old}= is deprecated and will be removed in the next release; "
                    f"pass {new}= instead (same meaning).",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def check_real(
    initializer: str,
    argument: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
) -> Any:
    """Checks a scalar hyper-parameter at factory time.

    Traced values (a stddev computed inside ``jit``) cannot be inspected and are
    passed through unchanged.
    """
    if isinstance(value, jax.core.Tracer):
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Real, np.ndarray, jax.Array))
        or np.ndim(value) != 0
    ):
        raise TypeError(f"{initializer}: {argument} must be a real scalar, got {value!r}.")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{initializer}: {argument} must be finite, got {x}.")
    if positive and not x > 0:
        raise ValueError(f"{initializer}: {argument} must be > 0, got {x}.")
    if nonnegative and x < 0:
        raise ValueError(f"{initializer}: {argument} must be >= 0, got {x}.")
    return value


def check_key(initializer: str, key: Any) -> Any:
    """Accepts new-style typed keys (``jax.random.key``) and raw ``uint32`` keys."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and np.ndim(key) == 0:
            return key
        if dtype == np.uint32 and np.ndim(key) == 1:
            return key
    raise TypeError(
        f"{initializer}: key must be a PRNG key made by jax.random.key(seed) "
        f"(or a raw uint32 key from jax.random.PRNGKey(seed)), got {_describe(key)}. "
        "Initializers take (key, shape, dtype); did you swap key and shape?"
    )


def check_shape(initializer: str, shape: Any) -> Shape:
    try:
        dims = tuple(shape) if isinstance(shape, Sequence) else (shape,)
        if all(isinstance(d, (numbers.Integral, np.integer)) and not isinstance(d, bool) for d in dims):
            dims = tuple(int(d) for d in dims)
            if all(d >= 0 for d in dims):
                return dims
    except TypeError:
        pass
    raise TypeError(
        f"{initializer}: shape must be a sequence of non-negative ints, got {shape!r}."
    )


def _kind(dtype: np.dtype) -> str | None:
    for kind, base in (("bool", jnp.bool_), ("integer", jnp.integer), ("float", jnp.floating),
                       ("complex", jnp.complexfloating)):
        if jnp.issubdtype(dtype, base):
            return kind
    return None


def check_dtype(initializer: str, dtype: Any, kinds: Sequence[str] = FLOAT, default: Any = None) -> np.dtype:
    """Resolves ``dtype`` (None means ``default``, itself None meaning float32) and
    rejects the kinds of dtype (``"float"``, ``"complex"``, ``"integer"``,
    ``"bool"``) not in ``kinds``, and 64-bit types while ``jax_enable_x64`` is off."""
    if dtype is None:
        dtype = jnp.float32 if default is None else default
    try:
        resolved = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{initializer}: dtype {dtype!r} is not a dtype.") from err
    kind = _kind(resolved)
    if kind not in kinds:
        allowed = " or ".join(_KIND_TEXT[k] for k in kinds)
        if kind == "complex":
            why = f"complex dtypes are not supported by {initializer}; "
            raise TypeError(f"{initializer}: {why}dtype must be {allowed}, got {resolved.name}.")
        tail = ": random weights cannot be represented in it." if kind in ("integer", "bool") else "."
        raise TypeError(f"{initializer}: dtype must be {allowed}, got {resolved.name}{tail}")
    canonical = jax.dtypes.canonicalize_dtype(resolved)
    if canonical != resolved:
        raise TypeError(
            f"{initializer}: dtype {resolved.name} needs jax.config.update('jax_enable_x64', True); "
            f"without it JAX would silently return {np.dtype(canonical).name}."
        )
    return resolved


def check_float_dtype(initializer: str, dtype: Any) -> np.dtype:
    """Resolves ``dtype`` (None means float32) and rejects non-floating types."""
    return check_dtype(initializer, dtype, FLOAT)


def check_representable(initializer: str, argument: str, value: Any, dtype: np.dtype) -> None:
    """Integer and bool dtypes hold only some values: a cast would silently
    truncate (0.5 -> 0) or wrap (-1 -> 255), so such values are an error."""
    if isinstance(value, jax.core.Tracer):
        return
    v = np.asarray(value)
    what = f"{argument}={value!r}" if v.ndim == 0 else f"{argument} (an array of shape {v.shape})"
    if np.iscomplexobj(v) and not jnp.issubdtype(dtype, jnp.complexfloating):
        if np.any(v.imag != 0):
            raise ValueError(f"{initializer}: {what} has non-zero imaginary parts, not representable in {dtype.name}.")
        v = v.real
    if jnp.issubdtype(dtype, jnp.inexact):
        return
    if dtype == np.bool_:
        ok, valid = bool(np.all((v == 0) | (v == 1))), "0 or 1 (False or True)"
    else:
        info = jnp.iinfo(dtype)
        ok = bool(np.all((v == np.round(v)) & (v >= info.min) & (v <= info.max)))
        valid = f"whole numbers in [{info.min}, {info.max}]"
    if not ok:
        raise ValueError(f"{initializer}: {what} cannot be represented in dtype {dtype.name}; valid values are {valid}.")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype sampling happens in: at least float32, so that float16 and
    bfloat16 results are float32 samples rounded once (right statistics) rather
    than samples built from 10- or 7-bit mantissas. Complex, integer and bool
    dtypes are their own compute dtype (bodies that accept them build them
    exactly, complex ones from draws in the matching real dtype)."""
    if dtype == np.float64 or _kind(dtype) in ("complex", "integer", "bool"):
        return np.dtype(dtype)
    return np.dtype(np.float32)


def real_dtype(dtype: np.dtype) -> np.dtype:
    """The real dtype of a complex one (complex64 -> float32); real dtypes unchanged."""
    return np.dtype(jnp.finfo(dtype).dtype)


def complex_normal(gen, key, shape, dtype) -> jax.Array:
    r"""Circularly-symmetric complex normal, :math:`\mathbb E|z|^2 = 1`: real and
    imaginary parts i.i.d. :math:`\mathcal N(0, 1/2)`, drawn from ``gen`` with the
    two halves of ``jax.random.split(key)``. This is ``jax.random.normal``'s complex
    law, and for the ``"jax"`` generator its values."""
    k_re, k_im = jax.random.split(key)
    real = real_dtype(dtype)
    re, im = gen.normal(k_re, shape, real), gen.normal(k_im, shape, real)
    return (re.astype(dtype) + 1j * im.astype(dtype)) / np.array(np.sqrt(2), dtype)


def complex_polar(gen, key, shape, dtype, radius: Callable) -> jax.Array:
    """``radius(u) * exp(i theta)``, ``u`` and ``theta / 2 pi`` i.i.d. U[0, 1): an
    isotropic complex law given by its radial inverse CDF (Trabelsi et al. 2018,
    "Deep Complex Networks"; ``jax.nn.initializers``' complex uniform and
    truncated normal)."""
    k_r, k_theta = jax.random.split(key)
    real = real_dtype(dtype)
    r = radius(gen.uniform(k_r, shape, real))
    theta = jnp.asarray(2 * np.pi, real) * gen.uniform(k_theta, shape, real)
    return lax.complex(r * jnp.cos(theta), r * jnp.sin(theta)).astype(dtype)


def _describe(x: Any) -> str:
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return f"an array of dtype {x.dtype} and shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"


def shard(
    sample: Callable[[Any], jax.Array],
    key: Any,
    out_sharding: OutSharding,
    name: str | None = None,
    *,
    whole: bool = False,
) -> jax.Array:
    """Runs ``sample(key)`` so that its result carries ``out_sharding``.

    The whole sampler is compiled with ``out_shardings``: XLA's partitioner then
    computes on each device only the values of its shard. Values do not depend on
    the sharding because JAX's partitionable threefry (the default) and jinit's
    own generators make every value a function of (key, index) only.

    ``whole=True`` is for samplers whose values couple all elements through
    reductions (matrix products): partitioned, those would change the order of
    floating-point sums, so the sampler runs replicated (every device computes
    the whole array, bit-identical to the unsharded call) and each device keeps
    its shard.
    """
    if out_sharding is None:
        return sample(key)
    if not isinstance(out_sharding, (NamedSharding, PartitionSpec)):
        raise TypeError(
            f"{name or 'initializer'}: out_sharding must be a jax.sharding.NamedSharding, a PartitionSpec "
            f"(inside `with jax.set_mesh(mesh)`), or None; got {_describe(out_sharding)}."
        )
    if whole:
        replicated = PartitionSpec() if isinstance(out_sharding, PartitionSpec) else NamedSharding(
            out_sharding.mesh, PartitionSpec()
        )
        out = jax.jit(lambda x: x, out_shardings=out_sharding)(jax.jit(sample, out_shardings=replicated)(key))
    else:
        out = jax.jit(sample, out_shardings=out_sharding)(key)
    mesh = jax.sharding.get_abstract_mesh()
    explicit_target = isinstance(out_sharding, PartitionSpec) or bool(out_sharding.mesh.explicit_axes)
    if not mesh.empty and mesh.explicit_axes and explicit_target:
        # Under `jax.set_mesh` with Explicit axes the sharding is part of the
        # type, and a nested jit's out_shardings does not set it: inside an outer
        # jit the result would be typed (and gathered) as replicated. Restate it;
        # no values change and no data moves.
        out = jax.sharding.reshard(out, out_sharding)
    return out


# Compiled samplers shared by initializers built with equal hyper-parameters, so
# that `nnx.Linear(..., kernel_init=jinit.he_normal())` in a loop compiles once
# per shape rather than once per layer.
_SAMPLERS: dict[Any, Callable] = {}
_SAMPLERS_MAX = 1024


def _freeze(value: Any, depth: int = 0) -> Any:
    """A hashable fingerprint of a closure's value; TypeError if there is none.

    Scalars are keyed by type and repr (so -0.0 and 0.0, or 2 and 2.0, never
    share a program); functions by their code and frozen closure.
    """
    if depth > 8:
        raise TypeError("closure too deep to fingerprint")
    if value is None or isinstance(value, (bool, int, float, complex, str)):
        return (type(value), repr(value))
    if isinstance(value, tuple):
        return (tuple, tuple(_freeze(v, depth + 1) for v in value))
    if isinstance(value, types.FunctionType):
        cells = tuple(c.cell_contents for c in value.__closure__ or ())
        return (value.__code__, id(value.__globals__), _freeze(cells, depth + 1))
    if isinstance(value, (jax.Array, np.ndarray, jax.core.Tracer)):
        raise TypeError("arrays are not fingerprinted")
    hash(value)
    return value


def _compiled_sampler(name, body, open_bounds, sample) -> Callable:
    compiled = functools.partial(jax.jit, static_argnums=(1, 2))(sample)
    try:
        fingerprint = (name, _freeze(body), _freeze(open_bounds))
    except (TypeError, ValueError):
        return compiled
    if fingerprint not in _SAMPLERS:
        if len(_SAMPLERS) >= _SAMPLERS_MAX:
            _SAMPLERS.pop(next(iter(_SAMPLERS)))
        _SAMPLERS[fingerprint] = compiled
    return _SAMPLERS[fingerprint]


def random_initializer(
    name: str,
    body: Callable[[Any, Shape, np.dtype], jax.Array],
    *,
    validate_shape: Callable[[Shape], None] | None = None,
    open_bounds: Callable[[Shape], tuple[float | None, float | None]] | None = None,
    whole: bool = False,
    dtype: Any = None,
    kinds: Sequence[str] = FLOAT,
    validate_dtype: Callable[[np.dtype, Shape | None], None] | None = None,
) -> Initializer:
    """Builds the public initializer around ``body(key, shape, compute_dtype)``.

    ``body`` returns samples in the compute dtype; the wrapper checks every
    argument, casts to the requested dtype once, and applies ``out_sharding``.
    The body is jit-compiled per (shape, dtype), so eager and jitted calls run the
    same program and agree bit for bit.

    ``open_bounds(shape)`` gives exclusive bounds ``(lo, hi)`` (either may be
    None) of a real distribution. Rounding to the requested dtype (or ``x*s + m``)
    can land a sample on a bound, so after the cast samples are clamped to the
    nearest value strictly inside, in that dtype.

    ``dtype`` is the default dtype of the initializer (None: float32), checked
    here, at factory time, against ``kinds`` (see :func:`check_dtype`) and
    ``validate_dtype(dtype, None)``; a call's dtype is checked the same way, with
    ``validate_dtype(dtype, shape)``.

    ``whole``: see :func:`shard`.
    """
    default = check_dtype(name, dtype, kinds)
    if validate_dtype is not None and dtype is not None:
        validate_dtype(default, None)

    def sample(key, shape, dtype):
        x = body(key, shape, compute_dtype(dtype)).astype(dtype)
        if open_bounds is not None and _kind(dtype) == "float":
            lo, hi = open_bounds(shape)
            if lo is not None:
                x = jnp.maximum(x, jnp.nextafter(jnp.asarray(lo, dtype), jnp.asarray(np.inf, dtype)))
            if hi is not None:
                x = jnp.minimum(x, jnp.nextafter(jnp.asarray(hi, dtype), jnp.asarray(-np.inf, dtype)))
        return x

    compiled = _compiled_sampler(name, body, open_bounds, sample)

    def init(key, shape, dtype=default, out_sharding: OutSharding = None) -> jax.Array:
        key = check_key(name, key)
        shape = check_shape(name, shape)
        dtype = check_dtype(name, dtype, kinds, default)
        if validate_shape is not None:
            validate_shape(shape)
        if validate_dtype is not None:
            validate_dtype(dtype, shape)
        if math.prod(shape) == 0:
            return shard(lambda _: jnp.zeros(shape, dtype), key, out_sharding, name)
        return shard(lambda k: compiled(k, shape, dtype), key, out_sharding, name, whole=whole)

    init.__name__ = init.__qualname__ = name
    return init


def _is_key(x: Any, nargs: int) -> bool:
    """A typed PRNG key, or a raw ``uint32[2]`` key followed by more arguments (a
    lone ``uint32[2]`` array could be a factory's own argument, e.g. a constant)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return dtype == np.uint32 and tuple(getattr(x, "shape", ())) == (2,) and nargs >= 2


def factory(fn: Callable | None = None, *, role: str = "kernel_init") -> Callable:
    """Marks ``fn`` as an initializer factory: a call that passes a PRNG key first,
    i.e. the factory itself handed over where an initializer belongs
    (``kernel_init=jinit.he_normal``), raises a ``TypeError`` that says to call
    it, instead of failing deep inside on the key. ``role`` is the layer argument
    used in the message's example (``"bias_init"`` for fills)."""
    if fn is None:
        return functools.partial(factory, role=role)
    required = any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(fn).parameters.values()
    )
    call = f"jinit.{fn.__name__}({'...' if required else ''})"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args and _is_key(args[0], len(args)):
            raise TypeError(
                f"jinit.{fn.__name__} is a factory, not an initializer: pass {call} (note the call), "
                f"e.g. nn.Dense(4, {role}={call})."
            )
        return fn(*args, **kwargs)

    wrapper.__jinit_factory__ = True
    return wrapper
