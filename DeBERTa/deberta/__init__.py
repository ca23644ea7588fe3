"""The DeBERTa library: ``from DeBERTa import deberta``."""

from .config import ConfigError, ModelConfig
from .errors import DeBERTaError
from .extras import MissingExtraError
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
from .hub import CachedFileError, DownloadError, FileNotOnHub
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
    TokenizerInputError,
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
    "TokenizerInputError",
    "build_spm_vocab",
    "build_vocab",
    "gpt2_bpe_files",
    "load_tokenizer",
    "load_vocabulary",
    "CachedFileError",
    "CheckpointError",
    "ConfigError",
    "ContextPooler",
    "DeBERTa",
    "DeBERTaError",
    "DownloadError",
    "FileNotOnHub",
    "MissingExtraError",
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
