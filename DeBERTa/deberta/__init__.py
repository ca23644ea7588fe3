"""The DeBERTa library: ``from DeBERTa import deberta``."""

from .config import ConfigError, ModelConfig
from .errors import DeBERTaError
from .heads import (
    ContextPooler,
    EnhancedMaskDecoder,
    HeadOutput,
    MaskedLanguageModel,
    MaskPredictionHead,
    MultiChoiceModel,
    QuestionAnsweringModel,
    ReplacedTokenDetectionModel,
    SequenceClassificationModel,
    TokenClassificationModel,
)
from .model import DeBERTa
from .pretrained import CheckpointError, load_model_state
from .spm_tokenizer import SPMTokenizer, build_spm_vocab
from .tokenizer import (
    BPEVocabulary,
    Encoding,
    EncodingWithOffsets,
    GPT2Tokenizer,
    TextEncoding,
    TokenizerError,
    build_vocab,
    gpt2_bpe_files,
    load_vocabulary,
)
from .tokenizer_loader import Tokenizer, load_tokenizer

__all__ = [
    "BPEVocabulary",
    "Encoding",
    "EncodingWithOffsets",
    "GPT2Tokenizer",
    "SPMTokenizer",
    "TextEncoding",
    "Tokenizer",
    "TokenizerError",
    "build_spm_vocab",
    "build_vocab",
    "gpt2_bpe_files",
    "load_tokenizer",
    "load_vocabulary",
    "CheckpointError",
    "ConfigError",
    "ContextPooler",
    "DeBERTa",
    "DeBERTaError",
    "EnhancedMaskDecoder",
    "HeadOutput",
    "MaskedLanguageModel",
    "MaskPredictionHead",
    "ModelConfig",
    "MultiChoiceModel",
    "QuestionAnsweringModel",
    "ReplacedTokenDetectionModel",
    "SequenceClassificationModel",
    "TokenClassificationModel",
    "load_model_state",
]
