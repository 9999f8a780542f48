"""Label-masking benchmark; the same as ``skdim benchmark`` (see skdim/benchmark.py)."""

from skdim.benchmark import main

if __name__ == "__main__":
    main()
