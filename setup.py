"""Installs tfrs-pipeline: the pipeline definition, custom components and trainer module.

Beam workers and the Kubeflow component image install the project through this file, so
the packages named here are everything a worker needs to import.
"""
import setuptools

setuptools.setup(
    name="tfrs-pipeline",
    version="0.1.0",
    description="TFX pipeline that trains, evaluates and ships TFRS retrieval models.",
    # The lock is resolved for CPython 3.11 (see requirements/uv-resolve.toml).
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["contracts", "contracts.*", "pipeline",
                                               "pipeline.*", "components",
                                               "components.*", "trainer_module",
                                               "trainer_module.*", "movielens",
                                               "movielens.*", "closed_form",
                                               "closed_form.*", "ranking_core",
                                               "ranking_core.*"]),
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "tensorflow-recommenders>=0.7.3,<0.8",
        "tensorflow-transform>=1.16,<1.17",
        "tensorflow-data-validation>=1.16.1,<1.17",
        "tensorflow-model-analysis>=0.47,<0.48",
        "tfx-bsl>=1.16.1,<1.17",
        "ml-metadata>=1.16,<1.17",
        "apache-beam[gcp]==2.59.0",
        "kfp>=2.13,<3",
        "kfp-pipeline-spec>=0.6,<0.7",
        "numpy>=1.26,<2",
        "scipy>=1.11,<1.13",
        "scikit-learn>=1.5,<1.6",
        "matplotlib>=3.8,<4",
        "absl-py>=0.9,<2",
    ],
)
