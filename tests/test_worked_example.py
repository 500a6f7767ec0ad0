"""The course page's worked example, number by number.

Two independent witnesses: the numbers printed on the page (to their printed
precision) and a 40-digit mpmath computation that shares no code with numclip.
"""

import json
import math
import re

import numpy as np
import pytest
from mpmath import mp, mpf

from numclip import worked_example as we
from numclip.cli import main

mp.dps = 40
RAW = we.compute()
NORMALIZED = we.compute(normalized=True)


def oracle(normalized):
    """Every intermediate of the example in 40-digit arithmetic, from the page's decimals."""
    img = [[mpf(v) for v in row] for row in ("1 0 0", "0 1 0", "0 0 1") for row in [row.split()]]
    txt = [[mpf(v) for v in row.split()] for row in ("0.9 0.1 0.0", "0.1 0.8 0.1", "0.0 0.3 0.7")]
    if normalized:
        img = [[v / mp.sqrt(sum(u * u for u in row)) for v in row] for row in img]
        txt = [[v / mp.sqrt(sum(u * u for u in row)) for v in row] for row in txt]
    tau = mpf("0.07")
    s = [[sum(a * b for a, b in zip(i, t, strict=True)) / tau for t in txt] for i in img]
    st = [list(col) for col in zip(*s, strict=True)]
    sums = [sum(mp.exp(v) for v in row) for row in s]
    sums_t = [sum(mp.exp(v) for v in row) for row in st]
    p = [[mp.exp(v) / sums[i] for v in row] for i, row in enumerate(s)]
    pt = [[mp.exp(v) / sums_t[i] for v in row] for i, row in enumerate(st)]
    li = [-mp.log(p[i][i]) for i in range(3)]
    lt = [-mp.log(pt[i][i]) for i in range(3)]
    return {"logits_per_image": s, "row_sum_exp": sums, "softmax_image_to_text": p,
            "pair_loss_image_to_text": li, "loss_image_to_text": sum(li) / 3,
            "logits_per_text": st, "row_sum_exp_text": sums_t, "softmax_text_to_image": pt,
            "pair_loss_text_to_image": lt, "loss_text_to_image": sum(lt) / 3,
            "loss": (sum(li) + sum(lt)) / 6}


@pytest.mark.parametrize("result, normalized", [(RAW, False), (NORMALIZED, True)])
def test_every_intermediate_matches_a_40_digit_oracle(result, normalized):
    for key, expected in oracle(normalized).items():
        expected = np.array(expected, dtype=float)  # rounds 40 digits to the nearest float64
        # -log p = lse(z) - z cancels for a confident pair: its float64 error is absolute,
        # a few ulps of the largest logit (ulp(14.2) = 1.8e-15), not relative
        np.testing.assert_allclose(result[key], expected, rtol=1e-13, atol=1e-14, err_msg=key)


def test_symmetric_loss_is_what_clip_loss_returns():
    assert RAW["loss"] == pytest.approx((RAW["loss_image_to_text"] + RAW["loss_text_to_image"]) / 2,
                                        rel=1e-14)


# The page's printed numbers that are right, checked to their printed precision.
@pytest.mark.parametrize("key, index, printed", [
    ("logits_per_image", (0, 0), "12.857"), ("logits_per_image", (0, 1), "1.4286"),
    ("logits_per_image", (1, 1), "11.4286"), ("logits_per_image", (1, 2), "4.2857"),
    ("logits_per_image", (2, 1), "1.4286"), ("logits_per_image", (2, 2), "10"),
    ("logits_per_image", (0, 2), "0"), ("row_sum_exp", (1,), "91987"),
    ("softmax_image_to_text", (1, 1), "0.9992"), ("softmax_image_to_text", (1, 2), "0.0008"),
    ("softmax_image_to_text", (2, 1), "0.0002"), ("softmax_image_to_text", (2, 2), "0.9998"),
    ("softmax_image_to_text", (0, 1), "0"), ("softmax_image_to_text", (1, 0), "0"),
])
def test_page_values_that_are_right(key, index, printed):
    assert we.agrees(printed, float(np.asarray(RAW[key])[index]))


# The page's wrong numbers: numclip gives the corrected value at the same precision.
@pytest.mark.parametrize("key, index, page, corrected", [
    ("row_sum_exp", (0,), "383523", "383524"),
    ("row_sum_exp", (2,), "22031", "22032"),
    ("softmax_image_to_text", (0, 0), "0.9999", "1.0000"),
    ("pair_loss_image_to_text", (0,), "-0.0000", "0.0000"),  # a sign error only
    ("pair_loss_image_to_text", (1,), "-0.0004", "0.0008"),
    ("pair_loss_image_to_text", (2,), "-0.0001", "0.0002"),
    ("loss_image_to_text", (), "0.00016", "0.00036"),
])
def test_page_values_that_are_wrong_are_corrected(key, index, page, corrected):
    value = float(np.asarray(RAW[key])[index])
    assert not we.agrees(page, value)
    assert we.agrees(corrected, value)


def test_how_the_wrong_page_values_came_about():
    p = np.diagonal(RAW["softmax_image_to_text"])
    assert [math.floor(v) for v in RAW["row_sum_exp"]] == [383523, 91987, 22031]  # truncated
    assert math.floor(p[0] * 1e4) / 1e4 == 0.9999  # truncated, not rounded
    assert [round(v, 4) for v in np.log10(p)] == [-0.0, -0.0004, -0.0001]  # base-10 logs
    assert round(-np.mean(np.log10(p)), 5) == 0.00016


def test_the_text_embeddings_are_not_unit_length():
    np.testing.assert_allclose(RAW["image_norms"], 1.0)
    assert np.all(RAW["text_norms"] < 0.91)


def test_every_disagreement_with_the_page_has_an_erratum_and_vice_versa():
    rows = {(r["key"], r["index"]): r for r in we.compare_with_page()}
    wrong = {w for w, r in rows.items() if not r["agrees"]}
    covered = [w for e in we.errata() for w in e["where"]]
    assert len(covered) == len(set(covered)), "a printed number has two errata"
    assert wrong <= set(covered)
    assert len(wrong) == 7
    # the covered numbers that agree are E4's: the probabilities printed as 0, which are not 0
    e4 = next(e for e in we.errata() if e["id"] == "E4")
    assert set(covered) - wrong == set(e4["where"])
    assert {rows[w]["printed"] for w in e4["where"]} == {"0"} and len(e4["where"]) == 4
    assert all(0 < RAW[key][index] < 5e-5 for key, index in e4["where"])


def test_errata_have_the_promised_fields():
    for e in we.errata():
        assert {"claim", "page_value", "correct_value", "explanation"} <= set(e)
        assert all(isinstance(e[k], str) and e[k] for k in ("claim", "page_value",
                                                              "correct_value", "explanation"))


def test_cli_json_carries_the_keys_and_values(capsys):
    assert main(["example", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("logits_per_image", "softmax_image_to_text", "loss_image_to_text",
                "loss_text_to_image", "loss", "errata"):
        assert key in out
    np.testing.assert_allclose(out["logits_per_image"], RAW["logits_per_image"], rtol=1e-15)
    assert out["loss"] == RAW["loss"]
    assert len(out["errata"]) == len(we.errata())
    assert set(out["errata"][0]) == {"id", "claim", "page_value", "correct_value", "explanation"}


def test_cli_json_normalized_variant(capsys):
    assert main(["example", "--normalized", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["normalized"] is True
    assert out["loss"] == pytest.approx(float(oracle(True)["loss"]), rel=1e-13)


def test_walkthrough_marks_each_page_value():
    text = we.walkthrough(RAW)
    assert text.count(" ok") == 18
    assert text.count("ok [E4]") == 4  # the zeros: right to 4 decimals, yet not zero
    # seven page numbers, and two claims with no printed number: unit length [E1], fixed tau [E7]
    assert text.count("XX [E") == 7 + 2
    assert "0.00036128092" in text and "383523.56" in text


def test_every_erratum_listed_is_marked_above_the_list():
    body, listed = we.walkthrough(RAW).split("Errata for the course page")
    ids = re.findall(r"^\[(E\d+)\]", listed, flags=re.MULTILINE)
    assert ids == [e["id"] for e in we.errata()]
    unmarked = [i for i in ids if not re.search(rf"\b(ok|XX) \[{i}\]", body)]
    assert not unmarked, f"errata listed but marked on no line above: {unmarked}"


def test_normalized_walkthrough_shows_the_norms_before_and_after():
    text = we.walkthrough(NORMALIZED)
    assert "raw" in text and "XX" not in text and "Errata" not in text
    assert f"{NORMALIZED['loss']:.8g}" in text
    step1 = text.split("1. Normalize")[1].split("2. Logits")[0]
    for name, norms in (("I", RAW["image_norms"]), ("T", RAW["text_norms"])):
        for i, before in enumerate(norms):
            line = re.search(rf"\|{name}_{i + 1}\|\s+(\S+)\s+(\S+)\s*$", step1, re.MULTILINE)
            assert line, f"no norm line for {name}_{i + 1}:\n{step1}"
            assert float(line[1]) == pytest.approx(before, rel=1e-8)  # printed to 8 digits
            assert float(line[2]) == 1.0  # unit length, to the 8 digits printed


@pytest.mark.parametrize("argv, result", [(["example"], RAW),
                                          (["example", "--normalized"], NORMALIZED)])
def test_cli_example_prints_the_walkthrough(capsys, argv, result):
    assert main(argv) == 0
    assert capsys.readouterr().out == we.walkthrough(result) + "\n"


def test_walkthrough_leaves_the_print_options_alone():
    before = np.get_printoptions()
    we.walkthrough(RAW)
    assert np.get_printoptions() == before


# Bad input: (function, args, error, words the message must contain)
BAD_INPUT = [
    (we.compute, ("yes",), TypeError, ["normalized", "True or False"]),
    (we.compute, (None,), TypeError, ["normalized", "True or False"]),
    (we.compare_with_page, ([1, 2],), TypeError, ["result", "compute()", "list"]),
    (we.compare_with_page, ({"loss": 1.0},), ValueError, ["result", "compute()", "lacks"]),
    (we.errata, ("r",), TypeError, ["result", "compute()", "str"]),
    (we.errata, ({},), ValueError, ["result", "lacks", "softmax_image_to_text"]),
    (we.to_json, (None,), TypeError, ["result", "compute()", "NoneType"]),
    (we.to_json, ({"normalized": False},), ValueError, ["result", "lacks", "grads"]),
    (we.walkthrough, (None,), TypeError, ["result", "compute()", "NoneType"]),
    (we.walkthrough, (RAW["softmax_image_to_text"],), TypeError, ["result", "ndarray"]),
    (we.walkthrough, ({k: v for k, v in RAW.items() if k != "loss"},), ValueError,
     ["result", "lacks", "'loss'"]),
    # values of the wrong kind: AttributeError, broadcast errors and NaN rows before
    (we.to_json, (RAW | {"grads": None},), TypeError,
     ["result['grads'] must be a dict with the keys", "NoneType"]),
    (we.to_json, (RAW | {"grads": {"loss": 1.0}},), ValueError,
     ["result['grads'] must have the keys", "['loss']"]),
    (we.walkthrough, (RAW | {"logits_per_image": np.ones(2)},), ValueError,
     ["result['logits_per_image'] must have shape (3, 3), got (2,)"]),
    (we.walkthrough, (RAW | {"logits_per_image": None},), TypeError,
     ["result['logits_per_image'] must be an array"]),
    (we.compare_with_page, (RAW | {"logits_per_image": np.full((3, 3), np.nan)},), ValueError,
     ["result['logits_per_image'] contains NaN"]),
    (we.compare_with_page, (RAW | {"loss_image_to_text": "0.00016"},), TypeError,
     ["result['loss_image_to_text'] must be a real number", "str"]),
    (we.errata, (RAW | {"tau": math.inf},), ValueError, ["result['tau'] must be finite"]),
    (we.walkthrough, (RAW | {"normalized": "no"},), TypeError,
     ["result['normalized'] must be True or False"]),
    (we.walkthrough, (RAW | {"grads": RAW["grads"] | {"image_embeds": np.ones((3, 3), int)}},),
     TypeError, ["result['grads']['image_embeds'] must have a real floating dtype"]),
]


@pytest.mark.parametrize("func, args, error, words", BAD_INPUT,
                         ids=lambda v: getattr(v, "__name__", None))
def test_bad_input_raises_a_clear_error(func, args, error, words):
    with pytest.raises(error) as info:
        func(*args)
    for word in words:
        assert word in str(info.value), f"{func.__name__}: {word!r} not in {info.value}"


def test_every_public_function_has_bad_input_rows():
    functions = {n for n in we.__all__ if callable(getattr(we, n))}
    assert functions == {f.__name__ for f, *_ in BAD_INPUT}
