"""BLAS threads around small products: one inside the block, the caller's setting after it."""

import numpy as np
import pytest
from conftest import assert_refused, public_callables
from threadpoolctl import threadpool_info

from numclip import threads
from numclip.threads import SMALL_PRODUCT, blas_threads_for


def blas_threads():
    """Threads of every BLAS NumPy loaded (threadpoolctl sees them once numpy is imported)."""
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def entered(multiply_adds):
    """Enter and leave the block: the argument is checked when the block starts."""
    def call():
        with blas_threads_for(multiply_adds):
            pass
    return call


# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("blas_threads_for", entered(1.5), TypeError,
     ["multiply_adds must be an integer", "float"]),
    ("blas_threads_for", entered(float(SMALL_PRODUCT)), TypeError,
     ["multiply_adds must be an integer", "float"]),
    ("blas_threads_for", entered(True), TypeError, ["multiply_adds must be an integer", "bool"]),
    ("blas_threads_for", entered("64"), TypeError, ["multiply_adds must be an integer", "str"]),
    ("blas_threads_for", entered(None), TypeError, ["multiply_adds must be an integer"]),
    ("blas_threads_for", entered(np.ones(1)), TypeError, ["multiply_adds must be an integer"]),
    ("blas_threads_for", entered(-1), ValueError, ["multiply_adds must be non-negative, got -1"]),
]


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    assert public_callables(threads) - {row[0] for row in BAD_INPUT} == set()


def test_small_products_run_on_one_thread_and_the_setting_comes_back():
    before = blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library behind NumPy")
    for small in (0, 1, SMALL_PRODUCT - 1, np.int64(100)):
        with blas_threads_for(small):
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == before
    with pytest.raises(RuntimeError), blas_threads_for(10):  # restored after an error too
        raise RuntimeError("inside the block")
    assert blas_threads() == before


def test_large_products_leave_the_threads_alone():
    before = blas_threads()
    for large in (SMALL_PRODUCT, 10**400, np.uint64(2**63)):
        with blas_threads_for(large):
            assert blas_threads() == before
