"""Installable package: the Beam pipeline (`beam_jobs`) and the language models (`lm`).

Workers of Dataflow, Flink or Spark install it from an sdist with `--setup_file ./setup.py`.
"""

from setuptools import find_packages, setup

setup(
    name="corpus-lm",
    version="0.1.0",
    description="Clean, deduplicated, sharded LM pretraining data with Apache Beam, "
                "and language models trained from it",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["beam_jobs", "beam_jobs.*", "lm", "lm.*"]),
    install_requires=[
        "apache-beam>=2.60",
        "datasketch>=2.0",
        "numba>=0.60",
        "numpy>=1.26",
        "pyarrow>=14",
        "matplotlib>=3.7",
        "japanize-matplotlib>=1.1.3",  # ships the IPAexGothic font for Japanese labels
        "tqdm>=4.60",
        "sentencepiece>=0.2",
        "tokenizers>=0.21",  # encode_batch_fast, encode_special_tokens
    ],
    # The pipeline's workers need no torch: it is the `lm` extra, so cluster workers that
    # install the package with --setup_file don't download it.
    extras_require={
        "lm": ["torch>=2.1"],
        "test": ["torch>=2.1", "pytest>=7", "hypothesis>=6", "ruff>=0.5", "rensa>=0.2",
                 "scipy>=1.10",
                 # readers of the token outputs, to test them against: Megatron's own
                 # IndexedDataset, Hugging Face datasets, pandas, polars, DuckDB
                 "megatron-core>=0.12", "datasets>=3", "pandas>=2", "polars>=1", "duckdb>=1"],
    },
    entry_points={
        "console_scripts": [
            "corpus-prepare=beam_jobs.prepare:main",
            "lm-train=lm.train:main",
            "lm-ngram=lm.ngram:main",
            "lm-generate=lm.generate:main",
        ],
    },
)
