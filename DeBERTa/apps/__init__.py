"""Programs built on the DeBERTa library: training, download, export, benchmark, report."""
