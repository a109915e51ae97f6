"""The hidden-unit probe: features of a text, correlations, and a smoke run with its control."""

import numpy as np
import pytest
import torch

from lm.model import GRULM, GRUConfig
from lm.probe import FEATURES, correlations, probe, public, text_features


def test_text_features():
    text = "あ「カタカナ」\n(x)漢字"
    f = text_features(text)
    assert len(text) == 13
    assert f["in_quote"].tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert f["after_newline"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert f["in_parens"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0]
    assert f["katakana"].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    # run positions: カタカナ is one katakana run, 漢字 one kanji run
    assert f["run_position"].tolist() == [0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 1]


def test_correlations():
    rng = np.random.default_rng(0)
    feature = (rng.random(500) < 0.3).astype(float)
    acts = np.stack([feature * 2 + 1, -feature, rng.normal(size=500), np.ones(500)], axis=1)
    r = correlations(acts, feature)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0)
    assert abs(r[2]) < 0.2 and r[3] == 0.0


def test_probe_smoke():
    class Vocab:
        bos = 1

        def encode(self, text):
            return np.array([3 + (ord(c) % 20) for c in text], dtype=np.int32)

    torch.manual_seed(0)
    model = GRULM(GRUConfig(23, 8, 12, head="full"))
    texts = ["これは「テスト」です。\n関数(引数)を呼ぶ。", "カタカナとひらがな\n「引用」"]
    result = probe(model, Vocab(), texts, max_chars=1000, top=3)
    assert result["chars"] == sum(len(t) for t in texts) and result["units"] == 12
    assert set(result["features"]) == set(FEATURES)
    for f in result["features"].values():
        assert len(f["top_units"]) == 3
        assert 0 <= f["max_abs_r"] <= 1 and 0 <= f["control_max_abs_r"] <= 1
        assert abs(f["top_units"][0]["r"]) == pytest.approx(f["max_abs_r"])
    assert result["_acts"].shape == (result["chars"], 12)
    assert "_acts" not in public(result)
