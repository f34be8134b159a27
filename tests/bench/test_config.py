"""BenchConfig: every default once, validation at construction naming the field, presets as
overrides; the runner's chunking."""

import dataclasses

import pytest

import jinit
from bench.config import DEFAULT_LRS, BenchConfig, ConfigError
from bench.presets import PRESETS, preset_config
from bench.runner import chunks


def test_defaults_are_the_default_preset():
    assert preset_config("default") == BenchConfig()
    config = BenchConfig()
    assert config.archs == ("mlp", "resmlp") and len(config.lrs) >= 3 and config.schemes is None
    assert config.lrs == DEFAULT_LRS["momentum"]


@pytest.mark.parametrize("changes,field,message", [
    ({"schemes": ("he_normal", "nope")}, "schemes", "valid choices are 'zeros'"),
    ({"archs": ("mlp", "convnext")}, "archs", "valid architectures are mlp"),
    ({"activations": ()}, "activations", "(none given)"),
    ({"depths": (3, 0)}, "depths", "integers >= 1"),
    ({"optimizer": "rmsprop"}, "optimizer", "valid optimizers are sgd, momentum, adam"),
    ({"lrs": (0.1, -1.0)}, "lrs", "positive finite"),
    ({"lrs": (float("inf"),)}, "lrs", "positive finite"),
    ({"steps": 0}, "steps", ">= 1"),
    ({"seeds": 1.5}, "seeds", "integer"),
    ({"val_fraction": 1.0}, "val_fraction", "(0, 1)"),
    ({"batch_models": 0}, "batch_models", ">= 1"),
    ({"target_loss": float("nan")}, "target_loss", "finite"),
])
def test_invalid_settings_name_the_field(changes, field, message):
    with pytest.raises(ConfigError) as err:
        BenchConfig().replace(**changes)
    assert err.value.field == field and message in str(err.value)


def test_values_are_normalized():
    config = BenchConfig(lrs=(0.03, 0.01, 0.03), depths=(5, 5, 2), schemes="he_normal", steps=10, eval_every=50)
    assert config.lrs == (0.01, 0.03) and config.depths == (5, 2) and config.schemes == ("he_normal",)
    assert config.eval_every == 10 and config.eval_steps() == [0, 10]
    assert BenchConfig(**config.asdict()) == config  # asdict round-trips
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3


def test_replace_refuses_unknown_settings():
    with pytest.raises(ConfigError, match="unknown setting.*lr.*valid settings are schemes"):
        BenchConfig().replace(lr=0.1)


def test_every_preset_is_a_valid_config():
    for name, preset in PRESETS.items():
        config = BenchConfig.from_preset(name)
        assert config.preset == name
        # registered schemes, or parametric ones (built from their names, never registered)
        assert all(s in jinit.SCHEMES or jinit.registry.parametric_arguments(s) for s in config.schemes or ())
        assert set(preset.values) <= {f.name for f in dataclasses.fields(BenchConfig)}
    assert BenchConfig.from_preset("quick", steps=5).steps == 5
    with pytest.raises(ConfigError, match="valid presets are default, quick"):
        BenchConfig.from_preset("nope")


@pytest.mark.parametrize("n,size,expected", [(10, 4, [4, 4, 2]), (9, 9, [9]), (10, None, [10]), (3, 5, [3]),
                                             (0, 4, []), (19, 9, [7, 7, 5])])
def test_chunks_are_few_and_keep_the_order(n, size, expected):
    jobs = list(range(n))
    out = chunks(jobs, size)
    assert [len(c) for c in out] == expected and [j for c in out for j in c] == jobs
