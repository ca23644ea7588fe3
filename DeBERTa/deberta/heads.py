"""Task heads on the DeBERTa encoder (v1 and v2/v3 alike): classification, token classification,
multiple choice, span question answering, masked LM, replaced-token detection.

Shapes as in :mod:`DeBERTa.deberta.model` (B batch, L length, D hidden, V vocabulary), plus
C labels and N choices. Parameter names match the released checkpoints and Hugging Face's heads
(``pooler.dense``, ``classifier``, ``qa_outputs``, ``lm_predictions.lm_head``, ``mask_predictions``),
so fine-tuned and released models load as they are. Every head's ``forward`` takes the batch's
``input_ids``, ``type_ids``, ``input_mask`` (2-D, or the original API's 3-D mask), its labels and
``position_ids``, and returns a :class:`HeadOutput`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import token_mask
from .config import ModelConfig
from .model import DeBERTa, LayerNorm, activation, init_weights
from .pretrained import load_head_state, load_pretrained


class HeadOutput(NamedTuple):
    """What every head returns; unpacks like the original ``(logits, loss)`` tuple."""

    logits: torch.Tensor
    """Scores: (B, C) for sequences, (B, L, C) for tokens, (B, N) for choices, (B, L, 2) for span start
    and end, (M, V) for masked LM, (B, L) for replaced-token detection."""
    loss: torch.Tensor | None
    """Mean loss over labelled items, or None without labels."""


class ContextPooler(nn.Module):
    """The sentence representation: the [CLS] state through dropout, a dense layer and an activation."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.pooler_hidden_size)
        self.dropout = nn.Dropout(config.pooler_dropout)
        self.act = activation(config.pooler_hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, L, D) → (B, pooler_hidden_size)."""
        return self.act(self.dense(self.dropout(hidden_states[:, 0])))


class _HeadModel(nn.Module):
    """An encoder plus a head; ``pre_trained`` loads the encoder and, where they fit, the head weights."""

    head_prefixes: tuple[str, ...] = ()
    absolute_positions = False

    def __init__(self, config: ModelConfig | None, pre_trained: str | None):
        super().__init__()
        state = None
        if pre_trained is not None:
            # Read once here for both the encoder and the head.
            state, config = load_pretrained(pre_trained, config)
        if config is None:
            raise ValueError(f"{type(self).__name__} needs a config or a pre_trained model")
        self.deberta = DeBERTa(config, absolute_positions=self.absolute_positions)
        self.deberta.pre_trained = pre_trained
        self.deberta.apply_state(state)
        self.config = config
        self._pre_trained_state = state

    def _finish_init(self) -> None:
        """Initialise the head, then load its pre-trained weights where the checkpoint has them."""
        for prefix in self.head_prefixes:
            init_weights(getattr(self, prefix.split(".")[0]), self.config.initializer_range)
        self.fresh_heads = ["all"] if self._pre_trained_state is None else load_head_state(
            self, self._pre_trained_state, self.head_prefixes
        )
        del self._pre_trained_state


def labelled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (N, C) logits over the items whose label (N,) is ≥ 0; 0 when none is."""
    labels = labels.long()
    labelled = labels >= 0
    # Branch-free (torch.compile fullgraph): a sum over labelled items divided by their count; with none
    # labelled it is 0 and still connected to the graph (DDP's gradient hooks).
    losses = F.cross_entropy(logits.float(), labels.masked_fill(~labelled, -100), reduction="sum")
    return losses / labelled.sum().clamp(min=1)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss of (B, C) logits: MSE when C = 1; cross-entropy over labels ≥ 0; soft labels when 2-D."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.view(-1).float(), labels.view(-1).float())
    if labels.dim() == 1 or labels.shape[-1] == 1:
        return labelled_cross_entropy(logits, labels.view(-1))
    return -(F.log_softmax(logits.float(), dim=-1) * labels).sum(-1).mean()


class SequenceClassificationModel(_HeadModel):
    """Sentence (pair) classification, or regression when ``num_labels`` is 1, on the pooled [CLS]."""

    head_prefixes = ("pooler.", "classifier.")

    def __init__(
        self,
        config: ModelConfig | None = None,
        num_labels: int = 2,
        drop_out: float | None = None,
        pre_trained: str | None = None,
    ):
        super().__init__(config, pre_trained)
        self.num_labels = num_labels
        self.pooler = ContextPooler(self.config)
        self.classifier = nn.Linear(self.config.pooler_hidden_size, num_labels)
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob if drop_out is None else drop_out)
        self._finish_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        type_ids: torch.Tensor | None = None,
        input_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **_: object,
    ) -> HeadOutput:
        """ids (B, L) → logits (B, C). ``labels``: (B,) class ids (−1 ignored), floats, or (B, C) soft."""
        hidden = self.deberta(input_ids, input_mask, type_ids, output_all_encoded_layers=False,
                              position_ids=position_ids)[-1]
        logits = self.classifier(self.dropout(self.pooler(hidden)))  # (B, C)
        return HeadOutput(logits, None if labels is None else classification_loss(logits, labels))


class TokenClassificationModel(_HeadModel):
    """A label per token (NER, tagging); labels < 0 (padding, sub-words) are ignored."""

    head_prefixes = ("classifier.",)

    def __init__(self, config=None, num_labels: int = 2, drop_out: float | None = None, pre_trained=None):
        super().__init__(config, pre_trained)
        self.num_labels = num_labels
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob if drop_out is None else drop_out)
        self.classifier = nn.Linear(self.config.hidden_size, num_labels)
        self._finish_init()

    def forward(self, input_ids, type_ids=None, input_mask=None, labels=None, position_ids=None, **_):
        """ids (B, L) → logits (B, L, C); ``labels`` (B, L)."""
        hidden = self.deberta(input_ids, input_mask, type_ids, output_all_encoded_layers=False,
                              position_ids=position_ids)[-1]
        logits = self.classifier(self.dropout(hidden))  # (B, L, C)
        loss = None if labels is None else labelled_cross_entropy(logits.flatten(0, 1), labels.flatten())
        return HeadOutput(logits, loss)


class MultiChoiceModel(_HeadModel):
    """Choose one of N candidate continuations: each (context, choice) pair scored on its pooled [CLS]."""

    head_prefixes = ("pooler.", "classifier.")

    def __init__(self, config=None, num_labels: int = 1, drop_out: float | None = None, pre_trained=None):
        super().__init__(config, pre_trained)
        self.pooler = ContextPooler(self.config)
        self.classifier = nn.Linear(self.config.pooler_hidden_size, 1)
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob if drop_out is None else drop_out)
        self._finish_init()

    def forward(self, input_ids, type_ids=None, input_mask=None, labels=None, position_ids=None, **_):
        """ids (B, N, L) → logits (B, N); ``labels`` (B,) the index of the right choice."""
        num_choices = input_ids.shape[1]
        flat = [None if t is None else t.flatten(0, 1) for t in (input_ids, type_ids, input_mask, position_ids)]
        hidden = self.deberta(flat[0], flat[2], flat[1], output_all_encoded_layers=False, position_ids=flat[3])[-1]
        logits = self.classifier(self.dropout(self.pooler(hidden))).view(-1, num_choices)  # (B, N)
        return HeadOutput(logits, None if labels is None else classification_loss(logits, labels))


class LMPredictionHead(nn.Module):
    """Dense → activation → LayerNorm → scores against the (tied) word embeddings, plus a bias."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        width = config.embedding_size or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, width)
        self.act = activation(config.hidden_act)
        self.LayerNorm = LayerNorm(width, config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """(M, D) states and the (V, E) embedding table → (M, V) scores."""
        x = self.LayerNorm(self.act(self.dense(hidden_states)))
        return x @ word_embeddings.t().to(x.dtype) + self.bias


class EnhancedMaskDecoder(nn.Module):
    """DeBERTa's enhanced mask decoder (EMD): absolute positions enter just before the output.

    The encoder never sees absolute positions. To predict masked tokens, the decoder runs the last
    encoder layer twice more (shared weights) over the second-to-last hidden states H, querying with
    H + P (P the absolute position embeddings) the first time and with its own output the second;
    the final states go through the LM head, tied to the word embeddings.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.lm_head = LMPredictionHead(config)

    def forward(
        self,
        encoder: DeBERTa,
        layers: list[torch.Tensor],
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """Encoder layer outputs (B, L, D) each, positions/mask (B, L), target mask (B, L) → (M, V)."""
        if encoder.config.position_biased_input:  # positions were in the input: no decoder needed
            return self.lm_head(layers[-1][targets], encoder.embeddings.word_embeddings.weight)
        hidden = layers[-2] if len(layers) > 1 else layers[-1]
        query = hidden + encoder.embeddings.position_embeddings(position_ids).to(hidden.dtype)  # (B, L, D)
        last_layer = encoder.encoder.layer[-1]
        rel_embeddings = encoder.encoder.get_rel_embedding()
        for _ in range(2):
            query = last_layer(hidden, attention_mask, rel_embeddings, query_states=query)  # (B, L, D)
        return self.lm_head(query[targets], encoder.embeddings.word_embeddings.weight)  # (M, V)


class MaskedLanguageModel(_HeadModel):
    """Masked-LM pre-training with the enhanced mask decoder (the released models' head)."""

    head_prefixes = ("lm_predictions.",)
    absolute_positions = True

    def __init__(self, config: ModelConfig | None = None, pre_trained: str | None = None):
        super().__init__(config, pre_trained)
        self.lm_predictions = EnhancedMaskDecoder(self.config)
        self._finish_init()

    def forward(self, input_ids, type_ids=None, input_mask=None, labels=None, position_ids=None, **_):
        """ids (B, L) → scores (M, V) at the M targets; ``labels`` (B, L): target ids, ≤ 0 elsewhere.

        Without labels every non-padded position is a target. Token 0 is ``[PAD]``, never a target,
        so both the original's 0 and the common −100 mark "no target".
        """
        if input_mask is None:
            input_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
        layers = self.deberta(input_ids, input_mask, type_ids, position_ids=position_ids)
        targets = labels > 0 if labels is not None else token_mask(input_mask).bool()
        logits = self.lm_predictions(self.deberta, layers, position_ids, input_mask, targets)
        loss = None if labels is None else F.cross_entropy(logits.float(), labels[targets].long())
        return HeadOutput(logits, loss)


class QuestionAnsweringModel(_HeadModel):
    """Span extraction (SQuAD): a start and an end score per token, from one linear layer ``qa_outputs``."""

    head_prefixes = ("qa_outputs.",)

    def __init__(self, config: ModelConfig | None = None, pre_trained: str | None = None):
        super().__init__(config, pre_trained)
        self.qa_outputs = nn.Linear(self.config.hidden_size, 2)
        self._finish_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        type_ids: torch.Tensor | None = None,
        input_mask: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **_: object,
    ) -> HeadOutput:
        """ids (B, L) → logits (B, L, 2): [..., 0] start, [..., 1] end scores, padding not masked.

        ``start_positions``/``end_positions`` (B,): token indices of the answer (0, the [CLS] token, for
        no answer); positions outside the sequence are ignored. The loss is the mean of the start and end
        cross-entropies, as in transformers, but over the real tokens only: padding is never an answer.
        """
        hidden = self.deberta(input_ids, input_mask, type_ids, output_all_encoded_layers=False,
                              position_ids=position_ids)[-1]
        logits = self.qa_outputs(hidden)  # (B, L, 2)
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = logits.shape[1]  # positions beyond the sequence (truncated answers) count for nothing
            start, end = (p.view(-1).long().clamp(0, ignored) for p in (start_positions, end_positions))
            scores = logits.float()
            if input_mask is not None:
                padded = token_mask(input_mask)[..., None] == 0  # (B, L, 1)
                scores = scores.masked_fill(padded, torch.finfo(torch.float32).min / 2)
            start_loss = F.cross_entropy(scores[..., 0], start, ignore_index=ignored)
            end_loss = F.cross_entropy(scores[..., 1], end, ignore_index=ignored)
            loss = (start_loss + end_loss) / 2
        return HeadOutput(logits, loss)


class MaskPredictionHead(nn.Module):
    """The replaced-token-detection (RTD) discriminator's head of DeBERTa v3 (``mask_predictions``).

    Each token's state plus the [CLS] state, normalised, then dense → activation → one logit: whether the
    token was replaced by the generator.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, L, D) → (B, L) logits."""
        states = self.LayerNorm(hidden_states[:, :1] + hidden_states)
        return self.classifier(self.act(self.dense(states))).squeeze(-1)


class ReplacedTokenDetectionModel(_HeadModel):
    """DeBERTa v3's discriminator: for every token, whether it was replaced (the ELECTRA-style RTD objective)."""

    head_prefixes = ("mask_predictions.",)

    def __init__(self, config: ModelConfig | None = None, pre_trained: str | None = None):
        super().__init__(config, pre_trained)
        self.mask_predictions = MaskPredictionHead(self.config)
        self._finish_init()

    def forward(self, input_ids, type_ids=None, input_mask=None, labels=None, position_ids=None, **_):
        """ids (B, L) → logits (B, L); ``labels`` (B, L): 1 replaced, 0 original, < 0 ignored.

        The loss is the mean binary cross-entropy over the real tokens (``input_mask``) with a label ≥ 0.
        """
        hidden = self.deberta(input_ids, input_mask, type_ids, output_all_encoded_layers=False,
                              position_ids=position_ids)[-1]
        logits = self.mask_predictions(hidden)  # (B, L)
        loss = None
        if labels is not None:
            counted = labels >= 0
            if input_mask is not None:
                counted &= token_mask(input_mask).bool()
            losses = F.binary_cross_entropy_with_logits(logits.float(), labels.clamp(min=0).float(), reduction="none")
            loss = (losses * counted).sum() / counted.sum().clamp(min=1)
        return HeadOutput(logits, loss)
