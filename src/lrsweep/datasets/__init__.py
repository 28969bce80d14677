"""Datasets shipped with lrsweep: telco_churn.csv.gz (see README: provenance and SHA-256)."""
