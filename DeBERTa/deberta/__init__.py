"""The DeBERTa library: ``from DeBERTa import deberta``."""

from .config import ConfigError, ModelConfig
from .errors import DeBERTaError
from .heads import (
    ContextPooler,
    EnhancedMaskDecoder,
    HeadOutput,
    MaskedLanguageModel,
    MultiChoiceModel,
    SequenceClassificationModel,
    TokenClassificationModel,
)
from .model import DeBERTa
from .pretrained import CheckpointError, load_model_state
from .tokenizer import (
    BPEVocabulary,
    Encoding,
    GPT2Tokenizer,
    TokenizerError,
    build_vocab,
    gpt2_bpe_files,
    load_vocabulary,
)

__all__ = [
    "BPEVocabulary",
    "Encoding",
    "GPT2Tokenizer",
    "TokenizerError",
    "build_vocab",
    "gpt2_bpe_files",
    "load_vocabulary",
    "CheckpointError",
    "ConfigError",
    "ContextPooler",
    "DeBERTa",
    "DeBERTaError",
    "EnhancedMaskDecoder",
    "HeadOutput",
    "MaskedLanguageModel",
    "ModelConfig",
    "MultiChoiceModel",
    "SequenceClassificationModel",
    "TokenClassificationModel",
    "load_model_state",
]
