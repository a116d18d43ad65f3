"""Staff tools, derived from `reference_solution/`: the student template (template.py, regions.py),
the fixtures, the handout (handout.py) and the Gradescope bundle (gradescope.py) with reproducible
zips, synthetic SVHN (synthetic.py), and the in-process import of a trusted `lib/` (lib_loader.py).
"""
