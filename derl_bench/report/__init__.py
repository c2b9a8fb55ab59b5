"""Reports from result files: loading, aggregation over seeds, tables and plots (no training)."""
