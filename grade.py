#!/usr/bin/env python3
"""cnn-grader: grade "Problem 2: Incorporating CNNs". Run `python grade.py --help`."""

import sys

from autograder.cli import main

if __name__ == "__main__":
    sys.exit(main())
