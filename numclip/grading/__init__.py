"""The grading home: what :mod:`numclip.checks` needs to tell a student where their code goes wrong.

- :mod:`numclip.grading.harness` runs a student's function on named cases and prints
  one verdict (crash, input changed in place, shape, dtype, NaN, values);
- :mod:`numclip.grading.reference` gives the right answers, numclip's own functions
  in float64;
- :mod:`numclip.grading.hints` recognises the mistakes students make from the wrong
  values they produce;
- :mod:`numclip.grading.solutions` holds the assignment's solutions, written as a
  student writes them: one source for the tests, the notebooks and the hints.
- :mod:`numclip.grading.autograde` grades the assignment as an autograder does (the
  tests of its Otter-Grader version, ``notebooks/exercises/otter/``): one question at
  a time, with numclip, SciPy and the deep-learning libraries forbidden.

Students import the checkers themselves from :mod:`numclip.checks`.
"""
