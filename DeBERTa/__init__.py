"""DeBERTa: Decoding-enhanced BERT with Disentangled Attention (He et al., 2020).

The library lives in :mod:`DeBERTa.deberta`; the programs built on it (training, download, export,
benchmark, report) in :mod:`DeBERTa.apps`.
"""

__version__ = "0.2.0"
