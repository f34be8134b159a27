"""jinit.audit: the per-parameter table and its flags, on real models."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from tests.test_models import GPT, ResNet

KEY = jax.random.key(0)


def test_audit_scanned_gpt_rows_rules_and_layouts():
    model, x = GPT(scanned=True), jnp.zeros((1, 8), jnp.int32)
    rules = jinit.gpt2_rules(3)
    variables = jinit.init(model, rules, KEY, x)
    report = jinit.audit(variables, rules=rules, layouts=jinit.linen_layouts(model, x))
    rows = {r.path: r for r in report.rows}
    out = rows["params/block/attn/out/kernel"]
    assert out.rule == "rule 0 (residual output projections)"
    assert out.fans == (64, 64) and "3 stacked on axis 0" in out.layout
    lo, hi = out.std_range
    assert 0.7 * 0.02 / 6**0.5 < lo <= hi < 1.3 * 0.02 / 6**0.5
    assert rows["params/ln_f/scale"].rule is None
    assert not report.flagged and "| params/wte/embedding | (50, 64) |" in str(report)
    # the same variables without layouts: the stacked leaves are flagged
    bare = {r.path: r for r in jinit.audit(variables).rows}
    assert "read as one tensor" in bare["params/block/c_fc/kernel"].flags


def test_audit_flags_zero_kernels_and_fan_scaled_biases():
    model = eqx.nn.MLP(8, 2, 16, 1, key=KEY)
    rules = [("role:kernel", jinit.zeros()), ("role:bias", jinit.he_normal(), jinit.LeafSpec())]
    with pytest.raises(ValueError):  # he_normal on a 1-D bias has no fans: reinit says so
        jinit.reinit(KEY, model, rules)
    zeroed = jinit.reinit(KEY, model, rules[:1])
    report = jinit.audit(zeroed, rules=rules)
    flags = {r.path: r.flags for r in report.rows}
    assert flags["layers/0/weight"] == ("zero",)
    assert flags["layers/0/bias"] == ("fan-scaled bias",)
    assert jinit.audit(model).rows[0].fans == (8, 16)


def test_audit_constant_slice_of_a_stack_and_stream_growth():
    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
        return nnx.Linear(8, 8, rngs=rngs)

    stack = make(nnx.Rngs(0))
    stack.kernel[...] = stack.kernel[...].at[1].set(0.5)
    report = jinit.audit(stack, stream_std=[1.0, 1.2, 1.9])
    assert {r.path: r.flags for r in report.rows}["kernel"] == ("constant",)
    assert report.model_flags and "grows 3.61x" in report.model_flags[0]
    assert not jinit.audit(stack, stream_std=[1.0, 1.1]).model_flags
    with pytest.raises(ValueError, match="stream_std must be a sequence"):
        jinit.audit(stack, stream_std=[1.0])


def test_audit_fixup_resnet_explains_its_zeros():
    L, x = 4, jnp.ones((1, 8, 8, 3))
    rules = jinit.fixup_rules(L, ["*conv1/kernel", "*conv2/kernel"], "*head/*")
    model = ResNet(channels=8, blocks=L)
    report = jinit.audit(jinit.init(model, rules, KEY, x), rules=rules, layouts=jinit.linen_layouts(model, x))
    rows = {r.path: r for r in report.rows}
    assert rows["params/blocks/conv2/kernel"].flags == ("zero",)
    assert rows["params/blocks/conv2/kernel"].rule == "rule 0 (last layer of each branch)"
    assert rows["params/blocks/conv1/kernel"].fans == (72, 72)
    np.testing.assert_allclose(rows["params/stem/kernel"].std, (2 / 27) ** 0.5, rtol=0.25)
