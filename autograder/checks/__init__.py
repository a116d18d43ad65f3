"""The checks: pytest suites, one rubric item per test group, run against a worker.

Each test function is marked with its rubric item (`@pytest.mark.item("conv_forward")`) and
either takes a `case` (parametrised over that item's fixture cases) or names a fixed check
(`@pytest.mark.item("test_cnn", check="architecture")`). A test ends its case by returning
(passed) or by raising CheckFailed with an outcome; plugin.py records one outcome per case.
To add a check: write a test here, give it a weight in rubric.toml, done.
"""
