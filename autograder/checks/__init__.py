"""The checks: pytest suites, one rubric item per test group, run against a worker.

Each test function is marked with its rubric item (`@pytest.mark.item("conv_forward")`) and
either takes a `case` (parametrised over that item's fixture cases) or names a fixed check
(`@pytest.mark.item("test_cnn", check="structure")`, a component with `check = true` in the
rubric). A test ends its case by returning (passed) or by raising CheckFailed with an outcome;
plugin.py records one outcome per case. A check of an item with components judges each part
inside `with part("dimg"):` (the `part` fixture), so that one part failing leaves the others
judged. To add a check: write a test here, give its item (or component) points in rubric.toml.
"""
