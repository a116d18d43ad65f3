#!/usr/bin/env bash
# Downloads the SVHN train and test files (format 2, 32x32 crops) into data/.
set -e
mkdir -p data
cd data
for split in train test; do
    if [ ! -f "${split}_32x32.mat" ]; then
        wget "http://ufldl.stanford.edu/housenumbers/${split}_32x32.mat"
    fi
done
