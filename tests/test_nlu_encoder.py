"""The bundled sentence encoder, float32 and int8-quantised."""

import pickle

import numpy as np

from annae.nlu.encoder import Encoder
from annae.nlu.features import FeatureConfig

QUESTIONS = [
    "How long does delivery take?",
    "my card payment was declined twice",
    "배송은 얼마나 걸려요?",
    "환불 받고 싶어요",
]


def test_int8_encoder_stays_close_to_float32():
    full = Encoder("bundled").encode(QUESTIONS)
    small = Encoder("bundled", int8=True).encode(QUESTIONS)
    assert small.shape == full.shape == (4, 384)
    assert np.allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-4)
    cos = (full * small).sum(1)
    assert cos.min() > 0.9, cos
    # quantisation changed the weights: the two are not the same model
    assert not np.allclose(full, small, atol=1e-3)
    # nearest neighbours agree: the Korean delivery question is closest to its English twin
    sims = small @ small.T
    np.fill_diagonal(sims, -1)
    assert sims[2].argmax() in (0, 3)


def test_models_pickled_before_int8_keep_a_float32_encoder():
    config = FeatureConfig()
    assert config.int8 is True
    state = dict(config.__dict__)
    del state["int8"]
    old = FeatureConfig.__new__(FeatureConfig)
    old.__setstate__(state)
    assert old.int8 is False
    assert pickle.loads(pickle.dumps(config)) == config
    assert FeatureConfig.from_dict({"encoder": "bundled"}).int8 is False
    assert FeatureConfig.from_dict(config.to_dict()).int8 is True
