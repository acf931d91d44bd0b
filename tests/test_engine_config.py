"""How the program reads its stack's config from the Pulumi engine (components/stack_config.py): every key of
every namespace, from both places the SDK keeps it (the config the engine sets at startup and the PULUMI_CONFIG
environment variable), the engine's winning where both have a key, as the SDK's own `pulumi.Config` decides."""
from __future__ import annotations

import json

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from components import stack_config
from conftest import dev_config
from gpu_slicing.errors import ConfigError
from tools.harness import config_to_engine


@pytest.fixture
def engine(monkeypatch):
    """Set the engine's config for one test (restored afterwards) and clear PULUMI_CONFIG."""
    token = runtime_config.CONFIG.set({})
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    yield lambda values: pulumi.runtime.set_all_config(config_to_engine(values))
    runtime_config.CONFIG.reset(token)


def test_the_engines_config_is_read(engine):
    engine(dev_config())
    assert stack_config.load().config.cluster.name == "gpu-dev"


def test_config_only_in_the_environment_is_read(engine, monkeypatch):
    engine({})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config_to_engine(dev_config())))
    assert stack_config.load().config.cluster.name == "gpu-dev"


def test_where_both_have_a_key_the_engines_value_wins_as_for_pulumi_config(engine, monkeypatch):
    env = dev_config()
    env["gpu-slicing:cluster"] = {**env["gpu-slicing:cluster"], "name": "from-env"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config_to_engine(env)))
    engine(dev_config())
    assert json.loads(pulumi.Config("gpu-slicing").get("cluster"))["name"] == "gpu-dev"  # the SDK's own order
    assert stack_config.load().config.cluster.name == "gpu-dev"


def test_an_unknown_key_from_either_place_is_refused_naming_it(engine, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"gpu-slicing:clusterr": "{}"}))
    engine(dev_config())
    with pytest.raises(ConfigError) as e:
        stack_config.load()
    assert "gpu-slicing:clusterr" in str(e.value)
