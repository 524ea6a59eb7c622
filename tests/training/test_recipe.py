import pytest

from training.recipe import RecipeError, interleave


def test_interleave_takes_weight_items_per_round():
    gsm = [f"g{i}" for i in range(7)]
    math = ["m0", "m1", "m2"]
    assert interleave([gsm, math], [3, 1]) == ["g0", "g1", "g2", "m0", "g3", "g4", "g5", "m1", "g6", "m2"]


def test_interleave_default_weights_is_round_robin():
    assert interleave([[1, 2], [3], [4, 5, 6]], [1, 1, 1]) == [1, 3, 4, 2, 5, 6]


def test_interleave_refuses_zero_weight():
    with pytest.raises(RecipeError, match="weight"):
        interleave([[1]], [0])
