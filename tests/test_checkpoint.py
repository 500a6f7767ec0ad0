"""The checkpoint loader against damaged and doctored files.

Whatever is done to a checkpoint, ``load_checkpoint`` either refuses it with a
one-line :class:`CheckpointError` that names the file, or returns exactly the
run that was saved: nothing in between, and no other exception.
"""

import io
import json
import random
import tracemalloc
import zipfile

import numpy as np
import pytest

from numclip import train as tr
from numclip.train import CheckpointError, TrainConfig

SMALL = TrainConfig(epochs=1, batch_size=32, embed_dim=4, train_size=64, eval_size=40)


@pytest.fixture(scope="module", params=["clip", "siglip"])
def saved(request, tmp_path_factory):
    """A saved one-epoch run: (state, the file's bytes)."""
    path = tmp_path_factory.mktemp(request.param) / "run.npz"
    state = tr.train(TrainConfig(**{**SMALL.__dict__, "loss": request.param}), quiet=True,
                     out=path)
    return state, path.read_bytes()


def assert_same_run(a, b):
    assert a.config == b.config and a.epoch == b.epoch and a.vocab == b.vocab
    assert a.history == b.history and a.model.loss == b.model.loss
    for name, x, y in [("param", a.model.params, b.model.params),
                       ("opt", a.optimizer.state, b.optimizer.state)]:
        assert x.keys() == y.keys(), name
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name}.{k}")
            assert np.asarray(x[k]).dtype == np.asarray(y[k]).dtype, f"{name}.{k}"


def load_or_refuse(tmp_path, data: bytes, original):
    """None if ``data`` loads as exactly ``original``; the error message if it is refused."""
    path = tmp_path / "doctored.npz"
    path.write_bytes(data)
    try:
        state = tr.load_checkpoint(path)
    except CheckpointError as err:
        message = str(err)
        assert str(path) in message and "\n" not in message, message
        assert "allow_pickle" not in message, message
        return message
    assert_same_run(state, original)
    return None


# ----------------------------------------------------------------------------- doctoring

def entries(data: bytes) -> dict:
    """The .npy bytes of every entry, by key."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name.removesuffix(".npy"): z.read(name) for name in z.namelist()}


def rezip(members: dict, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip with these entries (correct CRCs: the loader must judge the content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for key, raw in members.items():
            z.writestr(f"{key}.npy", raw)
    return buffer.getvalue()


def npy(array, version=None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), version=version, allow_pickle=True)
    return buffer.getvalue()


def array_of(raw: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)


def with_header(raw: bytes, shape) -> bytes:
    """The same data bytes behind a (version 1.0) header that claims another shape."""
    f = io.BytesIO(raw)
    assert np.lib.format.read_magic(f) == (1, 0)
    _, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
              "shape": tuple(shape)}
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + raw[f.tell():]


def replaced(data: bytes, key: str, raw: bytes) -> bytes:
    return rezip(entries(data) | {key: raw})


# ----------------------------------------------------------------------------- the fuzz

def fuzz_cases(data: bytes, seed: int = 0):
    """Truncations and single bit flips, most of them where the structure is."""
    rng = random.Random(seed)
    z = zipfile.ZipFile(io.BytesIO(data))
    central = range(z.start_dir, len(data))  # the directory and its end record
    def data_start(info):  # a local header: 30 bytes, then the name and an extra field
        at = info.header_offset
        return at + 30 + sum(int.from_bytes(data[at + i:at + i + 2], "little") for i in (26, 28))

    local = [range(i.header_offset, data_start(i)) for i in z.infolist()]
    npy_headers = [range(data_start(i), data_start(i) + 128) for i in z.infolist()]
    ends = [0, 1, 3, 4, 30, len(data) - 22, len(data) - 1, *rng.sample(range(len(data)), 40)]
    for length in ends:
        yield f"truncated to {length}", data[:length]

    def flip(where, n, what):
        for _ in range(n):
            region = where if isinstance(where, range) else rng.choice(where)
            pos, bit = rng.choice(region), rng.randrange(8)
            doctored = bytearray(data)
            doctored[pos] ^= 1 << bit
            yield f"{what}: bit {bit} of byte {pos}", bytes(doctored)

    yield from flip(central, 80, "zip directory")
    yield from flip(local, 50, "local header")
    yield from flip(npy_headers, 90, ".npy header")
    yield from flip(range(len(data)), 30, "anywhere")


def test_fuzzed_files_are_refused_or_load_exactly(saved, tmp_path):
    state, data = saved
    cases = 0
    for what, doctored in fuzz_cases(data, seed=len(data)):
        try:
            refused = load_or_refuse(tmp_path, doctored, state)
        except Exception as err:  # anything but a CheckpointError or the run itself
            pytest.fail(f"{what}: {type(err).__name__}: {err}")
        # every byte of an entry is under its CRC-32, and a shorter file lacks the directory
        if what.startswith((".npy header", "truncated")):
            assert refused, f"{what}: loaded"
        cases += 1
    assert cases == 297


# ----------------------------------------------------------------------------- the schema

def test_the_saved_file_holds_exactly_the_schema_keys(saved):
    state, data = saved
    keys = set(entries(data))
    assert keys == set(tr._expected_keys(state.config, state.optimizer.state["step"]))
    assert ("param.logit_bias" in keys) == (state.config.loss == "siglip")


def test_every_missing_entry_is_named(saved, tmp_path):
    state, data = saved
    for key in entries(data):
        members = entries(data)
        del members[key]
        message = load_or_refuse(tmp_path, rezip(members), state)
        if key == "format":
            assert "is not a numclip checkpoint" in message
        else:
            assert f"is incomplete: missing {key}" in message, message


def test_an_unknown_entry_is_refused(saved, tmp_path):
    state, data = saved
    message = load_or_refuse(tmp_path, replaced(data, "param.extra", npy(np.ones(3))), state)
    assert "holds entries no checkpoint has: param.extra" in message


def changed_shapes(array):
    if array.ndim:
        yield array[:-1]
        yield array[..., None]
    yield np.stack([array, array])


def changed_dtypes(array):
    """The same shape in every other kind of dtype (another integer width is still valid)."""
    for dtype in (np.float64, np.float32, np.float16, np.int64, np.int32, np.complex64,
                  np.bool_, "U3", object):
        dtype = np.dtype(dtype)
        if dtype != array.dtype and not (array.dtype.kind in "iu" and dtype.kind in "iu"):
            yield np.ones(array.shape, dtype) if dtype.kind != "O" else array.astype(object)


def test_every_entry_with_another_shape_or_dtype_is_refused(saved, tmp_path):
    state, data = saved
    for key, raw in entries(data).items():
        array = array_of(raw)
        for other in changed_shapes(array):
            message = load_or_refuse(tmp_path, replaced(data, key, npy(other)), state)
            assert message is not None, f"{key} with shape {other.shape} loaded"
            # fewer words make the vocabulary disagree with text_proj, which says so
            assert (key in message or "is not a numclip checkpoint" in message
                    or (key.startswith("vocab") and "(words, embed_dim)" in message)), message
        for other in changed_dtypes(array):
            message = load_or_refuse(tmp_path, replaced(data, key, npy(other)), state)
            assert message is not None, f"{key} as {other.dtype} loaded"
            assert key in message or "is not a numclip checkpoint" in message, message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_numbers_are_refused_wherever_they_are(saved, tmp_path, bad):
    state, data = saved
    for key, raw in entries(data).items():
        array = array_of(raw)
        if array.dtype.kind != "f":
            continue
        doctored = array.copy()
        doctored.reshape(-1)[-1] = bad
        message = load_or_refuse(tmp_path, replaced(data, key, npy(doctored)), state)
        assert f"{key} must hold" in message, message


@pytest.mark.parametrize("key, value, words", [
    ("history.accuracy", [1.5], "history.accuracy must hold fractions in [0, 1]"),
    ("history.scale", [0.0], "history.scale must hold finite numbers > 0"),
    ("history.epoch", [2.0], "history.epoch must hold 1, 2, ..., epochs"),
    ("opt.v.logit_scale", np.float32(-1.0), "opt.v.logit_scale must hold finite numbers >= 0"),
    ("epoch", 2, "epoch is 2, more than the config's epochs (1)"),
    ("epoch", -1, "epoch must hold a count"),
    ("opt.step", 5, "opt.step is 5, but 1 epochs of 2 steps take 2"),
    ("vocab.vocab_words", lambda words: [*words[:-1], words[1]],
     "vocab.vocab_words is not a valid vocabulary (words must not repeat"),
    ("vocab.vocab_words", lambda words: ["a", *words[1:]], "words[0] must be '<unk>'"),
    ("vocab.vocab_words", np.array([], dtype="U3"), "holds 0 words"),
    ("config", "{not json", "its config is not a valid TrainConfig"),
    ("config", '["a list"]', "its config is not a valid TrainConfig"),
    ("config", '{"lr": "a"}', "lr must be a real number"),
    # an int beyond a float's range: OverflowError, reported as a "corrupt" file
    ("config", json.dumps({"lr": 10**400}), "its config is not a valid TrainConfig (lr must "
                                            "be positive and finite, got inf)"),
    ("config", json.dumps({"seed": 2**128}), "seed must be at most"),
    ("config", '{"seed": 1, "colour": "red"}', "unexpected keyword argument 'colour'"),
    ("format", "numclip-tiny-clip-v0", "is not a numclip checkpoint (format"),
])
def test_values_that_the_format_does_not_allow_are_refused(saved, tmp_path, key, value, words):
    state, data = saved
    if callable(value):
        value = value(array_of(entries(data)[key]).tolist())
    message = load_or_refuse(tmp_path, replaced(data, key, npy(np.asarray(value))), state)
    assert message is not None and words in message, message


def test_a_config_that_disagrees_with_the_arrays_is_refused(saved, tmp_path):
    state, data = saved
    config = tr.json.dumps({**state.config.__dict__, "embed_dim": 5})
    message = load_or_refuse(tmp_path, replaced(data, "config", npy(np.asarray(config))), state)
    assert "param.image_proj has shape (768, 4), expected (768, 5) (pixels, embed_dim)" in message


def test_pickled_objects_are_refused_before_they_are_unpickled(saved, tmp_path, monkeypatch):
    state, data = saved
    import pickle

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    raw = npy(np.array([{"a": 1}], dtype=object))
    message = load_or_refuse(tmp_path, replaced(data, "vocab.vocab_words", raw), state)
    assert "vocab.vocab_words has dtype object" in message


# ----------------------------------------------------------------------------- headers

def test_a_header_that_lies_about_the_shape_is_refused(saved, tmp_path):
    """The issue's (767, 64) image_proj: NumPy stopped reading before the CRC."""
    state, data = saved
    in_place = data.replace(b"'shape': (768, 4)", b"'shape': (767, 4)", 1)  # CRC now wrong
    assert in_place != data
    assert "param.image_proj has shape (767, 4)" in load_or_refuse(tmp_path, in_place, state)
    raw = entries(data)["param.image_proj"]
    for shape in [(767, 4), (769, 4), (4, 768), (768 * 4,)]:
        message = load_or_refuse(tmp_path, replaced(data, "param.image_proj",
                                                    with_header(raw, shape)), state)
        assert f"has shape {shape}" in message, message


def test_a_header_that_claims_a_huge_array_allocates_nothing(saved, tmp_path):
    state, data = saved
    words = entries(data)["vocab.vocab_words"]
    cases = [("vocab.vocab_words", with_header(words, (2**40,)), "holds 1099511627776 words"),
             ("vocab.vocab_words", with_header(words, (40_000,)), "header promises"),
             ("param.image_proj", with_header(entries(data)["param.image_proj"], (10**12, 4)),
              "has shape (1000000000000, 4)")]
    for key, raw, words_in_message in cases:
        doctored = replaced(data, key, raw)
        tracemalloc.start()
        try:
            message = load_or_refuse(tmp_path, doctored, state)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert words_in_message in message, message
        assert peak < 4 * len(data), f"{key}: {peak} bytes allocated for a refused file"


def test_a_zip_entry_that_claims_more_bytes_than_the_file_holds_is_refused(saved, tmp_path):
    state, data = saved
    z = zipfile.ZipFile(io.BytesIO(data))
    info = z.getinfo("param.image_proj.npy")
    doctored = bytearray(data)
    # the central directory record of image_proj: compressed and uncompressed size (20, 24)
    record = data.index(b"PK\x01\x02", z.start_dir)
    while data[record + 46:record + 46 + len(info.filename)] != info.filename.encode():
        record = data.index(b"PK\x01\x02", record + 4)
    for offset in (20, 24):
        doctored[record + offset:record + offset + 4] = (2**32 - 2).to_bytes(4, "little")
    assert "truncated or corrupt" in load_or_refuse(tmp_path, bytes(doctored), state)


# ----------------------------------------------------------------------------- valid files

@pytest.mark.parametrize("rewrite", [
    pytest.param(lambda m: rezip(m, zipfile.ZIP_DEFLATED), id="compressed (savez_compressed)"),
    pytest.param(lambda m: rezip({k: npy(np.asarray(array_of(v), order="F"))
                                  for k, v in m.items()}), id="Fortran order"),
    pytest.param(lambda m: rezip({k: npy(array_of(v).astype(array_of(v).dtype.newbyteorder()))
                                  for k, v in m.items()}), id="big-endian"),
    pytest.param(lambda m: rezip({k: npy(array_of(v), version=(2, 0)) for k, v in m.items()}),
                 id=".npy version 2.0"),
    pytest.param(lambda m: rezip(dict(reversed(m.items()))), id="entries in another order"),
])
def test_unusual_but_valid_files_load_exactly(saved, tmp_path, rewrite):
    state, data = saved
    assert load_or_refuse(tmp_path, rewrite(entries(data)), state) is None


def test_a_file_that_is_not_a_checkpoint_is_told_so(tmp_path):
    for name, content in [("README.md", b"# numclip\n"), ("empty.npz", b""),
                          ("array.npy", npy(np.ones(3)))]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="is not a numclip checkpoint") as info:
            tr.load_checkpoint(tmp_path / name)
        assert "allow_pickle" not in str(info.value)
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match=r"not a numclip checkpoint \(it has no format"):
        tr.load_checkpoint(tmp_path / "other.npz")
