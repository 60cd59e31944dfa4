"""Storage: files on a local folder or s3:// (fsio), Parquet tables, JSON files, the DuckDB warehouse."""
