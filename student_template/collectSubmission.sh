#!/usr/bin/env bash
# Packs the notebooks, the lib/ sources and the solution PDFs into assignment1.zip.
# Rename the zip to <your student id>.zip before you upload it.
rm -f assignment1.zip
zip -r assignment1.zip . -i "*.ipynb" "lib/*.py" "lib/mlp/*.py" "lib/cnn/*.py" \
    "problem_1_solution.pdf" "problem_2_solution.pdf" -x "*.ipynb_checkpoints*"
