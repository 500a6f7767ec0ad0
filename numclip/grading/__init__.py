"""The grading home: what :mod:`numclip.checks` needs to tell a student where their code goes wrong.

- :mod:`numclip.grading.harness` runs a student's function on named cases and prints
  one verdict (crash, input changed in place, shape, dtype, NaN, values);
- :mod:`numclip.grading.reference` gives the right answers, numclip's own functions
  in float64;
- :mod:`numclip.grading.hints` recognises the mistakes students make from the wrong
  values they produce;
- :mod:`numclip.grading.solutions` holds the assignment's solutions, written as a
  student writes them: one source for the tests, the notebooks and the hints.

Students import the checkers themselves from :mod:`numclip.checks`.
"""
